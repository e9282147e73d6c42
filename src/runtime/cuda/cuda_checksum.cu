// engine::ChunkChecksum of uploaded weights, on the device: one thread block
// per piece (a 4 MiB chunk of a blob). A block's 1 KiB hash blocks are
// independent until the lane scramble that closes each one, so every thread
// sums one hash block's stripes (the additions commute) and eight threads
// then run the lanes' scramble chains over the tile in order: the loads go at
// the memory's rate and only the cheap chain is sequential.
#include "runtime/cuda/cuda_common.cuh"
#include "runtime/cuda/cuda_kernels.h"

namespace kiln::runtime::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kLanes = 8;
constexpr uint64_t kStripeBytes = 64, kBlockBytes = 1024;
constexpr int kStripesPerBlock = 16;

// The 64-byte stripe at piece offset `at` (`valid` of its bytes in the piece,
// the rest zero), from the span that holds it or zeros; `c` is the thread's
// cursor into the piece's spans, which only moves forward.
__device__ __forceinline__ void load_stripe(const ChecksumSpan* spans, uint32_t n, uint32_t& c, uint64_t at,
                                            uint64_t valid, uint64_t (&v)[kLanes]) {
#pragma unroll
  for (int i = 0; i < kLanes; ++i) v[i] = 0;
  while (c < n && spans[c].offset + spans[c].nbytes <= at) ++c;
  if (c >= n || spans[c].offset >= at + valid) return;  // padding between tensors
  const unsigned char* p = spans[c].data + (at - spans[c].offset);
  const uint64_t have = min(valid, spans[c].offset + spans[c].nbytes - at);
  if (have == kStripeBytes && (reinterpret_cast<uintptr_t>(p) & 15) == 0) {
    const auto* q = reinterpret_cast<const uint4*>(p);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint4 w = __ldg(q + i);
      v[2 * i] = uint64_t{w.x} | uint64_t{w.y} << 32;
      v[2 * i + 1] = uint64_t{w.z} | uint64_t{w.w} << 32;
    }
    return;
  }
  for (uint64_t j = 0; j < have; ++j) v[j / 8] |= uint64_t{p[j]} << (8 * (j % 8));
}

__global__ void __launch_bounds__(kThreads)
    checksum_kernel(const ChecksumPiece* __restrict__ pieces, const ChecksumSpan* __restrict__ all_spans,
                    const ChecksumKeys keys, uint64_t* __restrict__ lanes) {
  __shared__ uint64_t stripe_keys[kStripesPerBlock][kLanes];
  __shared__ uint64_t sums[kThreads][kLanes + 1];  // +1: the chain's column reads spread over banks
  for (int i = threadIdx.x; i < kStripesPerBlock * kLanes; i += kThreads) {
    stripe_keys[i / kLanes][i % kLanes] = keys.stripe[i / kLanes][i % kLanes];
  }
  const ChecksumPiece piece = pieces[blockIdx.x];
  const ChecksumSpan* spans = all_spans + piece.first_span;
  const uint64_t full = piece.size / kBlockBytes, tail = piece.size % kBlockBytes;
  // Every piece ends with one unfinished block: its stripes that hold data,
  // none when the size is a multiple of kBlockBytes (then only the scramble).
  const uint64_t blocks = full + 1;
  const int lane = threadIdx.x;
  uint64_t acc = 0, scramble_key = 0;
  if (lane < kLanes) acc = keys.initial[lane], scramble_key = keys.scramble[lane];
  __syncthreads();
  for (uint64_t tile = 0; tile < blocks; tile += kThreads) {
    const uint64_t b = tile + threadIdx.x;
    uint64_t sum[kLanes] = {};
    if (b < blocks) {
      const uint64_t bytes = b < full ? kBlockBytes : tail, start = b * kBlockBytes;
      const int stripes = static_cast<int>((bytes + kStripeBytes - 1) / kStripeBytes);
      // The first span that reaches this block (the spans lie in order).
      uint32_t lo = 0, hi = piece.spans;
      while (lo < hi) {
        const uint32_t mid = (lo + hi) / 2;
        if (spans[mid].offset + spans[mid].nbytes <= start)
          lo = mid + 1;
        else
          hi = mid;
      }
      for (int s = 0; s < stripes; ++s) {
        const uint64_t at = start + s * kStripeBytes;
        uint64_t v[kLanes];
        load_stripe(spans, piece.spans, lo, at, min(kStripeBytes, bytes - s * kStripeBytes), v);
#pragma unroll
        for (int i = 0; i < kLanes; ++i) {
          const uint64_t k = v[i] ^ stripe_keys[s][i];
          sum[i] += (k & 0xffffffffu) * (k >> 32);
          sum[i ^ 1] += v[i];
        }
      }
    }
#pragma unroll
    for (int i = 0; i < kLanes; ++i) sums[threadIdx.x][i] = sum[i];
    __syncthreads();
    if (lane < kLanes) {
      const uint64_t count = min(uint64_t{kThreads}, blocks - tile);
      for (uint64_t j = 0; j < count; ++j) {
        uint64_t a = acc + sums[j][lane];
        a ^= a >> 47;
        a ^= scramble_key;
        acc = a * keys.multiplier;
      }
    }
    __syncthreads();
  }
  if (lane < kLanes) lanes[blockIdx.x * uint64_t{kLanes} + lane] = acc;
}

}  // namespace

void checksum_lanes(const ChecksumPiece* pieces, int64_t n, const ChecksumSpan* spans, const ChecksumKeys& keys,
                    uint64_t* lanes, cudaStream_t stream) {
  if (n == 0) return;
  checksum_kernel<<<static_cast<unsigned>(n), kThreads, 0, stream>>>(pieces, spans, keys, lanes);
  check_launch("checksum");
}

}  // namespace kiln::runtime::cuda
