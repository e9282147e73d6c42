#include "runtime/weight_verifier.h"

#include <algorithm>
#include <cstdlib>
#include <numeric>
#include <thread>

#include "core/error.h"

namespace kiln::runtime {

namespace {

// Threads that hash the mapped file. Where the backend uses the mapped engine
// in place, hashing is all the load does: every core. KILN_VERIFY_THREADS
// overrides, for measuring.
int file_threads() {
  if (const char* env = std::getenv("KILN_VERIFY_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return n;
  }
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

bool every_blob_has_chunks(const engine::Manifest& m) {
  return std::all_of(m.ranks.begin(), m.ranks.end(), [](const auto& r) { return !r.chunk_checksums.empty(); });
}

}  // namespace

UploadedCheckPlan plan_uploaded_check(
    const engine::Manifest& m,
    const std::function<const void*(std::size_t rank, const engine::TensorEntry& tensor)>& placed) {
  UploadedCheckPlan plan;
  std::vector<std::vector<std::size_t>> by_offset(m.ranks.size());  // each rank's tensors in blob order
  for (std::size_t r = 0; r < m.ranks.size(); ++r) {
    auto& order = by_offset[r];
    order.resize(m.ranks[r].tensors.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return m.ranks[r].tensors[a].offset < m.ranks[r].tensors[b].offset;
    });
  }
  std::vector<std::size_t> first(m.ranks.size(), 0);  // the first tensor that may reach the next piece
  for (const engine::BlobPiece& piece : engine::blob_pieces(m)) {
    const auto& tensors = m.ranks[piece.rank].tensors;
    const auto& order = by_offset[piece.rank];
    const uint64_t begin = piece.offset, end = piece.offset + piece.size;
    std::size_t& i = first[piece.rank];
    while (i < order.size() && tensors[order[i]].offset + tensors[order[i]].nbytes <= begin) ++i;
    UploadedPiece layout{piece.size, {}};
    // Tensors start at multiples of kTensorAlignment in the blob: with chunks
    // at such multiples too, no 64-byte stripe of a piece holds two tensors.
    bool on_backend = !piece.whole_file && m.ranks[piece.rank].chunk_bytes % engine::kTensorAlignment == 0;
    uint64_t covered = begin;  // spans must not overlap: a table that has them is checked from the file
    for (std::size_t j = i; on_backend && j < order.size() && tensors[order[j]].offset < end; ++j) {
      const engine::TensorEntry& t = tensors[order[j]];
      if (t.nbytes == 0) continue;
      const void* data = placed(piece.rank, t);
      const uint64_t from = std::max(begin, t.offset), to = std::min(end, t.offset + t.nbytes);
      if (data == nullptr || from < covered) {
        on_backend = false;
        break;
      }
      layout.spans.push_back({from - begin, to - from, static_cast<const char*>(data) + (from - t.offset)});
      covered = to;
    }
    if (on_backend) {
      plan.uploaded.push_back(piece);
      plan.layouts.push_back(std::move(layout));
    } else {
      plan.from_file.push_back(piece);
    }
  }
  return plan;
}

WeightVerifier::WeightVerifier(const engine::Engine& engine, Backend& backend, bool verify)
    : engine_(engine), backend_(backend) {
  if (!verify || !engine.verify_weights()) return;
  check_uploads_ = backend.copies_weights() && every_blob_has_chunks(engine.manifest());
  // The file is hashed while the tensors are taken from it (both read the same mapped pages).
  if (!check_uploads_) file_.emplace(engine, file_threads());
}

void WeightVerifier::uploaded(int rank, const std::string& name, const Weight& weight) {
  if (check_uploads_) placed_[{static_cast<std::size_t>(rank), name}] = weight.data;
}

void WeightVerifier::finish() {
  if (file_) {
    file_->finish();
    file_.reset();
  }
  if (!check_uploads_) return;
  check_uploads_ = false;
  const UploadedCheckPlan plan =
      plan_uploaded_check(engine_.manifest(), [&](std::size_t rank, const engine::TensorEntry& t) -> const void* {
        const auto found = placed_.find({rank, t.name});
        return found == placed_.end() ? nullptr : found->second;
      });
  // Tensors the load did not take (none today) are checked from the file, at the same time.
  std::optional<engine::BlobVerifier> rest;
  if (!plan.from_file.empty()) rest.emplace(engine_, plan.from_file, file_threads());
  const std::vector<uint64_t> digests = backend_.checksum_uploaded(plan.layouts);
  for (std::size_t i = 0; i < plan.uploaded.size(); ++i) {
    if (digests.at(i) != plan.uploaded[i].expected)
      throw Error(engine::corrupted_piece_message(engine_, plan.uploaded[i]));
  }
  if (rest) rest->finish();
}

}  // namespace kiln::runtime
