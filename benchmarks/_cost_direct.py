"""Cost walker of ``expand_forward_direct_v2`` (kernels/expand_v2.cu), the v2 forward of
irreps-only launches (``launch_config_v2(...).kernel == "direct"``: Q_in = Q_out = I on every
field pair, identity weight positions), mixed into :class:`_cost_v2.V2`; the fill itself is
V2's ``_fill2`` with the weights read from global memory and four elements in flight."""
from __future__ import annotations

import math

from _cost_v1 import EARLY_EXIT, _cells
from _cost_walk import (
    INDEX_INSTR,
    LAT_L1,
    LAT_L2,
    LAT_SYNC,
    BlockCost,
    global_wavefronts,
    sectors,
    warps,
)

from cupysteer.backends.packing import BLK, FP

__all__ = ["DirectForward"]


class DirectForward:
    def _direct_block(self, p, cfg, f: int, y: int) -> BlockCost:
        """expand_forward_direct_v2 (Q_in = Q_out = I, identity positions): the window
        zeroed, a barrier, then the template's block row and entry range (three uniform
        loads) and the fill, its weights read in place from global memory."""
        fp, T, blk = p.fieldpairs[f], cfg.block[0], p.blocks
        P, so, si = int(fp[FP.points]), int(fp[FP.out_size]), int(fp[FP.in_size])
        x0, d0 = (y // cfg.col_tiles) * cfg.tile, (y % cfg.col_tiles) * cfg.cols
        c = BlockCost(cp=2 * LAT_L1 + LAT_L2, instr=4 * 30)
        if x0 >= P or d0 >= si:
            return c.add(cp=EARLY_EXIT - c.cp)
        nx, nd = min(cfg.tile, P - x0), min(cfg.cols, si - d0)
        rs = int(fp[FP.in_channels]) * P
        obase = (int(fp[FP.filter_base]) + int(fp[FP.out_offset]) * rs
                 + (int(fp[FP.in_offset]) + d0) * P + x0)
        x, d, a = _cells(so * nd * nx, nx, nd)
        o = obase + a * rs + d * P + x
        g = warps(len(x))
        b0, b1 = int(fp[FP.block_begin]), int(fp[FP.block_end])
        zero = math.ceil(len(x) / T) * (INDEX_INSTR + 8) + LAT_SYNC
        c.add(gwave=global_wavefronts(o), l2_bytes=32 * sectors(o), instr=g * (INDEX_INSTR + 4))
        if b0 >= b1:
            return c.add(cp=zero)
        # block row and entry range loaded before the zeroing: their latency overlaps it
        c.add(gwave=3 * warps(T), loads=3 * T, instr=3 * warps(T), cp=max(LAT_L2, zero))
        ws = int(blk[b0, BLK.weight_offset])
        e0, e1 = int(p.entry_ptr[b0]), int(p.entry_ptr[b1])
        wb = int(fp[FP.weight_base]) - ws
        key = ("direct_v2", e0, e1, d0, nd, nx, x0, P, obase % 32, rs % 32, wb % 32)
        if key not in self._fills:
            self._fills[key] = self._fill2(p, e0, e1, 0, d0, nd, nx, x0, T, 0,
                                           dst=(obase, rs, P), wglobal=wb, wide=True)
        return c.add(**self._fills[key].as_dict())
