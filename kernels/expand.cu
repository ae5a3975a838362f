// cupysteer: fused steerable-filter expansion (block filling + change of basis).
//
// One kernel family: forward (weights -> filters) and its exact adjoint (filter
// gradient -> weight gradient). Both consume the packed expansion plan built by
// cupysteer/backends/packing.py; its layout is documented there, and the column constants
// (FP_*, BLK_*) are generated from it (see below). All plan integers are long long. Field
// pairs with the same block structure share one list of blocks (a template), sorted by
// (row, col): a block's weights are w[weight_base + positions[weight_offset + e]],
// weight_base per field pair.
// Irreps blocks may have any size (d_out x d_in, up to 13 x 13 for SO(3) l = 6) and fields
// any number of channels: the launch parameters (cupysteer.backends.launch.launch_config)
// tile the points, the irreps rows and the output columns so that every CUDA block fits its
// shared memory; planar layers get a single row chunk and column tile (the whole field pair).
//
// Forward, one CUDA block per (field pair, point tile x column tile, batch item); for each
// chunk of `rows` irreps rows a:
//   K~[a, c, x]  = sum_e w[widx[e]] * B[e, a - row, c - col, x]   (irreps blocks)
//   T[a, d, x]   = sum_c K~[a, c, x] * Q_in[d, c]  for d in the column tile (K~ straight
//                                                   into T if Q_in = I)
// then out[a', d, x] = sum_a Q_out[a', a] * T[a, d, x]  (T itself if Q_out = I).
// Adjoint, one CUDA block per (field pair, chunk of irreps rows x pass, batch item), looping
// over point tiles: G~ = Q_out^T G Q_in on the chunk's rows, then
//   grad[widx[e]] = sum_{a,c,x} B[e, a, c, x] * G~[row + a, col + c, x]
// for the weights of the chunk's blocks (at most `max_weights` per pass). Every weight
// belongs to exactly one (field pair, chunk, pass), so the adjoint needs no atomics and its
// reductions run in a fixed order (bit-reproducible).
#include "common.cuh"

#ifdef CUPYSTEER_HALF
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#endif

// The plan tables' column indices, FP_<COLUMN> (field-pair table, FP_FIELDS columns) and
// BLK_<COLUMN> (irreps-block table, BLK_FIELDS columns), are not written here: they are
// generated from cupysteer.backends.packing.FIELDPAIR_COLUMNS / BLOCK_COLUMNS by
// cupysteer.backends.kernel_source.table_defines() and prepended to this text by
// kernel_source("expand.cu") (what NVRTC, nvcc and the CPU emulation compile).
#if !defined(FP_FIELDS) || !defined(BLK_FIELDS)
#error "compile expand.cu as cupysteer.backends.kernel_source() returns it (FP_/BLK_ defines)"
#endif

template <typename Out, typename Acc>
CUPYSTEER_HD Out cs_cast(Acc v) { return static_cast<Out>(v); }

#ifdef CUPYSTEER_HALF
template <>
CUPYSTEER_HD __half cs_cast<__half, float>(float v) { return __float2half_rn(v); }
template <>
CUPYSTEER_HD __nv_bfloat16 cs_cast<__nv_bfloat16, float>(float v) { return __float2bfloat16_rn(v); }
#endif

// The part of K~ inside rows [r0, r0 + nr) x columns [c0, c0 + nc) of one field pair:
// D[((a - r0) * nc + (c - c0)) * nx + x] for the nx points from x0 (D zeroed before: only
// entries covered by blocks are written). Blocks may straddle the window's edges. `w` is
// the field pair's weights (weight_base applied).
template <typename T, typename Acc>
__device__ void fill_blocks(Acc* D, const T* __restrict__ w, const T* __restrict__ basis,
                            const long long* __restrict__ blk,
                            const long long* __restrict__ positions, int b0, int b1, int r0,
                            int nr, int c0, int nc, int nx, int x0, int P) {
    for (int b = b0; b < b1; ++b) {
        const long long* q = blk + (long long)b * BLK_FIELDS;
        const int row = (int)q[BLK_ROW], col = (int)q[BLK_COL];
        const int dout = (int)q[BLK_D_OUT], din = (int)q[BLK_D_IN];
        const int a0 = max(row, r0), a1 = min(row + dout, r0 + nr);
        const int k0 = max(col, c0), k1 = min(col + din, c0 + nc);
        if (a0 >= a1 || k0 >= k1) continue;  // uniform across the block
        const int n = (int)q[BLK_COUNT], nk = k1 - k0;
        const T* B = basis + q[BLK_BASIS_OFFSET] + x0;
        const long long* wi = positions + q[BLK_WEIGHT_OFFSET];
        const long long estride = (long long)dout * din * P;
        const int m = (a1 - a0) * nk * nx;
        for (int i = threadIdx.x; i < m; i += blockDim.x) {
            const int x = i % nx, ac = i / nx, c = k0 + ac % nk, a = a0 + ac / nk;
            const T* Bp = B + ((a - row) * din + (c - col)) * P + x;
            Acc s = Acc(0);
#pragma unroll 2
            for (int e = 0; e < n; ++e) s = cs_fma(Acc(w[wi[e]]), Acc(Bp[e * estride]), s);
            D[((a - r0) * nc + (c - c0)) * nx + x] = s;
        }
    }
}

