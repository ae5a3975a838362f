// cuda_cpu_shim.h -- run CUDA C kernels on the CPU with g++ (tests only).
//
// Force-included before a .cu file:  g++ -std=c++20 -pthread -include cuda_cpu_shim.h
// The .cu text is compiled unchanged except for one line per `extern __shared__` array,
// which the harness (tests/cuda_emulation/harness.py) rewrites into
//     T* name = cudashim::dynamic_shared<T>();
//
// Execution model (what is and is not emulated):
//  * one std::thread per CUDA thread of a block; the same threads walk every block of the
//    grid, one block after another (blocks never run concurrently, so a kernel that waits
//    on another block deadlocks here -- the harness runs launches under a timeout);
//  * __syncthreads() is a std::barrier over the block's threads; a thread that returns
//    from the kernel (early or at the end) calls arrive_and_drop(), so it stops counting,
//    as an exited thread does on the GPU; the barrier is rebuilt between blocks by the
//    completion step of an end-of-block barrier;
//  * dynamic shared memory is a heap buffer of exactly the launch's shared_mem bytes,
//    refilled with 0xFF bytes (NaN for float/double) before every block so that reading
//    shared memory before writing it shows up in the results; AddressSanitizer sees any
//    access outside it;
//  * static `__shared__` variables become function-local statics (one per instantiation,
//    shared by the block's threads, not reset between blocks -- uninitialised on a GPU too);
//  * GPU launch limits are checked: at most 1024 threads per block, grid.y/z <= 65535,
//    dynamic shared memory <= 48 KiB (the default without cudaFuncSetAttribute);
//  * warps: __shfl_xor_sync only (a barrier per warp of 32 consecutive threads; every lane
//    must take part); dynamic shared memory up to the opt-in limit the harness sets with
//    cudashim_set_max_dynamic_shared (48 KiB by default);
//  * not emulated: votes and other shuffles, the weak memory model, FMA contraction
//    and flush-to-zero, __launch_bounds__ (a no-op; checked by the NVRTC resource tests).
#pragma once
#ifndef CUDA_CPU_SHIM_H
#define CUDA_CPU_SHIM_H

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cassert>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

// CUDA's own headers first (dim3/uint3, __half, __nv_bfloat16 with host implementations).
#if __has_include(<vector_types.h>) && __has_include(<cuda_fp16.h>) && !defined(CUDASHIM_NO_CUDA_HEADERS)
#include <vector_types.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#define CUDASHIM_HAVE_CUDA_HEADERS 1
#else
#define CUDASHIM_HAVE_CUDA_HEADERS 0
struct uint3 { unsigned int x, y, z; };
struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1)
        : x(vx), y(vy), z(vz) {}
};
#endif

// ---- qualifiers ---------------------------------------------------------------------------
// crt/host_defines.h (via vector_types.h) defines most of them away for a host compiler;
// define whatever is still missing, and make __shared__ a function-local static.
#ifndef __host__
#define __host__
#endif
#ifndef __device__
#define __device__
#endif
#ifndef __global__
#define __global__
#endif
#ifndef __constant__
#define __constant__
#endif
#ifndef __forceinline__
#define __forceinline__ inline __attribute__((always_inline))
#endif
#ifndef __noinline__
#define __noinline__ __attribute__((noinline))
#endif
#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif
#ifndef __align__
#define __align__(n) __attribute__((aligned(n)))
#endif
#undef __shared__
#define __shared__ static
// __restrict__ is a g++ keyword already.

