"""Cost walker of kernels/expand_v2.cu (v2), modelled from its code and top-of-file docstring.

Forward, per CUDA block (field pair, point tile × column tile): stage 0 stages the
template's weights in shared memory (``Ws[j] = w[positions[ws + j]]``, once); per chunk of
rows, the fill is flattened over (entry, point) of the template's K̃ entries (one basis load,
coalesced along points, and one broadcast shared load per element); T = K̃·Q_inᵀ and
out = Q_out·T are register-tiled 4 × 4 outputs per thread (4 + 4 loads per 16 FMAs). Adjoint,
per CUDA block (field pair, chunk × pass × point tile): owner table, G̃ = Q_outᵀ G Q_in with the
same 4 × 4 tiles, then one warp per weight slot with lanes along points (coalesced basis
loads) and a butterfly sum; with several point tiles the partial sums go to a workspace that
``expand_reduce_v2`` sums in a fixed order (its launch and bytes are added).

Irreps-only launches (Q_in = Q_out = I, identity weight positions) run the forward as
``expand_forward_direct_v2`` (``cfg.kernel == "direct"``: no staging, the weights read in
place beside the basis, 64 registers). The launch configuration comes from
``cupysteer.backends.launch_v2.launch_config_v2`` when it exists; otherwise from
:func:`fallback_config` (stated in :meth:`V2.provenance`).
"""
from __future__ import annotations

import importlib
import math
from types import SimpleNamespace

import numpy as np
from _cost_direct import DirectForward
from _cost_v1 import EARLY_EXIT, V1, _cells
from _cost_walk import (
    INDEX_INSTR,
    LAT_L1,
    LAT_L2,
    LAT_SMEM,
    LAT_SYNC,
    BlockCost,
    global_wavefronts,
    loop_cycles,
    sectors,
    shared_wavefronts,
    warps,
)

from cupysteer.backends.launch import launch_config
from cupysteer.backends.packing import BLK, ENT, FP

__all__ = ["V2", "fallback_config"]

AT = DT = 4  # CS2_AT x CS2_DT register tile
SHUFFLE = 30  # cycles per step of the warp butterfly sum
OPT_IN = 100 * 1024  # fallback: shared memory per block when 48 KiB is too small (2 per SM)


def _launch_v2():
    try:
        return importlib.import_module("cupysteer.backends.launch_v2").launch_config_v2
    except (ImportError, AttributeError):
        return None


