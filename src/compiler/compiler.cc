#include "compiler/compiler.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "checkpoint/checkpoint.h"
#include "checkpoint/hf_config.h"
#include "compiler/tensor_parallel.h"
#include "core/error.h"
#include "core/fp8.h"
#include "core/log.h"
#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "core/version.h"
#include "engine/engine_writer.h"
#include "models/registry.h"
#include "models/spec_check.h"

namespace kiln::compiler {
namespace fs = std::filesystem;

namespace {

// Tokenizer and generation files travel inside the engine (tokenizer/).
constexpr const char* kTokenizerFiles[] = {
    "tokenizer.json", "tokenizer_config.json",  "tokenizer.model",   "special_tokens_map.json", "vocab.json",
    "merges.txt",     "generation_config.json", "added_tokens.json", "tokenization_*.py",       "qwen.tiktoken",
};

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return buf;
}

// The float dtype most of the checkpoint's tensors are stored in, by HF's name.
std::string stored_dtype_name(const checkpoint::WeightSet& weights) {
  std::map<DType, int> counts;
  for (const auto& name : weights.names()) {
    const DType t = weights.get(name).dtype;
    if (is_float(t)) ++counts[t];
  }
  DType best = DType::f32;
  int most = 0;
  for (auto [t, n] : counts) {
    if (n > most) best = t, most = n;
  }
  switch (best) {
    case DType::f16: return "float16";
    case DType::bf16: return "bfloat16";
    case DType::f64: return "float64";
    default: return "float32";
  }
}

engine::Limits resolve_limits(const BuildOptions& o, const ModelSpec& spec) {
  engine::Limits l;
  const int64_t context = spec.max_positions > 0 ? spec.max_positions : 4096;
  l.max_batch_size = o.max_batch_size.value_or(8);
  l.max_input_len = o.max_input_len.value_or(context);
  l.max_output_len = o.max_output_len.value_or(context);
  l.max_num_tokens = o.max_num_tokens.value_or(std::max<int64_t>(4096, l.max_input_len));
  auto positive = [](int64_t v, const char* name) {
    if (v < 1) throw_error("--", name, " must be at least 1, got ", v);
  };
  positive(l.max_batch_size, "max-batch-size");
  positive(l.max_input_len, "max-input-len");
  positive(l.max_output_len, "max-output-len");
  positive(l.max_num_tokens, "max-num-tokens");
  if (spec.max_positions > 0 && l.max_input_len > spec.max_positions) {
    throw_error("--max-input-len ", l.max_input_len, " exceeds the model's context length ", spec.max_positions);
  }
  return l;
}

// Copies the tokenizer files a checkpoint has into the engine's tokenizer/.
void copy_tokenizer_files(const fs::path& model, engine::EngineWriter& writer) {
  for (const auto& entry : fs::directory_iterator(model)) {
    const std::string name = entry.path().filename().string();
    for (std::string_view pattern : kTokenizerFiles) {
      const auto star = pattern.find('*');
      const bool match = star == std::string_view::npos
                             ? name == pattern
                             : name.starts_with(pattern.substr(0, star)) && name.ends_with(pattern.substr(star + 1));
      if (match && entry.is_regular_file()) writer.add_file(entry.path(), fs::path("tokenizer") / name);
    }
  }
}

// ---- Writing the tensors ---------------------------------------------------
//
// Every (tensor, rank) is planned before anything is written: its offset in the
// rank's blob, and where its bytes come from, as runs of rows of checkpoint
// tensors (cut to some columns for row-parallel splits). The bytes are then
// produced in fixed-size chunks by a few threads of the pool, each chunk copied
// or converted from the mapped checkpoint straight into the mapped blob (or,
// where the blob cannot be mapped, written from the checkpoint or a small
// buffer); the writer hashes each blob in order as the chunks land. Tensors
// only produce() can make (transposed storage, normalized rows) are produced
// once, by the first chunk that needs them, and dropped after the last.

constexpr std::size_t kChunkBytes = 4u << 20;   // unit of work handed to a thread
constexpr std::size_t kBufferBytes = 1u << 20;  // conversion buffer per thread (stays in cache)
// Threads writing at once. More contend in the kernel over the blob's pages: on
// a 16-core machine, 4 threads wrote a 13.5 GB fp16 engine at 8.7 GB/s, while
// 8 or 16 threads managed under 2 GB/s, spending 60 to 110 s in the kernel.
constexpr int kMaxWriters = 4;
constexpr std::size_t kDirectBytes = 64u << 10;  // same-dtype spans from this size are written from the map

// Rows [first_row, first_row + rows) of source `source`, each cut to the
// columns [col_begin, col_begin + cols) of its `row_elems`.
struct Run {
  std::size_t source;
  int64_t first_row, rows, row_elems, col_begin, cols;
  int64_t canonical_row;  // the canonical tensor's row that first_row is (row scales are indexed by it)
  int64_t numel() const { return rows * cols; }
};

struct Job {
  int rank;
  Shape shape;                  // the rank's tensor
  uint64_t offset;              // in the rank's blob
  std::vector<Run> runs;        // concatenated, they are the rank's tensor
  std::vector<int64_t> starts;  // element index at which each run starts
  int64_t numel;
};

// What a tensor's chunks read: its checkpoint tensors, or the tensor produce() made.
struct Inputs {
  std::vector<TensorView> views;  // indexed like Run::source
  FloatTensor produced;
  std::vector<float> row_scales;  // f8e4m3 tensors: each canonical row's scale (core/fp8.h)
};

struct TensorWork {
  const models::CanonicalTensor* tensor;
  const checkpoint::WeightSet* weights;
  DType stored;           // the engine's dtype for it (f8e4m3: quantized by rows, Inputs::row_scales)
  bool direct;            // rows copied from the checkpoint; false: made by produce()
  std::vector<Job> jobs;  // one per rank
  // Taken by the first chunk that needs them, dropped after the last, so that
  // only the tensors being written hold memory (produce()d tensors, and
  // checkpoint tensors that had to be gathered into a buffer).
  std::mutex mutex;
  std::shared_ptr<const Inputs> inputs;
  std::atomic<int64_t> chunks_left{0};
};

int64_t row_elems(const Shape& shape) {
  int64_t n = 1;
  for (std::size_t i = 1; i < shape.size(); ++i) n *= shape[i];
  return n;
}

// Whether a canonical tensor is a projection whose checkpoint tensors are
// already E4M3 (a pre-quantized FP8 checkpoint): all of them, copied as rows,
// or the checkpoint is refused.
bool from_fp8_checkpoint(const models::CanonicalTensor& t, const checkpoint::WeightSet& weights) {
  std::size_t fp8 = 0;
  for (const auto& src : t.sources) fp8 += weights.contains(src) && weights.get(src).dtype == DType::f8e4m3;
  if (fp8 == 0) return false;
  if (!tensor_names::is_projection(t.name) || fp8 != t.sources.size() || t.rows.empty()) {
    throw_error("tensor '", t.sources.front(), "' is F8_E4M3, but kiln reads FP8 checkpoints only for the attention ",
                "and MLP projections, stored as rows (", t.name, " is made from it otherwise)");
  }
  return true;
}

// The checkpoint's scales of an E4M3 tensor: "<name>_scale" ("...weight_scale"),
// one per tensor ([] or [1]) or one per output row ([rows] or [rows, 1]).
std::vector<float> checkpoint_row_scales(const checkpoint::WeightSet& weights, const std::string& source,
                                         int64_t rows) {
  const std::string name = tensor_names::scale_of(source);
  if (!weights.contains(name)) {
    throw_error("FP8 checkpoint tensor '", source, "' has no '", name, "' (its scales)");
  }
  const TensorView v = weights.get(name);
  const FloatTensor f = to_float(v);
  if (f.numel() == 1) return std::vector<float>(static_cast<std::size_t>(rows), f.values[0]);
  if (f.numel() == rows && (v.shape.size() == 1 || (v.shape.size() == 2 && v.shape[1] == 1))) return f.values;
  throw_error("FP8 scales '", name, "' have shape ", shape_str(v.shape),
              ": expected one per tensor or one per each of ", rows,
              " rows (per-channel); block-wise scales are not supported");
}

// E4M3 scales of each canonical row of a float tensor that is rows of its
// sources (CanonicalTensor::rows), read a row at a time: the whole tensor is
// never held in fp32.
std::vector<float> row_scales_from_sources(const models::CanonicalTensor& t, const checkpoint::WeightSet& weights) {
  const int64_t cols = row_elems(t.shape);
  std::vector<float> scales;
  scales.reserve(static_cast<std::size_t>(t.shape.at(0)));
  for (const models::RowPiece& p : t.rows) {
    const TensorView v = models::check_source(weights, t.sources.at(p.source), t.source_shapes.at(p.source));
    const std::size_t size = dtype_size(v.dtype);
    for (int64_t r = p.first_row; r < p.first_row + p.rows; ++r) {
      // Read in place: only the largest magnitude is converted.
      scales.push_back(e4m3_row_scale(
          v.dtype, static_cast<const std::byte*>(v.data) + static_cast<std::size_t>(r * cols) * size, cols));
    }
  }
  return scales;
}

// Checks every source (presence, shape, float dtype) and plans every (tensor, rank).
std::vector<std::unique_ptr<TensorWork>> plan_tensors(const std::vector<models::CanonicalTensor>& tensors,
                                                      const checkpoint::WeightSet& weights, const ModelSpec& spec,
                                                      DType dtype, engine::Quantization quantization, int tp) {
  std::vector<std::unique_ptr<TensorWork>> work;
  for (const auto& t : tensors) {
    auto w = std::make_unique<TensorWork>();
    w->tensor = &t;
    w->weights = &weights;
    // Matrices take the build dtype. Norms, biases and MoE routers stay fp32: they
    // are tiny, and rounding them moves results (a router's choice is discrete).
    const bool keep_fp32 = t.shape.size() != 2 || t.name.ends_with(tensor_names::kRouterWeight);
    const bool quantized = quantization == engine::Quantization::fp8 && tensor_names::is_projection(t.name);
    from_fp8_checkpoint(t, weights);  // refuses E4M3 sources that cannot be copied as rows
    w->stored = keep_fp32 ? DType::f32 : quantized ? DType::f8e4m3 : dtype;
    const int64_t cols = row_elems(t.shape);
    // Quantized here, each row is converted with its row's scale (computed
    // first, from the same source rows); quantized already, its bytes are
    // copied as stored. Either way rows come straight from the checkpoint.
    w->direct = !t.rows.empty();
    for (std::size_t i = 0; i < t.sources.size(); ++i) {
      models::check_source(weights, t.sources[i], t.source_shapes.at(i));
      if (row_elems(t.source_shapes[i]) != cols) w->direct = false;  // rows of another width: leave it to produce()
    }
    for (int rank = 0; rank < tp; ++rank) {
      const RankSlice slice = rank_slice(t.shape, t.layout, spec, rank, tp);
      Job job{rank, slice.shape, 0, {}, {}, shape_numel(slice.shape)};
      for (const auto& [first, count] : slice.rows) {
        if (!w->direct) {
          job.runs.push_back({0, first, count, cols, slice.col_begin, slice.cols, first});
          continue;
        }
        // The canonical rows [first, first + count) through the pieces they come from.
        int64_t piece_begin = 0;
        for (const models::RowPiece& p : t.rows) {
          const int64_t piece_end = piece_begin + p.rows;
          const int64_t b = std::max(first, piece_begin), e = std::min(first + count, piece_end);
          if (b < e) {
            job.runs.push_back(
                {p.source, p.first_row + (b - piece_begin), e - b, cols, slice.col_begin, slice.cols, b});
          }
          piece_begin = piece_end;
        }
      }
      int64_t at = 0;
      for (const Run& r : job.runs) {
        job.starts.push_back(at);
        at += r.numel();
      }
      if (at != job.numel) {
        throw_error("internal error: the plan of ", t.name, " for rank ", rank, " covers ", at, " of ", job.numel,
                    " elements");
      }
      w->jobs.push_back(std::move(job));
    }
    work.push_back(std::move(w));
  }
  return work;
}

// Bytes of one job, in order, to the writer: converted straight into the
// mapped blob where the writer maps it, else through a buffer to write(), or
// written straight from the source when no conversion is needed.
class Sink {
 public:
  Sink(engine::EngineWriter& writer, int rank, uint64_t offset, DType dtype, std::vector<std::byte>& buffer)
      : writer_(writer),
        rank_(rank),
        offset_(offset),
        start_(offset),
        dtype_(dtype),
        size_(dtype_size(dtype)),
        buffer_(buffer) {}

