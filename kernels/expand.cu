// cupysteer: fused steerable-filter expansion (block filling + change of basis).
//
// One kernel family: forward (weights -> filters) and its exact adjoint (filter
// gradient -> weight gradient). Both consume the packed expansion plan built by
// cupysteer/packed.py; its layout is documented there and mirrored by the
// constants below. All plan integers are long long. Field pairs with the same block
// structure share one list of blocks (a template): a block's weights are
// w[weight_base + positions[weight_offset + e]], weight_base per field pair.
//
// Forward, one CUDA block per (field pair, tile of points, batch item):
//   K~[a, c, x]  = sum_e w[widx[e]] * B[e, a - row, c - col, x]   (irreps blocks)
//   T[a, d, x]   = sum_c K~[a, c, x] * Q_in[d, c]                 (skipped if Q_in = I)
//   out[a', d, x] = sum_a Q_out[a', a] * T[a, d, x]               (skipped if Q_out = I)
// Adjoint, one CUDA block per (field pair, batch item), looping over point tiles:
//   G~ = Q_out^T G Q_in;  grad[widx[e]] = sum_{a,c,x} B[e, a, c, x] * G~[row + a, col + c, x]
// Every weight belongs to exactly one field pair, so the adjoint needs no atomics
// and its reductions run in a fixed order (bit-reproducible).
#include "common.cuh"

#ifdef CUPYSTEER_HALF
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#endif

// Field-pair table, FP_FIELDS entries per field pair.
#define FP_OUT_OFFSET 0
#define FP_OUT_SIZE 1
#define FP_OUT_COB 2
#define FP_IN_OFFSET 3
#define FP_IN_SIZE 4
#define FP_IN_COB 5
#define FP_BLOCK_BEGIN 6
#define FP_BLOCK_END 7
#define FP_FILTER_BASE 8
#define FP_IN_CHANNELS 9
#define FP_POINTS 10
#define FP_WEIGHT_BASE 11
#define FP_FIELDS 12

// Irreps-block table, BLK_FIELDS entries per block.
#define BLK_ROW 0
#define BLK_COL 1
#define BLK_DOUT 2
#define BLK_DIN 3
#define BLK_COUNT 4
#define BLK_BASIS 5
#define BLK_WEIGHT 6
#define BLK_FIELDS 7

template <typename Out, typename Acc>
CUPYSTEER_HD Out cs_cast(Acc v) { return static_cast<Out>(v); }

#ifdef CUPYSTEER_HALF
template <>
CUPYSTEER_HD __half cs_cast<__half, float>(float v) { return __float2half_rn(v); }
template <>
CUPYSTEER_HD __nv_bfloat16 cs_cast<__nv_bfloat16, float>(float v) { return __float2bfloat16_rn(v); }
#endif

// K~ (rows so, cols si, nx points) <- filled irreps blocks of one field pair.
template <typename T, typename Acc>
__device__ void fill_blocks(Acc* K, const T* __restrict__ w, const T* __restrict__ basis,
                            const long long* __restrict__ blk,
                            const long long* __restrict__ positions, long long wbase,
                            long long b0, long long b1, int si, int nx, int x0, int P) {
    for (long long b = b0; b < b1; ++b) {
        const long long* q = blk + b * BLK_FIELDS;
        const int row = (int)q[BLK_ROW], col = (int)q[BLK_COL];
        const int dout = (int)q[BLK_DOUT], din = (int)q[BLK_DIN], n = (int)q[BLK_COUNT];
        const T* B = basis + q[BLK_BASIS];
        const long long* wi = positions + q[BLK_WEIGHT];
        const T* wb = w + wbase;
        const int m = dout * din * nx;
        for (int i = threadIdx.x; i < m; i += blockDim.x) {
            const int x = i % nx, ac = i / nx, c = ac % din, a = ac / din;
            const T* Bp = B + (long long)(a * din + c) * P + x0 + x;
            const long long estride = (long long)dout * din * P;
            Acc s = Acc(0);
            for (int e = 0; e < n; ++e)
                s = cs_fma(Acc(wb[wi[e]]), Acc(Bp[e * estride]), s);
            K[((row + a) * si + (col + c)) * nx + x] = s;
        }
    }
}