namespace cudashim {

// ---- per-thread context -----------------------------------------------------------------------
struct Launch;
struct Context {
    uint3 thread_idx{0, 0, 0};
    uint3 block_idx{0, 0, 0};
    dim3 block_dim{1, 1, 1};
    dim3 grid_dim{1, 1, 1};
    Launch* launch = nullptr;
};
inline thread_local Context ctx;

struct BlockDone;  // completion step of the end-of-block barrier

struct Launch {
    dim3 grid, block;
    std::size_t shared_bytes = 0;
    std::ptrdiff_t nthreads = 0;
    std::unique_ptr<unsigned char[]> shared;  // exactly shared_bytes (ASan sees overruns)
    std::unique_ptr<std::barrier<>> sync;     // __syncthreads of the current block
    // warp shuffles (__shfl_xor_sync): one barrier per warp of 32 consecutive threads and
    // one 8-byte exchange slot per thread
    std::vector<std::unique_ptr<std::barrier<>>> warp_sync;
    std::vector<std::uint64_t> exchange;
    void new_block() {
        sync = std::make_unique<std::barrier<>>(nthreads);
        if (shared_bytes) std::memset(shared.get(), 0xFF, shared_bytes);
        warp_sync.clear();
        for (std::ptrdiff_t w = 0; w < nthreads; w += 32)
            warp_sync.push_back(std::make_unique<std::barrier<>>(
                std::min<std::ptrdiff_t>(32, nthreads - w)));
        exchange.assign(static_cast<std::size_t>(nthreads), 0);
    }
};

struct BlockDone {
    Launch* launch;
    void operator()() noexcept { launch->new_block(); }
};

template <typename T>
inline T* dynamic_shared() {
    return reinterpret_cast<T*>(ctx.launch->shared.get());
}

inline void syncthreads() { ctx.launch->sync->arrive_and_wait(); }

// ---- launch -----------------------------------------------------------------------------------
// Error codes returned to the harness (0 = launched and finished).
enum : int {
    OK = 0,
    BAD_BLOCK = 1,      // 0 or more than 1024 threads, or a dimension over its limit
    BAD_GRID = 2,       // 0 blocks, or grid.y / grid.z over 65535
    BAD_SHARED = 3,     // more than 48 KiB of dynamic shared memory
};
constexpr std::size_t kMaxDynamicShared = 48 * 1024;
// The limit of the next launch from this thread: 48 KiB unless the harness sets the
// kernel's opt-in value (cudaFuncAttributeMaxDynamicSharedMemorySize; the harness refuses
// values above the emulated device's MaxSharedMemoryPerBlockOptin, as CUDA does).
inline thread_local std::size_t max_dynamic_shared = kMaxDynamicShared;

inline std::mutex& launch_mutex() {
    static std::mutex m;
    return m;
}

template <typename... Args, std::size_t... I>
inline std::tuple<Args...> unpack(void** args, std::index_sequence<I...>) {
    // CUDA's kernelParams convention: args[i] points to the value of parameter i.
    return std::tuple<Args...>(*static_cast<std::remove_cv_t<Args>*>(args[I])...);
}

template <typename... Args>
int launch(void (*kernel)(Args...), dim3 grid, dim3 block, std::size_t shared_bytes,
           void** args) {
    const unsigned long long nthreads = 1ull * block.x * block.y * block.z;
    if (nthreads == 0 || nthreads > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64)
        return BAD_BLOCK;
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 2147483647u || grid.y > 65535u ||
        grid.z > 65535u)
        return BAD_GRID;
    if (shared_bytes > max_dynamic_shared) return BAD_SHARED;
    std::lock_guard<std::mutex> guard(launch_mutex());

    const std::tuple<Args...> params =
        unpack<Args...>(args, std::index_sequence_for<Args...>{});
    Launch L;
    L.grid = grid;
    L.block = block;
    L.shared_bytes = shared_bytes;
    L.nthreads = static_cast<std::ptrdiff_t>(nthreads);
    if (shared_bytes) L.shared.reset(new unsigned char[shared_bytes]);
    L.new_block();
    std::barrier<BlockDone> end_of_block(L.nthreads, BlockDone{&L});

    auto body = [&](unsigned int tid) {
        ctx.launch = &L;
        ctx.block_dim = block;
        ctx.grid_dim = grid;
        ctx.thread_idx = uint3{tid % block.x, (tid / block.x) % block.y,
                               tid / (block.x * block.y)};
        for (unsigned int bz = 0; bz < grid.z; ++bz)
            for (unsigned int by = 0; by < grid.y; ++by)
                for (unsigned int bx = 0; bx < grid.x; ++bx) {
                    ctx.block_idx = uint3{bx, by, bz};
                    std::apply(kernel, params);  // a copy per call, like per-thread params
                    L.sync->arrive_and_drop();   // this thread has exited the block
                    end_of_block.arrive_and_wait();
                }
        ctx.launch = nullptr;
    };

    std::vector<std::thread> threads;
    threads.reserve(nthreads);
    try {
        for (unsigned int t = 0; t < nthreads; ++t) threads.emplace_back(body, t);
    } catch (...) {  // the threads already created would wait forever at the barrier
        std::fprintf(stderr, "cudashim: could not create %llu threads\n", nthreads);
        std::abort();
    }
    for (auto& th : threads) th.join();
    return OK;
}

// ---- kernel signature, for the harness's argument checks -----------------------------------
// "P:f4" = pointer to const float, "p:f4" = pointer to float, "s:i8/8" = 64-bit integer
// by value (code/bytes), ...
template <typename T>
constexpr const char* scalar_code() {
    using U = std::remove_cv_t<T>;
    if constexpr (std::is_same_v<U, float>) return "f4";
    else if constexpr (std::is_same_v<U, double>) return "f8";
#if CUDASHIM_HAVE_CUDA_HEADERS
    else if constexpr (std::is_same_v<U, __half>) return "f2";
    else if constexpr (std::is_same_v<U, __nv_bfloat16>) return "bf2";
#endif
    else if constexpr (std::is_same_v<U, bool>) return "b1";
    else if constexpr (std::is_integral_v<U> && std::is_signed_v<U>) {
        constexpr const char* codes[] = {"", "i1", "i2", "", "i4", "", "", "", "i8"};
        return codes[sizeof(U)];
    } else if constexpr (std::is_integral_v<U>) {
        constexpr const char* codes[] = {"", "u1", "u2", "", "u4", "", "", "", "u8"};
        return codes[sizeof(U)];
    } else return "?";
}

