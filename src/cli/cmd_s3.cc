// kiln s3 cp SRC DST [--recursive]: copies files and trees between the local
// disk and S3 in either direction, like `aws s3 cp`, in parallel.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>

#include "cli/commands.h"
#include "core/error.h"
#include "storage/multipart.h"
#include "storage/ranged_download.h"
#include "storage/s3_client.h"
#include "storage/tree_copy.h"

namespace kiln::cli {
namespace {

namespace fs = std::filesystem;
using storage::S3Uri;

struct CopyArgs {
  std::string source;
  std::string destination;
  bool recursive = false;
  bool quiet = false;
  int jobs = 8;
  int64_t part_size_mib = 8;
};

// A single-line progress display, redrawn at most a few times a second, on a terminal only.
class ProgressLine {
 public:
  explicit ProgressLine(bool enabled) : enabled_(enabled), start_(std::chrono::steady_clock::now()) {}
  void add(int64_t bytes) {
    const int64_t total = bytes_ += bytes;
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> lock(mutex_);
    if (now - last_draw_ < std::chrono::milliseconds(200)) return;
    last_draw_ = now;
    const double s = std::chrono::duration<double>(now - start_).count();
    std::fprintf(stderr, "\r%.1f MiB  %.1f MB/s   ", static_cast<double>(total) / (1 << 20),
                 s > 0 ? static_cast<double>(total) / 1e6 / s : 0.0);
  }
  void finish() {
    if (enabled_) std::fprintf(stderr, "\r\033[K");
  }

 private:
  bool enabled_;
  std::atomic<int64_t> bytes_{0};
  std::mutex mutex_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_{};
};

// `aws s3 cp file s3://b/dir/` and `cp s3://b/k dir/` keep the file's own name.
S3Uri upload_destination(const fs::path& file, S3Uri dst) {
  if (dst.key.empty() || dst.key.ends_with('/')) dst.key += file.filename().string();
  return dst;
}
fs::path download_destination(const S3Uri& src, const std::string& dst) {
  const fs::path name = fs::path(src.key).filename();
  if (dst.ends_with('/') || fs::is_directory(dst)) return fs::path(dst) / name;
  return dst;
}

void run_copy(const CopyArgs& args) {
  const bool src_s3 = storage::is_s3_uri(args.source);
  const bool dst_s3 = storage::is_s3_uri(args.destination);
  if (src_s3 == dst_s3) {
    throw_error("kiln s3 cp copies between the local disk and S3: exactly one of '", args.source, "' and '",
                args.destination, "' must be an s3:// URI");
  }
  storage::S3Client client = storage::S3Client::from_environment();
  storage::TransferOptions options;
  options.file_concurrency = std::max(args.jobs, 1);
  options.part_concurrency = std::max(args.jobs, 1);
  options.part_size = std::max<int64_t>(args.part_size_mib, 5) << 20;  // S3's minimum part size is 5 MiB
  options.multipart_threshold = 2 * options.part_size;
  ProgressLine progress(!args.quiet && ::isatty(STDERR_FILENO));
  options.on_bytes = [&](int64_t n) { progress.add(n); };

  const auto start = std::chrono::steady_clock::now();
  storage::TransferSummary summary;
  if (args.recursive) {
    summary = dst_s3 ? storage::upload_tree(client, args.source, S3Uri::parse(args.destination), options)
                     : storage::download_tree(client, S3Uri::parse(args.source), args.destination, options);
  } else if (dst_s3) {
    if (fs::is_directory(args.source)) throw_error(args.source, " is a directory: use --recursive");
    summary.bytes = storage::upload_file(client, args.source,
                                         upload_destination(args.source, S3Uri::parse(args.destination)), options);
    summary.files = 1;
  } else {
    const S3Uri src = S3Uri::parse(args.source);
    if (src.key.empty() || src.key.ends_with('/')) throw_error(args.source, " is a prefix: use --recursive");
    const fs::path destination = download_destination(src, args.destination);
    storage::remove_stale_partials(destination.has_parent_path() ? destination.parent_path() : fs::path("."));
    summary.bytes = storage::download_file(client, src, destination, options);
    summary.files = 1;
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  progress.finish();
  if (!args.quiet) {
    std::fprintf(stderr, "kiln s3 cp: %lld files, %lld bytes (%.1f MiB) in %.2f s, %.1f MB/s%s\n",
                 static_cast<long long>(summary.files), static_cast<long long>(summary.bytes),
                 static_cast<double>(summary.bytes) / (1 << 20), summary.seconds,
                 summary.seconds > 0 ? static_cast<double>(summary.bytes) / 1e6 / summary.seconds : 0.0,
                 client.retries() > 0 ? concat(", ", client.retries(), " retried requests").c_str() : "");
  }
}

}  // namespace

void add_s3_command(CLI::App& app) {
  CLI::App* s3 = app.add_subcommand("s3", "Copy files and trees between the local disk and S3");
  s3->require_subcommand(1);
  auto args = std::make_shared<CopyArgs>();
  CLI::App* cp = s3->add_subcommand("cp", "kiln s3 cp SRC DST [--recursive]: upload or download, like `aws s3 cp`");
  cp->add_option("source", args->source, "local path or s3://bucket/key")->required();
  cp->add_option("destination", args->destination, "local path or s3://bucket/key")->required();
  cp->add_flag("-r,--recursive", args->recursive, "copy a directory tree / every object under a prefix");
  cp->add_option("-j,--jobs", args->jobs, "requests in flight (files, and parts of each large file)")
      ->capture_default_str();
  cp->add_option("--part-size-mib", args->part_size_mib, "multipart part and ranged-GET size in MiB (>= 5)")
      ->capture_default_str();
  cp->add_flag("--no-summary", args->quiet, "print nothing on success");
  cp->callback([args] { run_copy(*args); });
}

}  // namespace kiln::cli
