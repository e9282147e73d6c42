// The machine's memory read bandwidth with every core reading: the physical
// limit that CPU decode (which reads every weight once per token) is held to.
//   kiln_membw [MiB]   prints "read_gb_per_s <value>"
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "core/thread_pool.h"

int main(int argc, char** argv) {
  const std::size_t mib = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 1024;
  const std::size_t n = mib * (1 << 20) / sizeof(float);
  std::vector<float> data(n, 1.0f);
  auto& pool = kiln::ThreadPool::global();
  std::vector<double> sums(static_cast<std::size_t>(pool.size()) * 16);
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(static_cast<int64_t>(n), 1 << 20, [&](int64_t b, int64_t e) {
      float acc[16] = {};
      for (int64_t i = b; i + 16 <= e; i += 16) {
        for (int k = 0; k < 16; ++k) acc[k] += data[static_cast<std::size_t>(i + k)];
      }
      double s = 0;
      for (float a : acc) s += a;
      sums[static_cast<std::size_t>(b * pool.size() / static_cast<int64_t>(n)) * 16] = s;
    });
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(n * sizeof(float)) / sec / 1e9);
  }
  double check = 0;
  for (double s : sums) check += s;
  std::printf("read_gb_per_s %.2f\n", best);
  return check > 0 ? 0 : 1;
}
