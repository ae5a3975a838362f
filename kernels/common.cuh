// common.cuh -- small helpers shared by the cupysteer CUDA kernels.
// Usable from NVRTC/nvcc (CuPy RawKernel/RawModule) and from plain C++.
#pragma once
#ifndef CUPYSTEER_COMMON_CUH
#define CUPYSTEER_COMMON_CUH

// Qualifiers for small helpers callable from host and device code.
// Non-CUDA compilers do not know __host__/__device__/__forceinline__.
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define CUPYSTEER_HD __host__ __device__ __forceinline__
#else
#define CUPYSTEER_HD inline
#endif

// a * b + c. For float/double, nvcc and NVRTC contract this into a single
// fused multiply-add by default (--fmad=true); on the host it is a plain
// multiply-add. Works for any T with * and + (float, double, int, ...).
template <typename T>
CUPYSTEER_HD T cs_fma(T a, T b, T c) {
    return a * b + c;
}

// ---- additions for expand_v2.cu ------------------------------------------------------------

// Sum over the 32 lanes of a warp by a butterfly of xor shuffles (offsets 16, 8, 4, 2, 1):
// every lane ends with the same value, and the order of the additions is fixed (IEEE
// addition is commutative, so lanes l and l^o compute bit-identical partial sums):
// deterministic run to run. Every lane of the warp must call it (full mask).
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
template <typename T>
__device__ __forceinline__ T cs_warp_sum(T v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
#else
template <typename T>
inline T cs_warp_sum(T v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
#endif

// Two consecutive elements loaded as one (8 bytes for float, 16 for double): only through a
// pointer whose alignment the launch configuration has proven (LaunchConfigV2.vec == 2).
template <typename T>
struct alignas(2 * sizeof(T)) cs_pair {
    T x, y;
};

#endif  // CUPYSTEER_COMMON_CUH