def fallback_config(p, kind: str, batch: int = 1, item: int = 4, sms: int = 132):
    """The launch of expand_v2.cu as its docstring describes it, used while launch_v2.py does
    not exist: forward as v1 plus the weights in shared memory, opting in to OPT_IN bytes
    when 48 KiB does not hold min(P, 8) points of a whole field pair; adjoint with the rows /
    passes of v1 and enough point tiles (≥ 32 points each) for 4 CUDA blocks per SM."""
    mw = p.max_fieldpair_weights
    if kind == "forward":
        c = launch_config(p, "forward", batch, item, shared_limit=48 * 1024 - mw * item)
        if c.col_tiles > 1 or c.rows < p.max_out_size or c.tile < min(p.max_points, 8):
            c = launch_config(p, "forward", batch, item, shared_limit=OPT_IN - mw * item)
        return SimpleNamespace(grid=c.grid, block=c.block, tile=c.tile, rows=c.rows,
                               cols=c.cols, col_tiles=c.col_tiles, max_weights=mw, vec=1,
                               shared_mem=c.shared_mem + mw * item)
    c = launch_config(p, kind, batch, item, shared_limit=OPT_IN)
    live = int((p.fieldpairs[:, FP.block_begin] < p.fieldpairs[:, FP.block_end]).sum())
    per = max(1, c.grid[1])
    P = p.max_points
    tiles = max(1, min(-(-4 * sms // max(1, live * per)), -(-P // 32)))
    tile = min(c.tile, -(-P // tiles))
    tiles = -(-P // tile)
    per_point = (c.shared_mem - c.max_weights * item) / max(c.tile, 1)
    return SimpleNamespace(grid=(c.grid[0], per * tiles, batch), block=c.block, tile=tile,
                           tiles=tiles, rows=c.rows, max_weights=c.max_weights,
                           passes=c.passes, shared_mem=int(per_point * tile
                                                           + c.max_weights * 4))


class V2(DirectForward, V1):
    name = "v2"
    source = "expand_v2.cu"
    kernels = {"forward": "expand_forward_v2", "adjoint": "expand_adjoint_v2",
               "direct": "expand_forward_direct_v2"}
    name_expressions = ("expand_forward_v2<float, float, float>",
                        "expand_adjoint_v2<float, float>", "expand_reduce_v2<float>",
                        "expand_forward_direct_v2<float, float, float>")
    assumed_registers = 64

    def provenance(self) -> str:
        how = "launch_config_v2" if _launch_v2() else \
            "fallback launch config (cupysteer/backends/launch_v2.py absent)"
        return f"kernels/expand_v2.cu as written on 2026-12-02 (walked), {how}"

    def config(self, packed, kind: str, batch: int = 1, item: int = 4, dev=None):
        """launch_config_v2 with the device's opt-in shared memory and SM count (sm_90:
        227 KiB, 132 SMs by default)."""
        limit, sms = (227 * 1024, 132) if dev is None else (dev.smem_per_block_optin, dev.sms)
        fn = _launch_v2()
        if fn is not None:
            try:
                return fn(packed, kind, batch, item, shared_limit=limit, sms=sms)
            except TypeError:
                pass
        return fallback_config(packed, kind, batch, item, sms)

    # ---- forward ---------------------------------------------------------------------------

    def forward_block(self, p, cfg, f: int, y: int, item: int) -> BlockCost:
        if getattr(cfg, "kernel", "forward") == "direct":
            return self._direct_block(p, cfg, f, y)
        fp, T, blk, ent = p.fieldpairs[f], cfg.block[0], p.blocks, p.entries
        P, so, si = int(fp[FP.points]), int(fp[FP.out_size]), int(fp[FP.in_size])
        x0, d0 = (y // cfg.col_tiles) * cfg.tile, (y % cfg.col_tiles) * cfg.cols
        c = BlockCost(cp=2 * LAT_L1 + LAT_L2, instr=4 * 30)
        if x0 >= P or d0 >= si:
            return c.add(cp=EARLY_EXIT - c.cp)
        nx, nd = min(cfg.tile, P - x0), min(cfg.cols, si - d0)
        b0, b1 = int(fp[FP.block_begin]), int(fp[FP.block_end])
        qin, qout = fp[FP.in_cob] >= 0, fp[FP.out_cob] >= 0
        e0 = e1 = 0
        if b0 < b1:  # stage 0: Ws[j] = w[positions[ws + j]]
            ws = int(blk[b0, BLK.weight_offset])
            ns = int(blk[b1 - 1, BLK.weight_offset] + blk[b1 - 1, BLK.count]) - ws
            pos = int(fp[FP.weight_base]) + p.positions[ws:ws + ns]
            c.add(gwave=global_wavefronts(np.arange(ws, ws + ns), 8) + global_wavefronts(pos),
                  l2_bytes=32 * (sectors(np.arange(ws, ws + ns), 8) + sectors(pos)),
                  swave=warps(ns), loads=2 * ns, instr=warps(ns) * 8,
                  cp=2 * LAT_L2 + math.ceil(ns / T) * 8)
            e0, e1 = int(p.entry_ptr[b0]), int(p.entry_ptr[b1])
        c0, nc = (0, si) if qin else (d0, nd)
        tm = cfg.max_weights + so * nd * nx
        rs = int(fp[FP.in_channels]) * P
        obase = (int(fp[FP.filter_base]) + int(fp[FP.out_offset]) * rs
                 + (int(fp[FP.in_offset]) + d0) * P + x0)
        if not qin and not qout and cfg.rows >= so:  # Q_in = Q_out = I: K~ into the filter
            x, d, a = _cells(so * nd * nx, nx, nd)
            o = obase + a * rs + d * P + x
            g = warps(len(x))
            c.add(gwave=global_wavefronts(o), l2_bytes=32 * sectors(o), instr=g * (INDEX_INSTR + 4),
                  cp=math.ceil(len(x) / T) * (INDEX_INSTR + 8) + LAT_SYNC)
            key = ("direct", e0, e1, d0, nd, nx, x0, P, obase % 32, rs % 32)
            if key not in self._fills:
                self._fills[key] = self._fill2(p, e0, e1, 0, d0, nd, nx, x0, T, tm,
                                               dst=(obase, rs, P))
            return c.add(**self._fills[key].as_dict())
        for r0 in range(0, so, cfg.rows):
            nr = min(cfg.rows, so - r0)
            m = nr * nc * nx
            c.add(swave=warps(m), instr=warps(m) * 4, cp=math.ceil(m / T) * 8 + LAT_SYNC)
            ea, eb = e0, e1
            if cfg.rows < so and e1 > e0:
                rows = ent[e0:e1, ENT.row]
                ea = e0 + int(np.searchsorted(rows, r0, "left"))
                eb = e0 + int(np.searchsorted(rows, r0 + nr, "left"))
                steps = 2 * math.ceil(math.log2(e1 - e0 + 1))
                c.add(cp=steps * (LAT_L1 + 8), instr=4 * steps * 8, gwave=4 * steps)
            key = ("fill", ea, eb, r0, c0, nc, nx, x0, P)
            if key not in self._fills:
                self._fills[key] = self._fill2(p, ea, eb, r0, c0, nc, nx, x0, T, tm)
            c.add(**self._fills[key].as_dict())
            if qin:  # T = K~ Q_in^T, register-tiled
                qa = int(fp[FP.in_cob]) + d0 * si
                self._tiled(c, nr, nd, si, nx, T, left_words=(tm, si * nx, nx),
                            right_addr=(qa, si, 1), store=None)
                c.add(cp=LAT_SYNC)
        if qout:
            self._tiled(c, so, nd, so, nx, T, left_addr=(int(fp[FP.out_cob]), so, 1),
                        right_words=(cfg.max_weights, nd * nx, nx), store=(obase, rs, P))
        else:
            x, d, a = _cells(so * nd * nx, nx, nd)
            o = obase + a * rs + d * P + x
            g = warps(len(x))
            c.add(gwave=global_wavefronts(o), l2_bytes=32 * sectors(o), swave=g,
                  loads=len(x), instr=g * (INDEX_INSTR + 4),
                  cp=math.ceil(len(x) / T) * (INDEX_INSTR + LAT_SMEM))
        return c

    def _fill2(self, p, ea, eb, r0, c0, nc, nx, x0, T, tm, dst=None,
               wglobal=None, wide=False) -> BlockCost:
        """cs2_fill: items (entry, point), x fastest; per element one basis load (coalesced
        along points) and one shared load of Ws (broadcast per entry); the result stored to
        shared memory, or (``dst`` = (filter offset, row stride, column stride), when
        Q_in = Q_out = I) straight into the filter."""
        c = BlockCost()
        m = (eb - ea) * nx
        if m <= 0:
            return c
        x, k = _cells(m, nx)
        q = p.entries[ea + k]
        live = (q[:, ENT.col] >= c0) & (q[:, ENT.col] < c0 + nc)
        n = np.where(live, q[:, ENT.count], 0)
        g = warps(m)
        pad = np.pad(n, (0, -m % 32)).reshape(-1, 32)
        wtrips = pad.max(1)  # a warp runs its longest lane
        b = q[:, ENT.basis_offset] + x0 + x
        lines0, secs0 = global_wavefronts(np.where(live, b, -1)), sectors(b)
        ent_lines = global_wavefronts(ea + k, 8 * 6)
        trips = float(wtrips.sum())
        slot_w = q[:, ENT.slot]
        lane_loads = float(n.sum())  # lanes past their entry's count idle (no load)
        if wglobal is None:  # Ws in shared memory (broadcast per entry)
            c.add(swave=trips * shared_wavefronts(slot_w) / g)
        else:  # the weights read in place: w[weight_base + slot - ws + e], beside the basis
            wa = wglobal + slot_w
            c.add(gwave=trips * global_wavefronts(wa) / g,
                  l2_bytes=32 * trips * sectors(wa) / g)
        c.add(gwave=6 * ent_lines + max(trips, lane_loads * lines0 / m),
              l2_bytes=32 * lane_loads * secs0 / m,
              fma=float(n.sum()), loads=2 * float(n.sum()) + 6 * m,
              instr=g * (INDEX_INSTR + 12) + trips * 5)
        if dst is None:
            c.add(swave=g)
        else:
            ob, rs, P = dst
            o = (ob + (q[:, ENT.row] - r0) * rs + (q[:, ENT.col] - c0) * P + x)[live]
            c.add(gwave=global_wavefronts(o), l2_bytes=32 * sectors(o))
        per_round = [wtrips[i:i + T // 32].max() for i in range(0, len(wtrips), T // 32)]
        def chain(t):  # wide: groups of four elements (loads in flight), then the rest by two
            if wide:
                return loop_cycles(t // 4 * 4, 5, LAT_L2, 4) + loop_cycles(t % 4, 5, LAT_L2, 2)
            return loop_cycles(t, 5, LAT_L2, 2)
        c.add(cp=sum(LAT_L1 + INDEX_INSTR + chain(t) for t in per_round) + LAT_SYNC)
        return c

    def _tiled(self, c, na, nd, nk, nx, T, left_words=None, left_addr=None, right_words=None,
               right_addr=None, store=None, right_global=None):
        """cs2_mul_points_left/right: items = ⌈na/4⌉·⌈nd/4⌉·nx (x fastest), per k 4 + 4 loads
        and 16 FMAs; the point-carrying operand is shared memory (``*_words``: base, row,
        k stride in words) or streamed global memory (``right_global``); the matrix operand
        is a global Q (``*_addr``: base, row stride, k stride). ``store``: (base, row stride,
        column stride) of global stores (else shared stores)."""
        nag, ndg = -(-na // AT), -(-nd // DT)
        items = nag * ndg * nx
        x, dg, ag = _cells(items, nx, ndg)
        g, rounds = warps(items), math.ceil(items / T)
        gw = sw = 0.0
        lat = max(LAT_L1, LAT_SMEM)
        if left_words is not None:  # L shared (points), R = Q global
            base, la, lk = left_words
            for u in range(AT):
                sw += shared_wavefronts(base + np.minimum(ag * AT + u, na - 1) * la + x)
            qa, rd, rk = right_addr
            for v in range(DT):
                gw += global_wavefronts(qa + np.minimum(dg * DT + v, nd - 1) * rd)
        else:  # M = Q global, S shared or global (points)
            qa, ma, mk = left_addr
            for u in range(AT):
                gw += global_wavefronts(qa + np.minimum(ag * AT + u, na - 1) * ma)
            if right_words is not None:
                base, sk, sd = right_words
                for v in range(DT):
                    sw += shared_wavefronts(base + np.minimum(dg * DT + v, nd - 1) * sd + x)
            else:
                gbase, sk, sd = right_global
                for v in range(DT):
                    s = gbase + np.minimum(dg * DT + v, nd - 1) * sd + x
                    gw += global_wavefronts(s)
                    c.add(l2_bytes=32 * sectors(s) * nk)
                lat = LAT_L2
        c.add(gwave=gw * nk, swave=sw * nk, fma=items * AT * DT * nk,
              loads=items * (AT + DT) * nk, instr=g * (INDEX_INSTR + 16 + nk * (AT + DT
                                                                                  + AT * DT)),
              cp=rounds * (INDEX_INSTR + 16 + loop_cycles(nk, AT + DT + AT * DT, lat, 2)))
        outs = []
        for u in range(AT):
            for v in range(DT):
                a, d = ag * AT + u, dg * DT + v
                ok = (a < na) & (d < nd)
                outs.append((a[ok], d[ok], x[ok]))
        if store is None:
            c.add(swave=sum(warps(len(o[0])) for o in outs), instr=g * AT * DT * 2)
        else:
            ob, rs, P = store
            for a, d, xx in outs:
                o = ob + a * rs + d * P + xx
                c.add(gwave=global_wavefronts(o), l2_bytes=32 * sectors(o))
            c.add(instr=g * AT * DT * 3, cp=rounds * AT * DT)

    # ---- adjoint ---------------------------------------------------------------------------

    def adjoint_block(self, p, cfg, f: int, y: int, item: int) -> BlockCost:
        fp, T, blk = p.fieldpairs[f], cfg.block[0], p.blocks
        P, so, si = int(fp[FP.points]), int(fp[FP.out_size]), int(fp[FP.in_size])
        t, cp = y % cfg.tiles, y // cfg.tiles
        c, span = self._adjoint_span(fp, blk, cfg, cp)
        if span is None:
            return c
        cb0, cb1, woff, j0, nw, rlo, rhi, whole = span
        nr = rhi - rlo
        # stage 0: owner table, flat over the chunk's blocks
        cnt = blk[cb0:cb1, BLK.count]
        c.add(swave=warps(nw), instr=warps(nw) * 3 + 4 * (cb1 - cb0),
              gwave=7 * warps(cb1 - cb0), cp=LAT_L1 + math.ceil((cb1 - cb0) / T)
              * float(cnt.max()) * 3)
        x0 = t * cfg.tile
        nx = max(0, min(cfg.tile, P - x0))
        rs = int(fp[FP.in_channels]) * P
        gx = int(fp[FP.filter_base]) + int(fp[FP.out_offset]) * rs + int(fp[FP.in_offset]) * P \
            + x0
        qin, qout = fp[FP.in_cob] >= 0, fp[FP.out_cob] >= 0
        if nx > 0:
            key = ("g", so, si, nr, rlo, nx, bool(qin), bool(qout), gx % 32, rs % 32, P)
            if key not in self._fills:
                self._fills[key] = self._gtilde(fp, so, si, nr, rlo, nx, gx, rs, P, qin, qout, T)
            c.add(**self._fills[key].as_dict())
        # stage 2: one warp per weight slot, lanes along points
        j = j0 + np.arange(nw)
        bi = cb0 + np.searchsorted(woff, j, "right") - 1
        e = j - blk[bi, BLK.weight_offset]
        dd = blk[bi, BLK.d_out] * blk[bi, BLK.d_in]
        chunks = -(-nx // 32)
        pos = int(fp[FP.weight_base]) + p.positions[j]
        lines = secs = 0.0
        if nx > 0:  # one (a, c) row of the basis: nx consecutive points, in 32-lane chunks
            xs = np.arange(nx)
            for k in range(min(4, nw)):  # alignment of a few weights' rows
                base = blk[bi[k], BLK.basis_offset] + e[k] * dd[k] * P + x0
                lines += global_wavefronts(base + xs) / min(4, nw)
                secs += sectors(base + xs) / min(4, nw)
        iters = float((dd * chunks).sum())
        per_slot = dd * max(chunks, 1)
        nwarps = T // 32
        warp_load = [float((per_slot[w::nwarps] * max(1, 1)).sum()) for w in range(nwarps)]
        slots_w = [len(per_slot[w::nwarps]) for w in range(nwarps)]
        slot_cp = LAT_SMEM + LAT_L1 + 20 + 5 * SHUFFLE
        c.add(gwave=float(dd.sum()) * lines + nw * 8 + 2 * nw,
              l2_bytes=32 * float(dd.sum()) * secs, swave=iters + nw,
              fma=float((dd * nx).sum()), loads=float((dd * nx).sum()) * 2 + nw * 10,
              instr=iters * 5 + nw * (30 + 10),
              cp=max(s * slot_cp + loop_cycles(w, 5, LAT_L2, 2)
                     for s, w in zip(slots_w, warp_load)) + LAT_L2)
        c.add(gwave=global_wavefronts(pos) / 32 * 32, l2_bytes=32 * nw)  # lane 0 stores
        return c

    def _gtilde(self, fp, so, si, nr, rlo, nx, gx, rs, P, qin, qout, T) -> BlockCost:
        """Stage 1: G~ = Q_out^T G Q_in on rows [rlo, rlo + nr) and the tile's points."""
        c = BlockCost()
        if not qout:
            x, cc, a = _cells(nr * si * nx, nx, si)
            ga = gx + (rlo + a) * rs + cc * P + x
            g = warps(len(x))
            c.add(gwave=global_wavefronts(ga), l2_bytes=32 * sectors(ga), swave=g,
                  loads=len(x), instr=g * (INDEX_INSTR + 4),
                  cp=math.ceil(len(x) / T) * (INDEX_INSTR + LAT_L2 / 2))
        else:
            self._tiled(c, nr, si, so, nx, T, left_addr=(int(fp[FP.out_cob]) + rlo, 1, so),
                        right_global=(gx, rs, P))
        c.add(cp=LAT_SYNC)
        if qin:
            self._tiled(c, nr, si, si, nx, T, left_words=(0, si * nx, nx),
                        right_addr=(int(fp[FP.in_cob]), 1, si))
            c.add(cp=LAT_SYNC)
        return c

    def walk(self, p, kind: str, batch: int = 1, item: int = 4, dev=None):
        cfg, paths, totals, extra = super().walk(p, kind, batch, item, dev)
        if kind == "forward":
            extra = dict(extra, hbm_bytes=int(p.entries.nbytes + p.entry_ptr.nbytes))
        elif getattr(cfg, "tiles", 1) > 1:  # partial sums written; expand_reduce_v2 reads
            # them back and writes the gradient: a second launch, after the first
            part = item * batch * p.dim * cfg.tiles
            extra = dict(extra, hbm_bytes=int(part), launches=1,
                         serial_bytes=int(part + item * batch * p.dim))
        return cfg, paths, totals, extra
