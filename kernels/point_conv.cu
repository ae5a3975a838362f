// cupysteer: steerable point convolutions -- per-edge filters, never materialised.
//
// Every edge e (source src[e] -> target dst[e]) has its own filter, given block by block
// in the irreps basis: block b (one row of the block table, columns PB_*) covers rows
// [out_offset, out_offset + d_out) x columns [in_offset, in_offset + d_in) and
//   K~_b[e][r, c] = sum_k w[weight_offset + k] * basis[e, basis_offset + (k*d_out + r)*d_in + c]
// The kernels contract these blocks on the fly (K~ is never stored):
//
//   point_segments on the targets (forward), one item per (target t, output channel o):
//     y[t, o] = sum_{e: dst[e] = t} sum_{b covers row o} sum_c K~_b[e][o - out_offset, c]
//                                                          * g[src[e], in_offset + c]
//   point_segments on the sources (feature adjoint), one item per (source s, input channel i):
//     grad_g[s, i] = sum_{e: src[e] = s} sum_{b covers column i} sum_r K~_b[e][r, i - in_offset]
//                                                          * grad_y[dst[e], out_offset + r]
//   point_weight_partials + point_weight_reduce, the weight adjoint in two passes:
//     partial[tile, (b, k)] = sum_{e in tile} sum_{r, c}
//         basis[e, basis_offset + (k*d_out + r)*d_in + c] * grad_y[dst[e], out_offset + r]
//                                                         * g[src[e], in_offset + c]
//     grad_w[j] = sum_{slots (b, k) with weight_offset + k = j} sum_tiles partial[tile, (b, k)]
//
// Determinism: no atomics. The segment kernels read the edges of a node through a CSR
// (seg_ptr / seg_edges, edges stably sorted by the node, so in increasing edge index); each
// output element is owned by `split` lanes of one CUDA block, lane l taking the segment's
// edges l, l + split, ..., and lane 0 adds the lanes' partial sums in lane order. With
// split = 1 the sum runs in increasing edge order. The weight adjoint sums edges in order
// within a tile and tiles in order. The same launch configuration therefore gives
// bit-identical results on every run.
#include "common.cuh"

// The column indices of the block table (PB_<COLUMN>, PB_FIELDS) and of the channel table
// (CH_<COLUMN>, CH_FIELDS) are generated from cupysteer.backends.point_cupy.BLOCK_COLUMNS /
// CHANNEL_COLUMNS and prepended by point_cupy.point_source().
#if !defined(PB_FIELDS) || !defined(CH_FIELDS)
#error "compile point_conv.cu as point_cupy.point_source() returns it (PB_/CH_ defines)"
#endif

// One item of point_segments: the sum over the segment's edges [j0, j1) taken by `lane`
// (every split-th), over the channel's entries chan[p0 .. p1) of the channel table (one per
// block covering the channel, columns CH_*, built by point_cupy.channel_table): forward,
// the channel fixes a row r of the block and the sum runs over its d_in columns (x = g);
// adjoint, it fixes a column c and the sum runs over the d_out rows (x = grad_y):
//   sum_m (sum_k w[CH_WEIGHT + k] * B_e[CH_BASIS + k*CH_KSTRIDE + m*CH_RSTRIDE]) * x[CH_XOFF + m]
template <typename T, typename Acc>
__device__ __forceinline__ Acc point_item(const long long* __restrict__ chan, long long p0,
                                         long long p1, const T* __restrict__ basis,
                                         long long n_entries, const T* __restrict__ weights,
                                         const T* __restrict__ x, long long x_width,
                                         const long long* __restrict__ seg_edges,
                                         const long long* __restrict__ other, long long j0,
                                         long long j1, int lane, int split) {
    Acc acc = Acc(0);
#pragma unroll 1
    for (long long j = j0 + lane; j < j1; j += split) {
        const long long e = seg_edges[j];
        const T* Be = basis + e * n_entries;
        const T* xe = x + other[e] * x_width;
#pragma unroll 1
        for (long long p = p0; p < p1; ++p) {
            const long long* q = chan + p * CH_FIELDS;
            const T* B = Be + q[CH_BASIS];
            const T* w = weights + q[CH_WEIGHT];
            const T* xv = xe + q[CH_XOFF];
            const int nrun = (int)q[CH_NRUN], nb = (int)q[CH_NBASIS];
            const int rstride = (int)q[CH_RSTRIDE], kstride = (int)q[CH_KSTRIDE];
            // explicit unroll factors: NVRTC 13.0's default unrolling made ptxas spill here
            // (tests/backends/test_point_kernels_compile.py)
#pragma unroll 1
            for (int m = 0; m < nrun; ++m) {
                const T* Bk = B + m * rstride;
                Acc kv = Acc(0);  // K~_b[e] at (r, c)
#pragma unroll 2
                for (int k = 0; k < nb; ++k, Bk += kstride) kv = cs_fma(Acc(w[k]), Acc(*Bk), kv);
                acc = cs_fma(kv, Acc(xv[m]), acc);
            }
        }
    }
    return acc;
}

