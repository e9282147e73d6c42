// Tensor-core pieces the attention kernels share: mma.sync.m16n8k16 on 16-bit
// operands with fp32 accumulators, packing two floats into one operand
// register, cp.async staging, ldmatrix fragment loads, E4M3 widening, and
// whether the GPU runs them.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

namespace kiln::runtime::cuda {

// Two floats rounded to T (fp16 or bf16) in one 32-bit operand register, a in the low half.
template <typename T>
__device__ __forceinline__ uint32_t pack2(float a, float b) {
  if constexpr (std::is_same_v<T, __half>) {
    const __half2 h = __floats2half2_rn(a, b);
    return *reinterpret_cast<const uint32_t*>(&h);
  } else {
    const __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
    return *reinterpret_cast<const uint32_t*>(&h);
  }
}

// d += a * b for one m16n8k16 tile of T operands, fp32 accumulators.
template <typename T>
__device__ __forceinline__ void mma_m16n8k16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800  // older targets never launch it (tensor_cores_present)
  if constexpr (std::is_same_v<T, __half>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
#else
  (void)d, (void)a, (void)b0, (void)b1;
#endif
}

// Asynchronous global -> shared copies (sm_80+). src-size 0 fills the
// destination with zeros: keys past the end must read as 0 (P = 0 meets V = 0,
// not garbage that could be NaN).
__device__ __forceinline__ void cp_async16(uint32_t shared, const void* global, bool valid) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared), "l"(global), "r"(valid ? 16 : 0));
#else
  (void)shared, (void)global, (void)valid;
#endif
}
__device__ __forceinline__ void cp_async16(void* shared, const void* global, bool valid) {
  cp_async16(static_cast<uint32_t>(__cvta_generic_to_shared(shared)), global, valid);
}
__device__ __forceinline__ void cp_async8(uint32_t shared, const void* global, bool valid) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n" ::"r"(shared), "l"(global), "r"(valid ? 8 : 0));
#else
  (void)shared, (void)global, (void)valid;
#endif
}
__device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}
// Waits until at most N of this thread's committed groups are in flight; the
// landed copies are then visible to this thread (others need a barrier).
template <int N>
__device__ __forceinline__ void cp_async_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#endif
}

// Four 8x8 matrices of 16-bit values from shared memory (a shared-space
// address: the caller converts its base once, and the constant offsets of an
// unrolled loop become immediates), lanes 8m..8m+7 naming matrix m's row
// addresses (16 bytes each). Without .trans lane l gets row l/4, columns
// 2(l%4)..+1 of each matrix (an m16n8k16 B fragment when rows are n and
// columns k); with .trans, rows 2(l%4)..+1 of column l/4 (the B fragment
// when rows are k).
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t shared) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared));
#else
  (void)shared, r[0] = r[1] = r[2] = r[3] = 0;
#endif
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t shared) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared));
#else
  (void)shared, r[0] = r[1] = r[2] = r[3] = 0;
#endif
}

// Two E4M3 values (the low 16 bits) as an fp16 pair, exactly.
__device__ __forceinline__ uint32_t e4m3x2_to_half2(uint32_t bits) {
  const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(bits & 0xffffu), __NV_E4M3);
  return static_cast<uint32_t>(h.x) | (static_cast<uint32_t>(h.y) << 16);
}

// mma.sync.m16n8k16 (and cp.async) need compute capability 8.0; the binary may
// also carry code for older GPUs (e.g. CMAKE_CUDA_ARCHITECTURES=75).
inline bool tensor_cores_present() {
  static const bool present = [] {
    int device = 0, major = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    return major >= 8;
  }();
  return present;
}

}  // namespace kiln::runtime::cuda