template <typename T>
inline std::string arg_code() {
    if constexpr (std::is_pointer_v<T>)  // "P" = pointer to const (read-only), "p" = writable
        return std::string(std::is_const_v<std::remove_pointer_t<T>> ? "P:" : "p:") +
               scalar_code<std::remove_pointer_t<T>>();
    else
        return std::string("s:") + scalar_code<T>() + "/" + std::to_string(sizeof(T));
}

template <typename... Args>
inline int signature(void (*)(Args...), char* buf, std::size_t n) {
    std::string s;
    ((s += arg_code<Args>() + ","), ...);
    if (!s.empty()) s.pop_back();
    if (s.size() + 1 > n) return -1;
    std::memcpy(buf, s.c_str(), s.size() + 1);
    return static_cast<int>(s.size());
}

// ---- atomics (device-wide; std::atomic_ref on the host) --------------------------------------
template <typename T>
inline T atomic_add(T* p, T v) {
    return std::atomic_ref<T>(*p).fetch_add(v);
}
template <typename T>
inline T atomic_exch(T* p, T v) {
    return std::atomic_ref<T>(*p).exchange(v);
}
template <typename T>
inline T atomic_cas(T* p, T expected, T desired) {
    std::atomic_ref<T>(*p).compare_exchange_strong(expected, desired);
    return expected;  // the old value, as CUDA's atomicCAS returns
}
template <typename T>
inline T atomic_max(T* p, T v) {
    std::atomic_ref<T> r(*p);
    T old = r.load();
    while (old < v && !r.compare_exchange_weak(old, v)) {
    }
    return old;
}
template <typename T>
inline T atomic_min(T* p, T v) {
    std::atomic_ref<T> r(*p);
    T old = r.load();
    while (v < old && !r.compare_exchange_weak(old, v)) {
    }
    return old;
}

// ---- warp shuffle: every lane of the warp must take part (a full mask) --------------------------
template <typename T>
inline T shfl_xor(T v, int lane_mask) {
    static_assert(sizeof(T) <= 8, "shuffles move at most 8 bytes");
    Launch& L = *ctx.launch;
    const unsigned tid = ctx.thread_idx.x + ctx.block_dim.x * (ctx.thread_idx.y +
                                                               ctx.block_dim.y * ctx.thread_idx.z);
    auto& bar = *L.warp_sync[tid / 32];
    std::memcpy(&L.exchange[tid], &v, sizeof(T));
    bar.arrive_and_wait();  // every lane has published its value
    const unsigned src = (tid & ~31u) | ((tid & 31u) ^ static_cast<unsigned>(lane_mask & 31));
    T out = v;
    if (src < L.exchange.size()) std::memcpy(&out, &L.exchange[src], sizeof(T));
    bar.arrive_and_wait();  // every lane has read before the slots are reused
    return out;
}

}  // namespace cudashim

extern "C" __attribute__((visibility("default"))) void cudashim_set_max_dynamic_shared(
    std::size_t bytes) {
    cudashim::max_dynamic_shared = bytes;
}

// ---- CUDA built-ins ----------------------------------------------------------------------------
#define threadIdx (cudashim::ctx.thread_idx)
#define blockIdx (cudashim::ctx.block_idx)
#define blockDim (cudashim::ctx.block_dim)
#define gridDim (cudashim::ctx.grid_dim)
#ifndef warpSize
#define warpSize 32
#endif

inline void __syncthreads() { cudashim::syncthreads(); }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }
template <typename T>
inline T __ldg(const T* p) { return *p; }

template <typename T>
inline T __shfl_xor_sync(unsigned /*mask: full warps only*/, T v, int lane_mask,
                         int /*width*/ = 32) {
    return cudashim::shfl_xor(v, lane_mask);
}

template <typename T>
inline T atomicAdd(T* p, T v) { return cudashim::atomic_add(p, v); }
template <typename T>
inline T atomicSub(T* p, T v) { return cudashim::atomic_add(p, T(-v)); }
template <typename T>
inline T atomicExch(T* p, T v) { return cudashim::atomic_exch(p, v); }
template <typename T>
inline T atomicCAS(T* p, T e, T d) { return cudashim::atomic_cas(p, e, d); }
template <typename T>
inline T atomicMax(T* p, T v) { return cudashim::atomic_max(p, v); }
template <typename T>
inline T atomicMin(T* p, T v) { return cudashim::atomic_min(p, v); }

// CUDA's min/max accept mixed integer types (min(int, unsigned) is an unsigned min).
template <typename A, typename B>
inline std::common_type_t<A, B> min(A a, B b) {
    using C = std::common_type_t<A, B>;
    return static_cast<C>(b) < static_cast<C>(a) ? static_cast<C>(b) : static_cast<C>(a);
}
template <typename A, typename B>
inline std::common_type_t<A, B> max(A a, B b) {
    using C = std::common_type_t<A, B>;
    return static_cast<C>(a) < static_cast<C>(b) ? static_cast<C>(b) : static_cast<C>(a);
}

#endif  // CUDA_CPU_SHIM_H
