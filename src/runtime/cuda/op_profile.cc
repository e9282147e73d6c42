#include "runtime/cuda/op_profile.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace kiln::runtime::cuda {

OpProfile::OpProfile() {
  const char* v = std::getenv("KILN_CUDA_PROFILE");
  enabled_ = v && *v && std::strcmp(v, "0") != 0;
  by_rows_ = enabled_ && std::strcmp(v, "rows") == 0;
}

OpProfile::~OpProfile() {
  if (!enabled_) return;
  collect();
  std::vector<std::pair<std::string, std::pair<double, long>>> rows(totals_.begin(), totals_.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
  double total = 0;
  for (const auto& r : rows) total += r.second.first;
  std::fprintf(stderr, "KILN_CUDA_PROFILE: GPU time per op kind (%.1f ms in all)\n", total);
  for (const auto& [name, t] : rows) {
    std::fprintf(stderr, "  %-24s %10.2f ms %5.1f%% %8ld calls %8.2f us/call\n", name.c_str(), t.first,
                 total > 0 ? 100 * t.first / total : 0.0, t.second, 1e3 * t.first / static_cast<double>(t.second));
  }
  for (auto& p : pending_) cudaEventDestroy(p.start), cudaEventDestroy(p.end);
  for (auto e : free_) cudaEventDestroy(e);
}

cudaEvent_t OpProfile::event() {
  if (!free_.empty()) {
    cudaEvent_t e = free_.back();
    free_.pop_back();
    return e;
  }
  cudaEvent_t e = nullptr;
  cudaEventCreate(&e);
  return e;
}

OpProfile::Scope::Scope(OpProfile* profile, const char* name, cudaStream_t stream)
    : profile_(profile), stream_(stream) {
  if (!profile_) return;
  Pending p{profile_->by_rows_ ? std::string(name) + " @" + std::to_string(profile_->step_rows_) : std::string(name),
            profile_->event(), profile_->event()};
  cudaEventRecord(p.start, stream_);
  profile_->pending_.push_back(p);
}

OpProfile::Scope::~Scope() {
  if (profile_) cudaEventRecord(profile_->pending_.back().end, stream_);
}

void OpProfile::collect() {
  if (!enabled_) return;
  for (const auto& p : pending_) {
    float ms = 0;
    if (cudaEventSynchronize(p.end) == cudaSuccess && cudaEventElapsedTime(&ms, p.start, p.end) == cudaSuccess) {
      auto& t = totals_[p.name];
      t.first += ms;
      t.second += 1;
    }
    free_.push_back(p.start);
    free_.push_back(p.end);
  }
  pending_.clear();
}

}  // namespace kiln::runtime::cuda