// Items (node, channel) of nodes [blockIdx.x * nodes_per_block, ...) in row-major order;
// blockDim.x / split items at a time, `split` lanes each (blockDim.x a multiple of split);
// item(channel, node, lane) is the lane's partial sum (point_item or point_item_2d).
// Every output element of the block's nodes is written exactly once (0 for a node without
// edges or a channel no block covers): the output needs no zero fill.
template <typename T, typename Acc, typename Item>
__device__ __forceinline__ void point_segments_impl(const Item& item, T* __restrict__ out,
                                                    long long n_nodes, long long width,
                                                    int nodes_per_block, int split) {
    extern __shared__ unsigned char cs_smem[];
    Acc* part = reinterpret_cast<Acc*>(cs_smem);
    const int lane = (int)threadIdx.x % split, slot = (int)threadIdx.x / split;
    const int slots = (int)blockDim.x / split;
    const long long node0 = (long long)blockIdx.x * nodes_per_block;
    if (node0 >= n_nodes) return;  // uniform across the block: before any barrier
    // at most max(blockDim.x, width) items (32-bit); (node, channel) of item `it` advanced
    // without a division per round
    const int w = (int)width;
    const int items = (int)min((long long)nodes_per_block, n_nodes - node0) * w;
    const int step_n = slots / w, step_c = slots % w;
    int nl = slot / w, ch = slot % w;
    T* o = out + node0 * width;
    for (int base = 0; base < items; base += slots) {  // uniform trip count
        const int it = base + slot;
        const bool live = it < items;
        Acc acc = Acc(0);
        if (live) {
            acc = item(ch, node0 + nl, lane);
        }
        nl += step_n;
        ch += step_c;
        if (ch >= w) {
            ch -= w;
            ++nl;
        }
        if (split == 1) {  // uniform: no lanes to combine
            if (live) o[it] = T(acc);
            continue;
        }
        part[threadIdx.x] = acc;
        __syncthreads();
        if (live && lane == 0) {
            Acc s = part[threadIdx.x];
            for (int l = 1; l < split; ++l) s += part[threadIdx.x + l];
            o[it] = T(s);
        }
        __syncthreads();  // part is reused by the next round
    }
}

// Pass 1 of the weight adjoint: one CUDA block per tile of `tile` consecutive edges, one
// thread per slot (b, k) (slots[2 j], slots[2 j + 1]) at a time.
template <typename T, typename Acc>
__device__ void point_weight_partials_impl(const long long* __restrict__ table,
                                           const long long* __restrict__ slots,
                                           long long n_slots, const T* __restrict__ basis,
                                           long long n_entries, const T* __restrict__ grad_y,
                                           long long c_out, const T* __restrict__ g,
                                           long long c_in, const long long* __restrict__ src,
                                           const long long* __restrict__ dst, long long n_edges,
                                           long long tile, T* __restrict__ partial) {
    const long long e0 = (long long)blockIdx.x * tile;
    const long long e1 = min(e0 + tile, n_edges);
    for (long long j = threadIdx.x; j < n_slots; j += blockDim.x) {
        const long long* q = table + slots[2 * j] * PB_FIELDS;
        const long long k = slots[2 * j + 1];
        const int dout = (int)q[PB_D_OUT], din = (int)q[PB_D_IN];
        const long long boff = q[PB_BASIS_OFFSET] + k * dout * din;
        const long long oo = q[PB_OUT_OFFSET], io = q[PB_IN_OFFSET];
        Acc s = Acc(0);
        for (long long e = e0; e < e1; ++e) {
            const T* B = basis + e * n_entries + boff;
            const T* gy = grad_y + dst[e] * c_out + oo;
            const T* gx = g + src[e] * c_in + io;
#pragma unroll 1
            for (int r = 0; r < dout; ++r) {
                Acc t = Acc(0);
#pragma unroll 2
                for (int c = 0; c < din; ++c) t = cs_fma(Acc(B[r * din + c]), Acc(gx[c]), t);
                s = cs_fma(t, Acc(gy[r]), s);
            }
        }
        partial[(long long)blockIdx.x * n_slots + j] = T(s);
    }
}