template <typename T, typename Acc, typename Out>
__device__ void expand_forward_impl(const T* __restrict__ weights, long long weight_stride,
                                    const T* __restrict__ basis, const T* __restrict__ cob,
                                    const long long* __restrict__ fp,
                                    const long long* __restrict__ blk,
                                    const long long* __restrict__ positions,
                                    Out* __restrict__ out, long long out_stride, int tile,
                                    int rows, int cols, int col_tiles) {
    extern __shared__ unsigned char cs_smem[];
    const long long* f = fp + (long long)blockIdx.x * FP_FIELDS;
    const int P = (int)f[FP_POINTS];
    const int so = (int)f[FP_OUT_SIZE], si = (int)f[FP_IN_SIZE];
    const int x0 = (int)(blockIdx.y / col_tiles) * tile;
    const int d0 = (int)(blockIdx.y % col_tiles) * cols;
    if (x0 >= P || d0 >= si) return;  // uniform across the block: before any barrier
    const int nx = min(tile, P - x0), nd = min(cols, si - d0);
    // shared: T (so x nd x nx), then one chunk of K~ (rows x si x nx) when Q_in != I
    Acc* Tm = reinterpret_cast<Acc*>(cs_smem);
    Acc* Kc = Tm + so * nd * nx;
    {
        const T* w = weights + (long long)blockIdx.z * weight_stride + f[FP_WEIGHT_BASE];
        const int b0 = (int)f[FP_BLOCK_BEGIN], b1 = (int)f[FP_BLOCK_END];
        const long long in_cob = f[FP_IN_COB];
        // K~ chunk: all si columns into Kc when Q_in != I, else the column tile straight
        // into T
        const bool qin = in_cob >= 0;
        const T* Q = cob + (qin ? in_cob + (long long)d0 * si : 0);
        const int c0 = qin ? 0 : d0, nc = qin ? si : nd;
        for (int r0 = 0; r0 < so; r0 += rows) {
            const int nr = min(rows, so - r0);
            Acc* Tr = Tm + r0 * nd * nx;
            Acc* D = qin ? Kc : Tr;
            const int kcells = nr * nc * nx;
            for (int i = threadIdx.x; i < kcells; i += blockDim.x) D[i] = Acc(0);
            __syncthreads();
            fill_blocks<T, Acc>(D, w, basis, blk, positions, b0, b1, r0, nr, c0, nc, nx, x0, P);
            __syncthreads();
            if (qin) {  // T[r0 + a, d, x] = sum_c K~[a, c, x] Q_in[d0 + d, c]
                const int tcells = nr * nd * nx;
                for (int i = threadIdx.x; i < tcells; i += blockDim.x) {
                    const int x = i % nx, ad = i / nx, d = ad % nd, a = ad / nd;
                    const Acc* Kr = Kc + a * si * nx + x;
                    const T* Qd = Q + d * si;
                    Acc s = Acc(0);
                    for (int c = 0; c < si; ++c) s = cs_fma(Kr[c * nx], Acc(Qd[c]), s);
                    Tr[i] = s;
                }
                __syncthreads();  // T rows complete; Kc free for the next chunk
            }
        }
    }

    const long long out_cob = f[FP_OUT_COB];
    const long long row_stride = f[FP_IN_CHANNELS] * P;
    Out* o = out + (long long)blockIdx.z * out_stride + f[FP_FILTER_BASE] +
             f[FP_OUT_OFFSET] * row_stride + (f[FP_IN_OFFSET] + d0) * P + x0;
    const T* Q = cob + (out_cob >= 0 ? out_cob : 0);
    const int cells = so * nd * nx;
    for (int i = threadIdx.x; i < cells; i += blockDim.x) {
        const int x = i % nx, ad = i / nx, d = ad % nd, a = ad / nd;
        Acc s;
        if (out_cob >= 0) {
            const T* Qa = Q + a * so;
            const Acc* Td = Tm + d * nx + x;
            s = Acc(0);
            for (int b = 0; b < so; ++b) s = cs_fma(Acc(Qa[b]), Td[b * nd * nx], s);
        } else {
            s = Tm[i];
        }
        o[a * row_stride + d * P + x] = cs_cast<Out, Acc>(s);
    }
}

