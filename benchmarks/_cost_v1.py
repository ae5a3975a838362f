"""Cost walker of kernels/expand.cu as it is (v1): forward and adjoint, CUDA block by block.

Replays ``expand_forward_impl`` / ``expand_adjoint_impl`` on a packed plan and the launch
configuration of :func:`cupysteer.backends.launch.launch_config` (see _cost_walk for what is
counted). Forward, per CUDA block (field pair, point tile × column tile): per chunk of rows,
zero K̃, fill it block after block of the template (``n`` trips of ``w[wi[e]] · B[e]``, unroll
2), then T = K̃·Q_inᵀ (one shared + one global load per FMA), then out = Q_out·T. Adjoint, per
CUDA block (field pair, chunk × pass), looping over the point tiles: G̃ rows into shared,
Q_outᵀ and Q_in products, then one thread per weight: a binary search over the chunk's blocks
and ``d_out·d_in·nx`` trips of a basis load whose lanes are different weights (uncoalesced).
"""
from __future__ import annotations

import math

import numpy as np
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
    strided,
    warps,
)

from cupysteer.backends.launch import launch_config
from cupysteer.backends.packing import BLK, FP

__all__ = ["V1"]

EARLY_EXIT = 2 * LAT_L1 + 20  # a CUDA block that returns before any work


def _cells(m, *dims):
    """Decompose cell indices 0..m-1 as i = ((… d1) · n2 + d2) · nx + x (x fastest): the
    kernels' ``x = i % nx, ac = i / nx, …`` arithmetic; returns the digits, x first."""
    i = np.arange(m, dtype=np.int64)
    out = []
    for n in dims:
        out.append(i % n)
        i = i // n
    return out + [i]