// Pass 2: one thread per weight j, its slots (w_slots[w_ptr[j] .. w_ptr[j + 1])) in order,
// each over the tiles in order; 0 for a weight no block uses.
template <typename T, typename Acc>
__device__ void point_weight_reduce_impl(const T* __restrict__ partial, long long n_slots,
                                         long long n_tiles, const long long* __restrict__ w_ptr,
                                         const long long* __restrict__ w_slots,
                                         T* __restrict__ grad_w, long long n_weights) {
    const long long j = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= n_weights) return;
    Acc s = Acc(0);
    for (long long p = w_ptr[j]; p < w_ptr[j + 1]; ++p) {
        const T* col = partial + w_slots[p];
        for (long long t = 0; t < n_tiles; ++t) s += Acc(col[t * n_slots]);
    }
    grad_w[j] = T(s);
}

// ---- fused 2D basis: rings x angular harmonics evaluated in the kernel ------------------------
// Instead of a sampled basis (E, n_entries), the relative positions delta (E, 2) and a
// descriptor of every basis column q: its element el = entry_elem[q] with parameters
// elem[el] = (R, sigma, mu, gamma, scale) and coefficients entry_coef[q] = (alpha, beta):
//   basis[e, q] = scale * exp(-(r_e - R)^2 / (2 sigma^2)) * (alpha cos(phi) + beta sin(phi)),
//   phi = mu * theta_e + gamma,  (r_e, theta_e) the polar coordinates of delta[e];
// at the origin (r_e < origin) theta = 0 and elements with mu != 0 vanish. All entries of
// one (block, basis element k) share their element, so it is evaluated once per k.
__device__ __forceinline__ float pc_exp(float v) { return expf(v); }
__device__ __forceinline__ double pc_exp(double v) { return exp(v); }
__device__ __forceinline__ float pc_sin(float v) { return sinf(v); }
__device__ __forceinline__ double pc_sin(double v) { return sin(v); }
__device__ __forceinline__ float pc_cos(float v) { return cosf(v); }
__device__ __forceinline__ double pc_cos(double v) { return cos(v); }
__device__ __forceinline__ float pc_atan2(float y, float x) { return atan2f(y, x); }
__device__ __forceinline__ double pc_atan2(double y, double x) { return atan2(y, x); }
__device__ __forceinline__ float pc_sqrt(float v) { return sqrtf(v); }
__device__ __forceinline__ double pc_sqrt(double v) { return sqrt(v); }

// (scale * radial * cos(phi), scale * radial * sin(phi)) of element `el` at (r, theta).
template <typename T, typename Acc>
__device__ __forceinline__ void pc_element(const T* __restrict__ elem, long long el, Acc r,
                                           Acc theta, bool origin, Acc& rc, Acc& rs) {
    const T* q = elem + el * 5;
    const Acc mu = Acc(q[2]), d = r - Acc(q[0]), sg = Acc(q[1]);
    if (origin && mu != Acc(0)) {
        rc = rs = Acc(0);
        return;
    }
    const Acc rad = Acc(q[4]) * pc_exp(-(d * d) / (Acc(2) * sg * sg));
    const Acc phi = mu * theta + Acc(q[3]);
    rc = rad * pc_cos(phi);
    rs = rad * pc_sin(phi);
}

template <typename T, typename Acc>
__device__ __forceinline__ void pc_polar(const T* __restrict__ delta, long long e, T origin,
                                         Acc& r, Acc& theta, bool& at_origin) {
    const Acc dx = Acc(delta[2 * e]), dy = Acc(delta[2 * e + 1]);
    r = pc_sqrt(dx * dx + dy * dy);
    at_origin = r < Acc(origin);
    theta = at_origin ? Acc(0) : pc_atan2(dy, dx);
}