template <typename T, typename Acc, typename Out>
__device__ void expand_forward_impl(const T* __restrict__ weights, long long weight_stride,
                                    const T* __restrict__ basis, const T* __restrict__ cob,
                                    const long long* __restrict__ fp,
                                    const long long* __restrict__ blk,
                                    const long long* __restrict__ positions,
                                    Out* __restrict__ out, long long out_stride, int tile) {
    extern __shared__ unsigned char cs_smem[];
    const long long* f = fp + (long long)blockIdx.x * FP_FIELDS;
    const int P = (int)f[FP_POINTS];
    const int x0 = blockIdx.y * tile;
    if (x0 >= P) return;  // uniform across the block: before any barrier
    const int nx = min(tile, P - x0);
    const int so = (int)f[FP_OUT_SIZE], si = (int)f[FP_IN_SIZE];
    const int cells = so * si * nx;
    Acc* K = reinterpret_cast<Acc*>(cs_smem);
    Acc* Tm = K + cells;
    const T* w = weights + (long long)blockIdx.z * weight_stride;

    for (int i = threadIdx.x; i < cells; i += blockDim.x) K[i] = Acc(0);
    __syncthreads();
    fill_blocks<T, Acc>(K, w, basis, blk, positions, f[FP_WEIGHT_BASE], f[FP_BLOCK_BEGIN],
                        f[FP_BLOCK_END], si, nx, x0, P);
    __syncthreads();

    const long long in_cob = f[FP_IN_COB], out_cob = f[FP_OUT_COB];
    Acc* X = K;
    if (in_cob >= 0) {  // T[a, d, x] = sum_c K[a, c, x] Q_in[d, c]
        const T* Q = cob + in_cob;
        for (int i = threadIdx.x; i < cells; i += blockDim.x) {
            const int x = i % nx, ad = i / nx, d = ad % si, a = ad / si;
            Acc s = Acc(0);
            for (int c = 0; c < si; ++c) s = cs_fma(X[(a * si + c) * nx + x], Acc(Q[d * si + c]), s);
            Tm[i] = s;
        }
        __syncthreads();
        X = Tm;
    }
    Out* o = out + (long long)blockIdx.z * out_stride + f[FP_FILTER_BASE];
    const long long row_stride = f[FP_IN_CHANNELS] * P;
    const long long o0 = f[FP_OUT_OFFSET], i0 = f[FP_IN_OFFSET];
    const T* Q = cob + (out_cob >= 0 ? out_cob : 0);
    for (int i = threadIdx.x; i < cells; i += blockDim.x) {
        const int x = i % nx, ad = i / nx, d = ad % si, a = ad / si;
        Acc s;
        if (out_cob >= 0) {
            s = Acc(0);
            for (int b = 0; b < so; ++b) s = cs_fma(Acc(Q[a * so + b]), X[(b * si + d) * nx + x], s);
        } else {
            s = X[i];
        }
        o[(o0 + a) * row_stride + (i0 + d) * P + x0 + x] = cs_cast<Out, Acc>(s);
    }
}