  void put(const std::byte* src, DType src_dtype, std::size_t n) {
    if (std::byte* dst = writer_.mapped(rank_, offset_, n * size_)) {
      convert(src_dtype, src, dtype_, dst, n);
      offset_ += n * size_;
      return;
    }
    if (src_dtype == dtype_ && n * size_ >= kDirectBytes) {
      flush();
      writer_.write(rank_, offset_, src, n * size_);
      offset_ += n * size_;
      return;
    }
    const std::size_t src_size = dtype_size(src_dtype);
    while (n > 0) {
      const std::size_t m = std::min(n, (buffer_.size() - used_) / size_);
      convert(src_dtype, src, dtype_, buffer_.data() + used_, m);
      used_ += m * size_;
      src += m * src_size;
      n -= m;
      if (buffer_.size() - used_ < size_) flush();
    }
  }

  // n fp32 values of one row, divided by its scale and rounded to E4M3.
  void put_e4m3(const float* src, std::size_t n, float scale) {
    std::byte* dst = writer_.mapped(rank_, offset_, n);
    if (dst == nullptr && buffer_.size() - used_ < n) flush();
    while (n > 0) {
      const std::size_t m = dst ? n : std::min(n, buffer_.size() - used_);
      std::byte* out = dst ? dst : buffer_.data() + used_;
      for (std::size_t i = 0; i < m; ++i) out[i] = static_cast<std::byte>(f32_to_e4m3(src[i] / scale));
      if (dst) {
        offset_ += m;
      } else {
        used_ += m;
        if (used_ == buffer_.size()) flush();
      }
      src += m;
      n -= m;
    }
  }

