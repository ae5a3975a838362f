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

#endif  // CUPYSTEER_COMMON_CUH