template <typename T, typename Acc>
__device__ void expand_adjoint_impl(const T* __restrict__ grad_filter, long long filter_stride,
                                    const T* __restrict__ basis, const T* __restrict__ cob,
                                    const long long* __restrict__ fp,
                                    const long long* __restrict__ blk,
                                    const long long* __restrict__ positions,
                                    T* __restrict__ grad_weights, long long weight_stride,
                                    int tile, int max_weights) {
    extern __shared__ unsigned char cs_smem[];
    const long long* f = fp + (long long)blockIdx.x * FP_FIELDS;
    const long long b0 = f[FP_BLOCK_BEGIN], b1 = f[FP_BLOCK_END];
    if (b0 == b1) return;  // a field pair without basis elements has no weights
    const int P = (int)f[FP_POINTS];
    const int so = (int)f[FP_OUT_SIZE], si = (int)f[FP_IN_SIZE];
    const long long w0 = blk[b0 * BLK_FIELDS + BLK_WEIGHT];
    const long long* last = blk + (b1 - 1) * BLK_FIELDS;
    const int nw = (int)(last[BLK_WEIGHT] + last[BLK_COUNT] - w0);
    Acc* acc = reinterpret_cast<Acc*>(cs_smem);
    Acc* K = acc + max_weights;
    Acc* Tm = K + so * si * tile;
    for (int j = threadIdx.x; j < nw; j += blockDim.x) acc[j] = Acc(0);

    const T* g = grad_filter + (long long)blockIdx.z * filter_stride + f[FP_FILTER_BASE];
    const long long row_stride = f[FP_IN_CHANNELS] * P;
    const long long o0 = f[FP_OUT_OFFSET], i0 = f[FP_IN_OFFSET];
    const long long in_cob = f[FP_IN_COB], out_cob = f[FP_OUT_COB];

    for (int x0 = 0; x0 < P; x0 += tile) {
        const int nx = min(tile, P - x0);
        const int cells = so * si * nx;
        __syncthreads();  // previous tile fully consumed
        for (int i = threadIdx.x; i < cells; i += blockDim.x) {
            const int x = i % nx, ac = i / nx, c = ac % si, a = ac / si;
            K[i] = Acc(g[(o0 + a) * row_stride + (i0 + c) * P + x0 + x]);
        }
        __syncthreads();
        Acc* X = K;
        Acc* Y = Tm;
        if (out_cob >= 0) {  // Y[b, c, x] = sum_a Q_out[a, b] X[a, c, x]
            const T* Q = cob + out_cob;
            for (int i = threadIdx.x; i < cells; i += blockDim.x) {
                const int x = i % nx, bc = i / nx, c = bc % si, b = bc / si;
                Acc s = Acc(0);
                for (int a = 0; a < so; ++a) s = cs_fma(Acc(Q[a * so + b]), X[(a * si + c) * nx + x], s);
                Y[i] = s;
            }
            __syncthreads();
            Acc* t = X; X = Y; Y = t;
        }
        if (in_cob >= 0) {  // Y[b, d, x] = sum_c X[b, c, x] Q_in[c, d]
            const T* Q = cob + in_cob;
            for (int i = threadIdx.x; i < cells; i += blockDim.x) {
                const int x = i % nx, bd = i / nx, d = bd % si, b = bd / si;
                Acc s = Acc(0);
                for (int c = 0; c < si; ++c) s = cs_fma(X[(b * si + c) * nx + x], Acc(Q[c * si + d]), s);
                Y[i] = s;
            }
            __syncthreads();
            X = Y;
        }
        // each weight slot j is owned by one thread: no race, fixed summation order
        for (int j = threadIdx.x; j < nw; j += blockDim.x) {
            long long b = b0;  // block holding slot j (blocks of a field pair are contiguous)
            while (blk[b * BLK_FIELDS + BLK_WEIGHT] + blk[b * BLK_FIELDS + BLK_COUNT] <= w0 + j) ++b;
            const long long* q = blk + b * BLK_FIELDS;
            const int e = (int)(w0 + j - q[BLK_WEIGHT]);
            const int row = (int)q[BLK_ROW], col = (int)q[BLK_COL];
            const int dout = (int)q[BLK_DOUT], din = (int)q[BLK_DIN];
            const T* B = basis + q[BLK_BASIS] + (long long)e * dout * din * P + x0;
            Acc s = acc[j];
            for (int a = 0; a < dout; ++a)
                for (int c = 0; c < din; ++c)
                    // an explicit factor: NVRTC 13.0's default unrolling made ptxas spill
                    // 8-16 bytes here for sm_90/sm_100 (tests/test_kernels_compile.py)
#pragma unroll 4
                    for (int x = 0; x < nx; ++x)
                        s = cs_fma(Acc(B[(long long)(a * din + c) * P + x]),
                                   X[((row + a) * si + (col + c)) * nx + x], s);
            acc[j] = s;
        }
    }
    __syncthreads();
    T* gw = grad_weights + (long long)blockIdx.z * weight_stride;
    const long long wbase = f[FP_WEIGHT_BASE];
    for (int j = threadIdx.x; j < nw; j += blockDim.x) gw[wbase + positions[w0 + j]] = T(acc[j]);
}

template <typename T, typename Acc, typename Out>
__global__ void __launch_bounds__(256)
expand_forward(const T* __restrict__ weights, long long weight_stride, const T* __restrict__ basis,
               const T* __restrict__ cob, const long long* __restrict__ fp,
               const long long* __restrict__ blk, const long long* __restrict__ positions,
               Out* __restrict__ out, long long out_stride, int tile) {
    expand_forward_impl<T, Acc, Out>(weights, weight_stride, basis, cob, fp, blk, positions,
                                     out, out_stride, tile);
}

template <typename T, typename Acc>
__global__ void __launch_bounds__(256)
expand_adjoint(const T* __restrict__ grad_filter, long long filter_stride,
               const T* __restrict__ basis, const T* __restrict__ cob,
               const long long* __restrict__ fp, const long long* __restrict__ blk,
               const long long* __restrict__ positions, T* __restrict__ grad_weights,
               long long weight_stride, int tile, int max_weights) {
    expand_adjoint_impl<T, Acc>(grad_filter, filter_stride, basis, cob, fp, blk, positions,
                                grad_weights, weight_stride, tile, max_weights);
}