class V1:
    name = "v1"
    source = "expand.cu"
    kernels = {"forward": "expand_forward", "adjoint": "expand_adjoint"}
    name_expressions = ("expand_forward<float, float, float>", "expand_adjoint<float, float>")
    assumed_registers = 48

    def provenance(self) -> str:
        return "kernels/expand.cu as it is"

    def config(self, packed, kind: str, batch: int = 1, item: int = 4, dev=None):
        return launch_config(packed, kind, batch, item)  # 48 KiB on every device

    # ---- forward ---------------------------------------------------------------------------

    def forward_block(self, p, cfg, f: int, y: int, item: int) -> BlockCost:
        fp, T = p.fieldpairs[f], cfg.block[0]
        P, so, si = int(fp[FP.points]), int(fp[FP.out_size]), int(fp[FP.in_size])
        x0, d0 = (y // cfg.col_tiles) * cfg.tile, (y % cfg.col_tiles) * cfg.cols
        c = BlockCost(cp=2 * LAT_L1 + LAT_L2, instr=4 * 30)  # table row, pointers
        if x0 >= P or d0 >= si:
            return c.add(cp=EARLY_EXIT - c.cp)
        nx, nd = min(cfg.tile, P - x0), min(cfg.cols, si - d0)
        qin, qout = fp[FP.in_cob] >= 0, fp[FP.out_cob] >= 0
        c0, nc = (0, si) if qin else (d0, nd)
        tm = so * nd * nx  # Kc follows T in shared memory
        for r0 in range(0, so, cfg.rows):
            nr = min(cfg.rows, so - r0)
            m = nr * nc * nx
            c.add(swave=warps(m), instr=warps(m) * 4,
                  cp=math.ceil(m / T) * 8 + LAT_SYNC)
            key = (int(fp[FP.block_begin]), int(fp[FP.block_end]), r0, nr, c0, nc, nx, x0, P)
            if key not in self._fills:
                self._fills[key] = self._fill(BlockCost(), p, fp, r0, nr, c0, nc, nx, x0, P,
                                              T, item)
            c.add(**self._fills[key].as_dict())
            c.add(cp=LAT_SYNC, instr=4)
            if qin:
                x, d, a = _cells(nr * nd * nx, nx, nd)
                kw = tm + a * si * nx + x
                qa = int(fp[FP.in_cob]) + (d0 + d) * si
                g = warps(len(x))
                c.add(swave=strided(shared_wavefronts, kw, nx, si) + g,
                      gwave=strided(global_wavefronts, qa, 1, si),
                      fma=len(x) * si, loads=2 * len(x) * si,
                      instr=g * (INDEX_INSTR + 4 * si),
                      cp=math.ceil(len(x) / T) * (INDEX_INSTR + loop_cycles(
                          si, 4, max(LAT_L1, LAT_SMEM), 4)) + LAT_SYNC)
        # out[a, d, x] = sum_b Q_out[a, b] T[b, d, x]
        x, d, a = _cells(so * nd * nx, nx, nd)
        g, rounds = warps(len(x)), math.ceil(len(x) / T)
        rs = int(fp[FP.in_channels]) * P
        o = (int(fp[FP.filter_base]) + int(fp[FP.out_offset]) * rs
             + (int(fp[FP.in_offset]) + d0) * P + x0 + a * rs + d * P + x)
        c.add(gwave=global_wavefronts(o, item), l2_bytes=32 * sectors(o, item),
              instr=g * (INDEX_INSTR + 4), cp=rounds * (INDEX_INSTR + 8))
        if qout:
            qa = int(fp[FP.out_cob]) + a * so
            c.add(gwave=strided(global_wavefronts, qa, 1, so),
                  swave=strided(shared_wavefronts, d * nx + x, nd * nx, so),
                  fma=len(x) * so, loads=2 * len(x) * so, instr=g * 4 * so,
                  cp=rounds * loop_cycles(so, 4, max(LAT_L1, LAT_SMEM), 4))
        else:
            c.add(swave=g, loads=len(x))
        return c

    def _fill(self, c, p, fp, r0, nr, c0, nc, nx, x0, P, T, item):
        """fill_blocks: every block of the template in turn (uniform ``continue`` when the
        block misses the window); per cell ``n`` trips of w[wi[e]] · B[e] (unroll 2)."""
        blk = p.blocks[int(fp[FP.block_begin]):int(fp[FP.block_end])]
        for q in blk:
            row, col, dout, din, n = (int(v) for v in q[:5])
            c.add(cp=2 * LAT_L1 + 10, instr=4 * 12, gwave=4 * 7, loads=T * 7)  # table row
            a0, a1 = max(row, r0), min(row + dout, r0 + nr)
            k0, k1 = max(col, c0), min(col + din, c0 + nc)
            if a0 >= a1 or k0 >= k1:
                continue
            nk = k1 - k0
            x, kk, aa = _cells((a1 - a0) * nk * nx, nx, nk)
            cc, a = k0 + kk, a0 + aa
            b = int(q[BLK.basis_offset]) + x0 + ((a - row) * din + (cc - col)) * P + x
            m, g = len(x), warps(len(x))
            es = dout * din * P
            c.add(gwave=2 * g * n + strided(lambda v: global_wavefronts(v, item), b, es, n),
                  l2_bytes=32 * strided(lambda v: sectors(v, item), b, es, n),
                  swave=g, fma=m * n, loads=3 * m * n, instr=g * (INDEX_INSTR + 7 * n),
                  cp=math.ceil(m / T) * (INDEX_INSTR + loop_cycles(
                      n, 7, max(2 * LAT_L1, LAT_L2), 2)))
        return c

    # ---- adjoint ---------------------------------------------------------------------------

    def _adjoint_span(self, fp, blk, cfg, chunk: int):
        """The prologue both adjoint kernels share, for the CUDA block of row chunk / weight
        pass ``chunk``: its cost so far and ``None`` when it exits early, else the span
        ``(cb0, cb1, woff, j0, nw, rlo, rhi, whole)`` — the blocks whose rows meet the chunk
        (found by binary search unless the chunk is the whole field), their weight offsets,
        this pass's first weight and count, and the rows the chunk touches."""
        b0, b1 = int(fp[FP.block_begin]), int(fp[FP.block_end])
        so = int(fp[FP.out_size])
        r0 = (chunk // cfg.passes) * cfg.rows
        c = BlockCost(cp=2 * LAT_L1 + LAT_L2, instr=4 * 30)
        if b0 == b1 or r0 >= so:
            return c.add(cp=EARLY_EXIT - c.cp), None
        whole = cfg.rows >= so
        cb0, cb1 = b0, b1
        if not whole:
            rows = blk[b0:b1, BLK.row]
            cb0 = b0 + int(np.searchsorted(rows, r0, "left"))
            cb1 = b0 + int(np.searchsorted(rows, r0 + cfg.rows, "left"))
            steps = 2 * math.ceil(math.log2(b1 - b0 + 1))
            c.add(cp=steps * (LAT_L1 + 8), instr=4 * steps * 8, gwave=4 * steps)
        if cb0 == cb1:
            return c, None
        woff = blk[cb0:cb1, BLK.weight_offset]
        we = int(woff[-1] + blk[cb1 - 1, BLK.count])
        j0 = int(woff[0]) + (chunk % cfg.passes) * cfg.max_weights
        if j0 >= we:
            return c, None
        nw = min(cfg.max_weights, we - j0)
        rlo, rhi = 0, so
        if not whole:
            rlo = int(blk[cb0, BLK.row])
            rhi = int((blk[cb0:cb1, BLK.row] + blk[cb0:cb1, BLK.d_out]).max())
            c.add(cp=(cb1 - cb0) * 6 + LAT_L1, instr=4 * (cb1 - cb0) * 6)
        return c, (cb0, cb1, woff, j0, nw, rlo, rhi, whole)

    def adjoint_block(self, p, cfg, f: int, y: int, item: int) -> BlockCost:
        fp, T, blk = p.fieldpairs[f], cfg.block[0], p.blocks
        P, so, si = int(fp[FP.points]), int(fp[FP.out_size]), int(fp[FP.in_size])
        c, span = self._adjoint_span(fp, blk, cfg, y)
        if span is None:
            return c
        cb0, cb1, woff, j0, nw, rlo, rhi, whole = span
        nr = rhi - rlo
        rs = int(fp[FP.in_channels]) * P
        gbase = int(fp[FP.filter_base]) + int(fp[FP.out_offset]) * rs + int(fp[FP.in_offset]) * P
        qin, qout = fp[FP.in_cob] >= 0, fp[FP.out_cob] >= 0
        # the weights of this CUDA block: their template block, element, trips
        j = j0 + np.arange(nw)
        bi = cb0 + np.searchsorted(woff, j, "right") - 1
        e = j - blk[bi, BLK.weight_offset]
        dout, din = blk[bi, BLK.d_out], blk[bi, BLK.d_in]
        bbase = blk[bi, BLK.basis_offset] + e * dout * din * P
        xw = ((blk[bi, BLK.row] - rlo) * si + blk[bi, BLK.col])  # X row of (a, c) = (0, 0)
        steps = math.ceil(math.log2(cb1 - cb0 + 1))
        c.add(swave=warps(nw), cp=math.ceil(nw / T) * 8)
        for x0 in range(0, P, cfg.tile):
            nx = min(cfg.tile, P - x0)
            self._adjoint_tile(c, fp, so, si, nr, rlo, nx, x0, P, rs, gbase, whole, qin, qout,
                               T, item)
            trips = dout * din * nx
            self._weights(c, bbase + x0, xw * nx, trips, steps, T, item)
        # gw[wbase + positions[j]] = acc[jj]
        pos = int(fp[FP.weight_base]) + p.positions[j]
        c.add(gwave=warps(nw) + global_wavefronts(pos, item) + global_wavefronts(j, 8),
              swave=warps(nw), instr=warps(nw) * 8, loads=2 * nw,
              cp=LAT_SYNC + math.ceil(nw / T) * (LAT_L1 + 8))
        return c

    def _adjoint_tile(self, c, fp, so, si, nr, rlo, nx, x0, P, rs, gbase, whole, qin, qout, T,
                      item):
        cells = nr * si * nx
        x, cc, a = _cells(cells, nx, si)
        g, rounds = warps(cells), math.ceil(cells / T)
        c.add(cp=LAT_SYNC)
        if whole or not qout:
            ga = gbase + (rlo + a) * rs + cc * P + x0 + x
            c.add(gwave=global_wavefronts(ga, item), l2_bytes=32 * sectors(ga, item),
                  swave=g, instr=g * (INDEX_INSTR + 4), loads=cells,
                  cp=rounds * (INDEX_INSTR + LAT_L2 / 2) + LAT_SYNC)
            if qout:  # Y[b, c, x] = sum_a Q_out[a, b] X[a, c, x]
                qa = int(fp[FP.out_cob]) + a
                c.add(gwave=strided(global_wavefronts, qa, so, so),
                      swave=strided(shared_wavefronts, cc * nx + x, si * nx, so) + g,
                      fma=cells * so, loads=2 * cells * so, instr=g * (INDEX_INSTR + 4 * so),
                      cp=rounds * (INDEX_INSTR + loop_cycles(so, 4, LAT_L1, 4)) + LAT_SYNC)
        else:  # Q_out^T straight from G: all so rows of G for every cell
            qa = int(fp[FP.out_cob]) + rlo + a
            ga = gbase + cc * P + x0 + x
            c.add(gwave=strided(global_wavefronts, qa, so, so)
                  + strided(global_wavefronts, ga, rs, so),
                  l2_bytes=32 * strided(sectors, ga, rs, so), swave=g, fma=cells * so,
                  loads=2 * cells * so,
                  instr=g * (INDEX_INSTR + 5 * so),
                  cp=rounds * (INDEX_INSTR + loop_cycles(so, 5, LAT_L2, 4)) + LAT_SYNC)
        if qin:  # Y[b, d, x] = sum_c X[b, c, x] Q_in[c, d]
            qa = int(fp[FP.in_cob]) + cc
            c.add(gwave=strided(global_wavefronts, qa, si, si),
                  swave=strided(shared_wavefronts, a * si * nx + x, nx, si) + g,
                  fma=cells * si, loads=2 * cells * si, instr=g * (INDEX_INSTR + 4 * si),
                  cp=rounds * (INDEX_INSTR + loop_cycles(si, 4, LAT_L1, 4)) + LAT_SYNC)

    def _weights(self, c, bbase, xw, trips, steps, T, item):
        """One thread per weight: binary search, table row, then ``trips`` = d_out·d_in·nx
        basis loads (lanes = weights: distinct lines) and shared loads of G̃."""
        nw = len(bbase)
        lines = global_wavefronts(bbase, item)  # at trip 0, per warp instruction
        secs = sectors(bbase, item)
        conf = shared_wavefronts(xw)
        g = warps(nw)
        per_warp_trips = np.array([trips[k:k + 32].max() for k in range(0, nw, 32)])
        lanes = np.array([min(32, nw - k) for k in range(0, nw, 32)])
        lane_trips = float(trips.sum())
        ratio = lines / max(lanes.sum(), 1)
        c.add(gwave=lane_trips * ratio + g * (steps + 7),
              l2_bytes=32 * lane_trips * secs / max(lanes.sum(), 1),
              swave=per_warp_trips.sum() * conf / g + 2 * g,
              fma=lane_trips, loads=2 * lane_trips + nw * (steps + 7),
              instr=float(per_warp_trips.sum()) * 5 + g * (steps * 8 + 30))
        rounds = [per_warp_trips[k:k + T // 32].max() for k in range(0, g, T // 32)]
        c.add(cp=sum(steps * (LAT_L1 + 8) + LAT_L1 + 30 + loop_cycles(t, 5, LAT_L2, 4)
                     for t in rounds))

    # ---- whole launch ----------------------------------------------------------------------

    def walk(self, p, kind: str, batch: int = 1, item: int = 4, dev=None):
        """(config, [critical path per CUDA block in dispatch order], totals, extra) of one
        launch; extra: {'hbm_bytes': scratch/table bytes beyond cost_model.hbm_bytes,
        'launches': further kernel launches (v2's reduction pass), 'serial_bytes': HBM bytes
        those launches move}."""
        cfg = self.config(p, kind, batch, item, dev)
        self._fills = {}
        step = self.forward_block if kind == "forward" else self.adjoint_block
        cache, paths = {}, []
        tot = BlockCost()
        for y in range(cfg.grid[1]):
            for f in range(cfg.grid[0]):
                key = _key(p.fieldpairs[f], y)
                if key not in cache:
                    cache[key] = step(p, cfg, f, y, item)
                b = cache[key]
                paths.append(b.cp)
                tot.add(**b.as_dict())
        paths = paths * cfg.grid[2]
        totals = {k: v * cfg.grid[2] for k, v in tot.as_dict().items()}
        return cfg, paths, totals, {"hbm_bytes": 0, "launches": 0, "serial_bytes": 0}


def _key(fp, y):
    """Everything a v1 CUDA block's cost depends on: the field pair's shape and template, the
    tile, and the alignment (mod 32 floats) of its filter offsets."""
    rs = fp[FP.in_channels] * fp[FP.points]
    base = fp[FP.filter_base] + fp[FP.out_offset] * rs + fp[FP.in_offset] * fp[FP.points]
    return (y, int(fp[FP.block_begin]), int(fp[FP.block_end]), int(fp[FP.out_size]),
            int(fp[FP.in_size]), int(fp[FP.points]), int(rs % 32), int(base % 32),
            int(fp[FP.in_cob]) % 32 if fp[FP.in_cob] >= 0 else -1,
            int(fp[FP.out_cob]) % 32 if fp[FP.out_cob] >= 0 else -1,
            int(fp[FP.weight_base]) % 32)