// point_item with the basis evaluated from the descriptor (see above).
template <typename T, typename Acc>
__device__ __forceinline__ Acc point_item_2d(const long long* __restrict__ chan, long long p0,
                                            long long p1, const T* __restrict__ delta, T origin,
                                            const T* __restrict__ elem,
                                            const long long* __restrict__ entry_elem,
                                            const T* __restrict__ entry_coef,
                                            const T* __restrict__ weights,
                                            const T* __restrict__ x, long long x_width,
                                            const long long* __restrict__ seg_edges,
                                            const long long* __restrict__ other, long long j0,
                                            long long j1, int lane, int split) {
    Acc acc = Acc(0);
#pragma unroll 1
    for (long long j = j0 + lane; j < j1; j += split) {
        const long long e = seg_edges[j];
        Acc r, theta;
        bool at_origin;
        pc_polar<T, Acc>(delta, e, origin, r, theta, at_origin);
        const T* xe = x + other[e] * x_width;
#pragma unroll 1
        for (long long p = p0; p < p1; ++p) {
            const long long* q = chan + p * CH_FIELDS;
            const long long col0 = q[CH_BASIS];
            const T* w = weights + q[CH_WEIGHT];
            const T* xv = xe + q[CH_XOFF];
            const int nrun = (int)q[CH_NRUN], nb = (int)q[CH_NBASIS];
            const int rstride = (int)q[CH_RSTRIDE], kstride = (int)q[CH_KSTRIDE];
#pragma unroll 1
            for (int k = 0; k < nb; ++k) {
                const long long colk = col0 + (long long)k * kstride;
                Acc rc, rs;
                pc_element<T, Acc>(elem, entry_elem[colk], r, theta, at_origin, rc, rs);
                const T* cf = entry_coef + 2 * colk;
                Acc t = Acc(0);  // sum_m basis[e, (k, m)] * x[m]
#pragma unroll 1
                for (int m = 0; m < nrun; ++m) {
                    const T* c = cf + 2 * (long long)m * rstride;
                    t = cs_fma(cs_fma(Acc(c[0]), rc, Acc(c[1]) * rs), Acc(xv[m]), t);
                }
                acc = cs_fma(Acc(w[k]), t, acc);
            }
        }
    }
    return acc;
}

// __launch_bounds__(128, 8): at most 64 registers per thread. Without the minimum of 8
// blocks, ptxas 13.0 picked ~56 registers for the double instantiation on sm_80 and
// spilled (tests/backends/test_point_kernels_compile.py checks: no spills, <= 64).
template <typename T, typename Acc>
__global__ void __launch_bounds__(128, 8)
point_segments(const long long* __restrict__ chan_ptr, const long long* __restrict__ chan,
               const T* __restrict__ basis,
               long long n_entries, const T* __restrict__ weights, const T* __restrict__ x,
               long long x_width, const long long* __restrict__ seg_ptr,
               const long long* __restrict__ seg_edges, const long long* __restrict__ other,
               T* __restrict__ out, long long n_nodes, long long width, int nodes_per_block,
               int split) {
    const auto item = [&](int ch, long long node, int lane) {
        return point_item<T, Acc>(chan, chan_ptr[ch], chan_ptr[ch + 1], basis, n_entries,
                                  weights, x, x_width, seg_edges, other, seg_ptr[node],
                                  seg_ptr[node + 1], lane, split);
    };
    point_segments_impl<T, Acc>(item, out, n_nodes, width, nodes_per_block, split);
}

template <typename T, typename Acc>
__global__ void __launch_bounds__(128, 8)
point_weight_partials(const long long* __restrict__ table, const long long* __restrict__ slots,
                      long long n_slots, const T* __restrict__ basis, long long n_entries,
                      const T* __restrict__ grad_y, long long c_out, const T* __restrict__ g,
                      long long c_in, const long long* __restrict__ src,
                      const long long* __restrict__ dst, long long n_edges, long long tile,
                      T* __restrict__ partial) {
    point_weight_partials_impl<T, Acc>(table, slots, n_slots, basis, n_entries, grad_y, c_out,
                                       g, c_in, src, dst, n_edges, tile, partial);
}