// First block in [lo, hi) whose field `field` is >= v (blocks sorted by row, and their
// weight offsets increasing).
__device__ __forceinline__ long long cs_lower_bound(const long long* __restrict__ blk,
                                                    long long lo, long long hi, int field,
                                                    long long v) {
    while (lo < hi) {
        const long long mid = lo + (hi - lo) / 2;
        if (blk[mid * BLK_FIELDS + field] < v) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

template <typename T, typename Acc>
__device__ void expand_adjoint_impl(const T* __restrict__ grad_filter, long long filter_stride,
                                    const T* __restrict__ basis, const T* __restrict__ cob,
                                    const long long* __restrict__ fp,
                                    const long long* __restrict__ blk,
                                    const long long* __restrict__ positions,
                                    T* __restrict__ grad_weights, long long weight_stride,
                                    int tile, int rows, int max_weights, int passes) {
    extern __shared__ unsigned char cs_smem[];
    const long long* f = fp + (long long)blockIdx.x * FP_FIELDS;
    const long long b0 = f[FP_BLOCK_BEGIN], b1 = f[FP_BLOCK_END];
    if (b0 == b1) return;  // a field pair without basis elements has no weights
    const int P = (int)f[FP_POINTS];
    const int so = (int)f[FP_OUT_SIZE], si = (int)f[FP_IN_SIZE];
    const int r0 = (int)(blockIdx.y / passes) * rows;
    if (r0 >= so) return;
    const bool whole = rows >= so;  // one chunk: every row of the field pair
    // the chunk: blocks whose first row is in [r0, r0 + rows) (contiguous: sorted by row)
    const long long cb0 = whole ? b0 : cs_lower_bound(blk, b0, b1, BLK_ROW, r0);
    const long long cb1 = whole ? b1 : cs_lower_bound(blk, cb0, b1, BLK_ROW, r0 + rows);
    if (cb0 == cb1) return;
    const long long ws = blk[cb0 * BLK_FIELDS + BLK_WEIGHT_OFFSET];
    const long long we = blk[(cb1 - 1) * BLK_FIELDS + BLK_WEIGHT_OFFSET] +
                         blk[(cb1 - 1) * BLK_FIELDS + BLK_COUNT];
    const long long j0 = ws + (long long)(blockIdx.y % passes) * max_weights;
    if (j0 >= we) return;
    const int nw = (int)min((long long)max_weights, we - j0);
    // rows of G~ the chunk reads: [rlo, rhi)
    int rlo = 0, rhi = so;
    if (!whole) {
        rlo = (int)blk[cb0 * BLK_FIELDS + BLK_ROW];
        rhi = rlo;
        for (long long b = cb0; b < cb1; ++b)
            rhi = max(rhi, (int)(blk[b * BLK_FIELDS + BLK_ROW] +
                                 blk[b * BLK_FIELDS + BLK_D_OUT]));
    }
    const int nr = rhi - rlo;
    Acc* acc = reinterpret_cast<Acc*>(cs_smem);
    Acc* K = acc + max_weights;
    Acc* Tm = K + nr * si * tile;
    for (int j = threadIdx.x; j < nw; j += blockDim.x) acc[j] = Acc(0);

    const T* g = grad_filter + (long long)blockIdx.z * filter_stride + f[FP_FILTER_BASE];
    const long long row_stride = f[FP_IN_CHANNELS] * P;
    const long long o0 = f[FP_OUT_OFFSET], i0 = f[FP_IN_OFFSET];
    const long long in_cob = f[FP_IN_COB], out_cob = f[FP_OUT_COB];

    for (int x0 = 0; x0 < P; x0 += tile) {
        const int nx = min(tile, P - x0);
        const int cells = nr * si * nx;
        __syncthreads();  // previous tile fully consumed
        Acc* X = K;
        Acc* Y = Tm;
        if (whole || out_cob < 0) {  // the rows [rlo, rhi) of G, then Q_out^T over them
            for (int i = threadIdx.x; i < cells; i += blockDim.x) {
                const int x = i % nx, ac = i / nx, c = ac % si, a = ac / si;
                K[i] = Acc(g[(o0 + rlo + a) * row_stride + (i0 + c) * P + x0 + x]);
            }
            __syncthreads();
            if (out_cob >= 0) {  // Y[b, c, x] = sum_a Q_out[a, b] X[a, c, x]
                const T* Q = cob + out_cob;
                for (int i = threadIdx.x; i < cells; i += blockDim.x) {
                    const int x = i % nx, bc = i / nx, c = bc % si, b = bc / si;
                    Acc s = Acc(0);
                    for (int a = 0; a < so; ++a)
                        s = cs_fma(Acc(Q[a * so + b]), X[(a * si + c) * nx + x], s);
                    Y[i] = s;
                }
                __syncthreads();
                Acc* t = X; X = Y; Y = t;
            }
        } else {  // a chunk of rows: Q_out^T straight from G (all of its rows are needed)
            const T* Q = cob + out_cob + rlo;
            const T* gx = g + o0 * row_stride + i0 * P + x0;
            for (int i = threadIdx.x; i < cells; i += blockDim.x) {
                const int x = i % nx, bc = i / nx, c = bc % si, b = bc / si;
                const T* gc = gx + (long long)c * P + x;
                Acc s = Acc(0);
                for (int a = 0; a < so; ++a)
                    s = cs_fma(Acc(Q[a * so + b]), Acc(gc[a * row_stride]), s);
                K[i] = s;
            }
            __syncthreads();
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
        // each weight slot is owned by one thread: no race, fixed summation order
        for (int jj = threadIdx.x; jj < nw; jj += blockDim.x) {
            const long long j = j0 + jj;
            // the block holding slot j: the last one whose weight offset is <= j
            const long long b = cs_lower_bound(blk, cb0, cb1, BLK_WEIGHT_OFFSET, j + 1) - 1;
            const long long* q = blk + b * BLK_FIELDS;
            const int e = (int)(j - q[BLK_WEIGHT_OFFSET]);
            const int row = (int)q[BLK_ROW] - rlo, col = (int)q[BLK_COL];
            const int dout = (int)q[BLK_D_OUT], din = (int)q[BLK_D_IN];
            const T* B = basis + q[BLK_BASIS_OFFSET] + (long long)e * dout * din * P + x0;
            Acc s = acc[jj];
            for (int a = 0; a < dout; ++a)
                for (int c = 0; c < din; ++c)
                    // an explicit factor: NVRTC 13.0's default unrolling made ptxas spill
                    // 8-16 bytes here for sm_90/sm_100 (tests/test_kernels_compile.py)
#pragma unroll 4
                    for (int x = 0; x < nx; ++x)
                        s = cs_fma(Acc(B[(long long)(a * din + c) * P + x]),
                                   X[((row + a) * si + (col + c)) * nx + x], s);
            acc[jj] = s;
        }
    }
    __syncthreads();
    T* gw = grad_weights + (long long)blockIdx.z * weight_stride;
    const long long wbase = f[FP_WEIGHT_BASE];
    for (int jj = threadIdx.x; jj < nw; jj += blockDim.x)
        gw[wbase + positions[j0 + jj]] = T(acc[jj]);
}

template <typename T, typename Acc, typename Out>
__global__ void __launch_bounds__(256)
expand_forward(const T* __restrict__ weights, long long weight_stride, const T* __restrict__ basis,
               const T* __restrict__ cob, const long long* __restrict__ fp,
               const long long* __restrict__ blk, const long long* __restrict__ positions,
               Out* __restrict__ out, long long out_stride, int tile, int rows, int cols,
               int col_tiles) {
    expand_forward_impl<T, Acc, Out>(weights, weight_stride, basis, cob, fp, blk, positions,
                                     out, out_stride, tile, rows, cols, col_tiles);
}

template <typename T, typename Acc>
__global__ void __launch_bounds__(256)
expand_adjoint(const T* __restrict__ grad_filter, long long filter_stride,
               const T* __restrict__ basis, const T* __restrict__ cob,
               const long long* __restrict__ fp, const long long* __restrict__ blk,
               const long long* __restrict__ positions, T* __restrict__ grad_weights,
               long long weight_stride, int tile, int rows, int max_weights, int passes) {
    expand_adjoint_impl<T, Acc>(grad_filter, filter_stride, basis, cob, fp, blk, positions,
                                grad_weights, weight_stride, tile, rows, max_weights, passes);
}