  // Maps the next `n` bytes of the blob, where it is mapped, in one call
  // rather than a page fault per page: with 4 threads on 16 cores, a third of
  // the time in the kernel and 2.7 times the rate.
  void prefault_next(std::size_t n) {
    if (std::byte* dst = writer_.mapped(rank_, offset_, n)) prefault(dst, n, true);
  }

  // Everything put so far has reached the writer.
  void finish() {
    flush();
    if (offset_ > start_ && writer_.mapped(rank_, start_, 0) != nullptr) {
      writer_.written(rank_, start_, offset_ - start_);
    }
  }

 private:
  void flush() {
    if (used_ == 0) return;
    writer_.write(rank_, offset_, buffer_.data(), used_);
    offset_ += used_;
    used_ = 0;
  }

  engine::EngineWriter& writer_;
  int rank_;
  uint64_t offset_, start_;
  DType dtype_;
  std::size_t size_;
  std::vector<std::byte>& buffer_;
  std::size_t used_ = 0;
};

struct Chunk {
  TensorWork* work;
  const Job* job;
  int64_t begin, end;  // elements of the job
};

std::shared_ptr<const Inputs> load_inputs(const TensorWork& w) {
  auto in = std::make_shared<Inputs>();
  const models::CanonicalTensor& t = *w.tensor;
  if (w.direct) {
    for (std::size_t i = 0; i < t.sources.size(); ++i) {
      in->views.push_back(models::check_source(*w.weights, t.sources[i], t.source_shapes[i]));
    }
    if (w.stored == DType::f8e4m3 && in->views.front().dtype != DType::f8e4m3) {
      in->row_scales = row_scales_from_sources(t, *w.weights);
    }
    return in;
  }
  in->produced = t.produce();
  if (in->produced.shape != t.shape) {
    throw_error("internal error: ", t.name, " was produced with shape ", shape_str(in->produced.shape), ", planned as ",
                shape_str(t.shape));
  }
  in->views.push_back(TensorView{DType::f32, in->produced.shape, in->produced.data(), nullptr});
  if (w.stored == DType::f8e4m3) {
    const int64_t rows = t.shape.at(0), cols = row_elems(t.shape);
    in->row_scales.resize(static_cast<std::size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      in->row_scales[static_cast<std::size_t>(r)] = e4m3_row_scale(in->produced.data() + r * cols, cols);
    }
  }
  return in;
}

// Writes elements [c.begin, c.end) of a job.
void write_chunk(const Chunk& c, engine::EngineWriter& writer, std::vector<std::byte>& buffer) {
  TensorWork& w = *c.work;
  const Job& job = *c.job;
  std::shared_ptr<const Inputs> in;
  {
    std::lock_guard<std::mutex> lock(w.mutex);
    if (!w.inputs) w.inputs = load_inputs(w);
    in = w.inputs;
  }
  const std::size_t out_size = dtype_size(w.stored);
  Sink sink(writer, job.rank, job.offset + static_cast<uint64_t>(c.begin) * out_size, w.stored, buffer);
  sink.prefault_next(static_cast<std::size_t>(c.end - c.begin) * out_size);
  std::size_t i =
      static_cast<std::size_t>(std::upper_bound(job.starts.begin(), job.starts.end(), c.begin) - job.starts.begin()) -
      1;
  for (int64_t e = c.begin; e < c.end; ++i) {
    const Run& r = job.runs[i];
    const auto* base = static_cast<const std::byte*>(in->views[r.source].data);
    const DType src_dtype = in->views[r.source].dtype;
    const std::size_t src_size = dtype_size(src_dtype);
    int64_t local = e - job.starts[i];
    const int64_t local_end = std::min(c.end - job.starts[i], r.numel());
    if (w.stored == DType::f8e4m3 && src_dtype != DType::f8e4m3) {  // quantized here: row by row, with its scale
      std::vector<float> values;
      while (local < local_end) {
        const int64_t row = local / r.cols, col = local % r.cols;
        const int64_t take = std::min(r.cols - col, local_end - local);
        const float scale = in->row_scales.at(static_cast<std::size_t>(r.canonical_row + row));
        values.resize(static_cast<std::size_t>(take));
        convert(src_dtype,
                base + static_cast<std::size_t>((r.first_row + row) * r.row_elems + r.col_begin + col) * src_size,
                DType::f32, values.data(), values.size());
        sink.put_e4m3(values.data(), values.size(), scale);
        local += take;
      }
    } else if (r.cols == r.row_elems) {  // whole rows: one contiguous span
      const std::byte* src = base + static_cast<std::size_t>(r.first_row * r.row_elems + local) * src_size;
      const auto n = static_cast<std::size_t>(local_end - local);
      prefault(src, n * src_size, false);
      sink.put(src, src_dtype, n);
    } else {
      while (local < local_end) {
        const int64_t row = local / r.cols, col = local % r.cols;
        const int64_t take = std::min(r.cols - col, local_end - local);
        sink.put(base + static_cast<std::size_t>((r.first_row + row) * r.row_elems + r.col_begin + col) * src_size,
                 src_dtype, static_cast<std::size_t>(take));
        local += take;
      }
    }
    e = job.starts[i] + local_end;
  }
  sink.finish();
}

void write_tensors(std::vector<std::unique_ptr<TensorWork>>& work, engine::EngineWriter& writer) {
  uint64_t total_bytes = 0;
  for (auto& w : work) {
    for (Job& job : w->jobs) {
      const uint64_t nbytes = static_cast<uint64_t>(job.numel) * dtype_size(w->stored);
      job.offset = writer.reserve_tensor(job.rank, w->tensor->name, w->stored, job.shape,
                                         std::string(models::layout_name(w->tensor->layout)), nbytes);
      total_bytes += nbytes;
    }
  }
  writer.allocate();
  std::vector<Chunk> chunks;
  for (auto& w : work) {
    const int64_t per_chunk = static_cast<int64_t>(std::max<std::size_t>(1, kChunkBytes / dtype_size(w->stored)));
    const std::size_t first = chunks.size();
    for (const Job& job : w->jobs) {
      for (int64_t b = 0; b < job.numel; b += per_chunk) {
        chunks.push_back({w.get(), &job, b, std::min(job.numel, b + per_chunk)});
      }
    }
    w->chunks_left = static_cast<int64_t>(chunks.size() - first);
  }
  ThreadPool& pool = ThreadPool::global();
  const int writers = std::min(pool.size(), kMaxWriters);
  log_info("writing ", work.size(), " tensors (", total_bytes / 1000000, " MB) on ", writers, " threads");
  const auto start = std::chrono::steady_clock::now();
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::atomic<std::size_t> tensors_done{0};
  std::mutex error_mutex;
  std::exception_ptr error;
  pool.parallel_for(writers, 1, [&](int64_t, int64_t) {
    try {
      std::vector<std::byte> buffer(kBufferBytes);
      while (!failed) {
        const std::size_t i = next++;
        if (i >= chunks.size()) break;
        write_chunk(chunks[i], writer, buffer);
        TensorWork& w = *chunks[i].work;
        if (--w.chunks_left == 0) {
          std::lock_guard<std::mutex> lock(w.mutex);
          w.inputs.reset();
          const std::size_t done = ++tensors_done;
          if (done % 16 == 0 || done == work.size()) log_info("  [", done, "/", work.size(), "] ", w.tensor->name);
        }
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      failed = true;
    }
  });
  if (error) std::rethrow_exception(error);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log_info("wrote ", total_bytes / 1000000, " MB of tensors in ", seconds, " s (",
           static_cast<int64_t>(total_bytes / 1e6 / std::max(seconds, 1e-9)), " MB/s)");
}

// The per-output-channel scales of each projection an fp8 engine quantizes,
// as tensors of their own: made from the same produce()d rows the quantized
// weight is (so both see the same magnitudes), split as the weight's rows are
// (a row-parallel weight's rows are whole on every rank, and so are its scales).
void add_scale_tensors(std::vector<models::CanonicalTensor>& tensors, const checkpoint::WeightSet& weights) {
  std::vector<models::CanonicalTensor> scales;
  for (const auto& t : tensors) {
    if (!tensor_names::is_projection(t.name)) continue;
    const int64_t rows = t.shape.at(0), cols = row_elems(t.shape);
    models::CanonicalTensor s;
    s.name = tensor_names::scale_of(t.name);
    s.shape = {rows};
    s.layout = t.layout == models::Layout::row ? models::Layout::replicated : t.layout;
    s.sources = t.sources;
    s.source_shapes = t.source_shapes;
    if (from_fp8_checkpoint(t, weights)) {
      // Its sources, for the checks every source gets, are the scale tensors.
      s.sources.clear();
      s.source_shapes.clear();
      for (const auto& src : t.sources) {
        const std::string name = tensor_names::scale_of(src);
        if (!weights.contains(name)) throw_error("FP8 checkpoint tensor '", src, "' has no '", name, "' (its scales)");
        s.sources.push_back(name);
        s.source_shapes.push_back(weights.get(name).shape);
      }
      // The checkpoint's own scales, row by row as the canonical rows are its sources' rows.
      s.produce = [&weights, sources = t.sources, pieces = t.rows, source_shapes = t.source_shapes, rows] {
        FloatTensor out({rows});
        int64_t at = 0;
        for (const models::RowPiece& p : pieces) {
          const std::vector<float> per_row =
              checkpoint_row_scales(weights, sources.at(p.source), source_shapes.at(p.source).at(0));
          for (int64_t r = 0; r < p.rows; ++r) out.data()[at++] = per_row.at(static_cast<std::size_t>(p.first_row + r));
        }
        return out;
      };
      scales.push_back(std::move(s));
      continue;
    }
    if (!t.rows.empty()) {  // rows of its sources: read a row at a time, as the weight's chunks do
      s.produce = [&weights, t, rows] {
        FloatTensor out({rows});
        out.values = row_scales_from_sources(t, weights);
        return out;
      };
      scales.push_back(std::move(s));
      continue;
    }
    s.produce = [produce = t.produce, rows, cols] {
      const FloatTensor full = produce();
      FloatTensor out({rows});
      for (int64_t r = 0; r < rows; ++r) out.data()[r] = e4m3_row_scale(full.data() + r * cols, cols);
      return out;
    };
    scales.push_back(std::move(s));
  }
  for (auto& s : scales) tensors.push_back(std::move(s));
}

// fp8 engines run on the tensor cores that read E4M3: refused anywhere else, at once.
void check_quantization_target(const BuildOptions& o, DType dtype) {
  if (o.quantization != engine::Quantization::fp8) return;
  if (o.target.backend != "cuda") {
    throw_error("--quantize fp8 (option.quantize=fp8) builds for NVIDIA GPUs with FP8 tensor cores (--target cuda, ",
                "sm_89 or later: Ada, Hopper, Blackwell); the ", o.target.backend,
                " target runs unquantized engines only");
  }
  const int arch = o.target.arch.starts_with("sm_") ? std::atoi(o.target.arch.c_str() + 3) : 0;
  if (arch < 89) {
    throw_error("--quantize fp8 (option.quantize=fp8) needs FP8 tensor cores (sm_89 or later: Ada, Hopper, ",
                "Blackwell); the target is ", o.target.describe());
  }
  if (dtype == DType::f32) {
    throw_error("--quantize fp8 keeps its unquantized tensors and activations in 16 bits: use --dtype bf16 or fp16, ",
                "not fp32");
  }
}

// An FP8 KV cache is read by the CUDA attention kernels alone, beside 16-bit compute.
void check_kv_cache_target(const BuildOptions& o, DType dtype) {
  if (!o.kv_cache_dtype || *o.kv_cache_dtype == dtype) return;
  if (*o.kv_cache_dtype != DType::f8e4m3) {
    throw_error("--kv-cache-dtype ", dtype_name(*o.kv_cache_dtype),
                ": the KV cache is fp8 or the engine's dtype (auto)");
  }
  const int arch = o.target.arch.starts_with("sm_") ? std::atoi(o.target.arch.c_str() + 3) : 0;
  if (o.target.backend != "cuda" || arch < 89) {
    throw_error("--kv-cache-dtype fp8 (option.kv_cache_dtype=fp8) runs on NVIDIA GPUs from sm_89 (Ada, Hopper, ",
                "Blackwell: --target cuda); the target is ", o.target.describe());
  }
  if (dtype == DType::f32) {
    throw_error("--kv-cache-dtype fp8 runs beside 16-bit compute: use --dtype bf16 or fp16, not fp32");
  }
}

}  // namespace

BuildReport build_engine(const BuildOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  // Refuse an existing output before any work.
  if (fs::exists(o.output) && !o.force) {
    throw_error("output ", o.output.string(), " already exists; pass --force to replace it");
  }
  checkpoint::HfConfig config = checkpoint::HfConfig::load(o.model);
  for (const auto& override_text : o.hf_overrides) config.apply_override(override_text);
  const checkpoint::WeightSet weights = checkpoint::WeightSet::open(o.model);
  if (!config.torch_dtype()) {
    // As transformers' torch_dtype="auto": without a config dtype, the weights' own dtype is the model's.
    config.apply_override(concat("torch_dtype=\"", stored_dtype_name(weights), "\""));
  }
  const models::Adapter& adapter = models::Registry::builtin().find(config);
  const ModelSpec spec = adapter.spec(config);
  models::check_config_spec(spec, config, weights);
  check_splittable(spec, o.tensor_parallel);
  const engine::Limits limits = resolve_limits(o, spec);

  DType dtype = DType::f32;
  if (o.dtype) {
    dtype = *o.dtype;
  } else if (auto name = config.torch_dtype()) {
    if (!parse_dtype(*name, &dtype) || !(dtype == DType::f32 || dtype == DType::f16 || dtype == DType::bf16)) {
      dtype = DType::f32;
    }
  }
  std::vector<models::CanonicalTensor> tensors = adapter.tensors(spec, weights);
  // A pre-quantized FP8 checkpoint builds an fp8 engine from its weights as stored.
  engine::Quantization quantization = o.quantization;
  const bool fp8_checkpoint = std::any_of(tensors.begin(), tensors.end(), [&](const models::CanonicalTensor& t) {
    return from_fp8_checkpoint(t, weights);
  });
  if (fp8_checkpoint) {
    if (config.raw().contains("quantization_config")) {
      const auto& q = config.raw().at("quantization_config");
      log_info("the checkpoint is FP8 (quantization_config: quant_method ", q.value("quant_method", "?"),
               "): its E4M3 projections and scales are kept as stored");
    }
    quantization = engine::Quantization::fp8;
  }
  // An fp8 engine's other tensors and activations are 16-bit: bf16 unless asked.
  const bool fp8_kv = o.kv_cache_dtype == DType::f8e4m3;
  if ((quantization == engine::Quantization::fp8 || fp8_kv) && !o.dtype && dtype == DType::f32) dtype = DType::bf16;
  BuildOptions checked = o;
  checked.quantization = quantization;
  check_quantization_target(checked, dtype);
  check_kv_cache_target(o, dtype);
  if (quantization == engine::Quantization::fp8) add_scale_tensors(tensors, weights);

  // Every source must exist before anything is written, so the error comes first.
  std::set<std::string> used;
  for (const auto& t : tensors) {
    for (const auto& src : t.sources) {
      if (!weights.contains(src)) {
        throw_error("checkpoint ", o.model.string(), " has no tensor '", src, "' (needed for ", t.name, " of ",
                    spec.hf_architecture, ")");
      }
      used.insert(src);
    }
  }
  BuildReport report;
  report.family = spec.family;
  for (const auto& name : weights.names()) {
    // An FP8 checkpoint's scales belong to the weights they scale (its
    // static input_scale goes unused: activations are not quantized by it).
    const bool fp8_scale = (name.ends_with(".weight_scale") || name.ends_with(".input_scale")) && fp8_checkpoint;
    if (!used.count(name) && !adapter.ignorable(name) && !fp8_scale) report.unused_checkpoint_tensors.push_back(name);
  }
  if (!report.unused_checkpoint_tensors.empty()) {
    log_warn(report.unused_checkpoint_tensors.size(), " checkpoint tensor(s) not used by the ", spec.family,
             " adapter, e.g. '", report.unused_checkpoint_tensors.front(), "'");
  }

  log_info("building ", spec.family, " (", spec.hf_architecture, ") for ", o.target.describe(), ": ", spec.num_layers,
           " layers, hidden ", spec.hidden_size, ", ", dtype_name(dtype),
           quantization == engine::Quantization::fp8 ? ", projections in fp8 (E4M3, per-channel scales)" : "", ", tp ",
           o.tensor_parallel);
  std::vector<std::unique_ptr<TensorWork>> work =
      plan_tensors(tensors, weights, spec, dtype, quantization, o.tensor_parallel);

  engine::Manifest m;
  m.kiln_version = kVersion;
  m.spec = spec;
  m.target = o.target;
  m.dtype = dtype;
  m.quantization = quantization;
  m.kv_cache_dtype = o.kv_cache_dtype.value_or(dtype);
  m.source_dtype = DType::f32;
  if (auto name = config.torch_dtype()) parse_dtype(*name, &m.source_dtype);
  m.tensor_parallel = o.tensor_parallel;
  m.limits = limits;
  m.source = fs::absolute(o.model).lexically_normal().string();
  m.created = utc_now();

  engine::EngineWriter writer(o.output, o.tensor_parallel, o.force);
  // Kernel tuning needs the shapes and the GPU, not the weights: it runs while
  // they are written. Should the writing fail, the thread is stopped and joined
  // before the writer removes its temporary directory.
  nlohmann::json kernel_choices = nlohmann::json::object();
  std::exception_ptr tuning_error;
  std::jthread tuning;
  if (o.kernel_tuner) {
    tuning = std::jthread([&o, &kernel_choices, &tuning_error, manifest = m](std::stop_token stop) {
      try {
        kernel_choices = o.kernel_tuner(manifest, stop);
      } catch (...) {
        tuning_error = std::current_exception();
      }
    });
  }
  write_tensors(work, writer);
  copy_tokenizer_files(o.model, writer);
  if (tuning.joinable()) tuning.join();
  if (tuning_error) std::rethrow_exception(tuning_error);
  m.kernel_choices = std::move(kernel_choices);

  m.build_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  writer.commit(m);

  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  report.tensors = static_cast<int>(tensors.size());
  for (const auto& entry : fs::directory_iterator(o.output)) {
    if (entry.is_regular_file()) report.engine_bytes += entry.file_size();
  }
  return report;
}

}  // namespace kiln::compiler