template <typename T, typename Acc>
__global__ void __launch_bounds__(128, 8)
point_weight_reduce(const T* __restrict__ partial, long long n_slots, long long n_tiles,
                    const long long* __restrict__ w_ptr, const long long* __restrict__ w_slots,
                    T* __restrict__ grad_w, long long n_weights) {
    point_weight_reduce_impl<T, Acc>(partial, n_slots, n_tiles, w_ptr, w_slots, grad_w,
                                     n_weights);
}

// The *_2d kernels: __launch_bounds__(128, 4), at most 128 registers (the element
// evaluation's exp / sin / cos; with 64 the double instantiation spilled). Their stack frame
// is the local array of sin / cos's slow argument reduction (huge arguments only), not spills.
template <typename T, typename Acc>
__global__ void __launch_bounds__(128, 4)
point_segments_2d(const long long* __restrict__ chan_ptr, const long long* __restrict__ chan,
                  const T* __restrict__ delta, T origin, const T* __restrict__ elem,
                  const long long* __restrict__ entry_elem, const T* __restrict__ entry_coef,
                  const T* __restrict__ weights, const T* __restrict__ x, long long x_width,
                  const long long* __restrict__ seg_ptr, const long long* __restrict__ seg_edges,
                  const long long* __restrict__ other, T* __restrict__ out, long long n_nodes,
                  long long width, int nodes_per_block, int split) {
    const auto item = [&](int ch, long long node, int lane) {
        return point_item_2d<T, Acc>(chan, chan_ptr[ch], chan_ptr[ch + 1], delta, origin, elem,
                                     entry_elem, entry_coef, weights, x, x_width, seg_edges,
                                     other, seg_ptr[node], seg_ptr[node + 1], lane, split);
    };
    point_segments_impl<T, Acc>(item, out, n_nodes, width, nodes_per_block, split);
}

// Pass 1 of the weight adjoint with the basis evaluated from the descriptor.
template <typename T, typename Acc>
__global__ void __launch_bounds__(128, 4)
point_weight_partials_2d(const long long* __restrict__ table, const long long* __restrict__ slots,
                         long long n_slots, const T* __restrict__ delta, T origin,
                         const T* __restrict__ elem, const long long* __restrict__ entry_elem,
                         const T* __restrict__ entry_coef, const T* __restrict__ grad_y,
                         long long c_out, const T* __restrict__ g, long long c_in,
                         const long long* __restrict__ src, const long long* __restrict__ dst,
                         long long n_edges, long long tile, T* __restrict__ partial) {
    const long long e0 = (long long)blockIdx.x * tile;
    const long long e1 = min(e0 + tile, n_edges);
    for (long long j = threadIdx.x; j < n_slots; j += blockDim.x) {
        const long long* q = table + slots[2 * j] * PB_FIELDS;
        const long long k = slots[2 * j + 1];
        const int dout = (int)q[PB_D_OUT], din = (int)q[PB_D_IN];
        const long long col0 = q[PB_BASIS_OFFSET] + k * dout * din;
        const long long el = entry_elem[col0];
        const T* cf = entry_coef + 2 * col0;
        const long long oo = q[PB_OUT_OFFSET], io = q[PB_IN_OFFSET];
        Acc s = Acc(0);
#pragma unroll 1
        for (long long e = e0; e < e1; ++e) {
            Acc r, theta, rc, rs;
            bool at_origin;
            pc_polar<T, Acc>(delta, e, origin, r, theta, at_origin);
            pc_element<T, Acc>(elem, el, r, theta, at_origin, rc, rs);
            const T* gy = grad_y + dst[e] * c_out + oo;
            const T* gx = g + src[e] * c_in + io;
            Acc t = Acc(0);
#pragma unroll 1
            for (int rr = 0; rr < dout; ++rr) {
                Acc u = Acc(0);
#pragma unroll 1
                for (int c = 0; c < din; ++c) {
                    const T* cc = cf + 2 * (rr * din + c);
                    u = cs_fma(cs_fma(Acc(cc[0]), rc, Acc(cc[1]) * rs), Acc(gx[c]), u);
                }
                t = cs_fma(u, Acc(gy[rr]), t);
            }
            s += t;
        }
        partial[(long long)blockIdx.x * n_slots + j] = T(s);
    }
}
