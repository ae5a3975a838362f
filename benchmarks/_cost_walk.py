"""Counting helpers of the cost model: what one CUDA block costs, stage by stage.

A CUDA block's cost (:class:`BlockCost`) is accumulated while a walker (``_cost_v1`` /
``_cost_v2``) replays the kernel's control flow on the real packed plan:

* ``gwave``: global load/store wavefronts: per warp instruction, the distinct 128-byte lines its
  active lanes touch (a uniform load is 1, a fully uncoalesced float load 32);
* ``swave``: shared-memory wavefronts: per warp instruction, the largest number of distinct
  4-byte words that fall into one of the 32 banks (1 = conflict-free or broadcast);
* ``instr``: warp instructions issued (loads, FMAs, index arithmetic, loop overhead);
* ``fma``: thread-level multiply-adds; ``loads``: thread-level load instructions (global and
  shared; what "load instructions per output element" counts);
* ``l2_bytes``: bytes of the streamed arrays (basis, filter, filter gradient) moved between L2
  and the SM: distinct 32-byte sectors per warp instruction × 32;
* ``cp``: critical path in cycles (one warp's dependent chain; warps of a block run side by
  side, barriers join them).

Cells of a block-strided loop ``for (i = threadIdx.x; i < m; i += blockDim.x)`` map to warp
instructions in runs of 32 consecutive ``i`` (blockDim.x is a multiple of 32), which is what
:func:`global_wavefronts` / :func:`shared_wavefronts` group by.

Latencies (cycles, Hopper microbenchmarks, rounded): L1 hit 33, shared 30, L2 hit 270, FMA 4,
barrier 24. A loop of ``k`` trips unrolled ``u`` times, issuing ``n`` instructions per trip,
whose longest load latency is ``lat``, costs ``k · max(n, 4, lat / u)`` cycles.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

LAT_L1, LAT_SMEM, LAT_L2, LAT_FMA, LAT_SYNC = 33, 30, 270, 4, 24
#: instructions of the index arithmetic of one cell (three divisions/modulos by a variable)
INDEX_INSTR = 40
__all__ = ["BlockCost", "global_wavefronts", "sectors", "shared_wavefronts", "strided",
           "loop_cycles", "warps", "LAT_L1", "LAT_SMEM", "LAT_L2", "LAT_FMA", "LAT_SYNC",
           "INDEX_INSTR"]


@dataclass
class BlockCost:
    cp: float = 0.0
    gwave: float = 0.0
    swave: float = 0.0
    instr: float = 0.0
    fma: float = 0.0
    loads: float = 0.0
    l2_bytes: float = 0.0

    def add(self, **kw) -> "BlockCost":
        for k, v in kw.items():
            setattr(self, k, getattr(self, k) + float(v))
        return self

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def warps(m: int) -> int:
    """Warp instructions of one statement of a block-strided loop over ``m`` cells."""
    return -(-int(m) // 32)


def _groups(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.int64) // 32


def _distinct(groups: np.ndarray, keys: np.ndarray) -> int:
    if not len(keys):
        return 0
    return int(np.unique(groups * (int(keys.max()) + 1) + keys).size)


def global_wavefronts(addr: np.ndarray, item: int = 4) -> int:
    """Σ over warp instructions of the distinct 128-byte lines touched (``addr`` in elements of
    ``item`` bytes, one per cell, in cell order)."""
    addr = np.asarray(addr, np.int64)
    return _distinct(_groups(len(addr)), addr * item // 128)


def sectors(addr: np.ndarray, item: int = 4) -> int:
    """Σ over warp instructions of the distinct 32-byte sectors touched."""
    addr = np.asarray(addr, np.int64)
    return _distinct(_groups(len(addr)), addr * item // 32)


def shared_wavefronts(words: np.ndarray) -> int:
    """Σ over warp instructions of the worst bank's number of distinct 4-byte words."""
    words = np.asarray(words, np.int64)
    if not len(words):
        return 0
    g = _groups(len(words))
    u = np.unique(g * (int(words.max()) + 1) + words)
    ug, uw = u // (int(words.max()) + 1), u % (int(words.max()) + 1)
    per_bank = np.bincount(ug * 32 + uw % 32)
    per_bank = per_bank.reshape(-1, 32) if per_bank.size % 32 == 0 else \
        np.pad(per_bank, (0, -per_bank.size % 32)).reshape(-1, 32)
    return int(per_bank.max(1).sum())


def strided(fn, addr: np.ndarray, stride: int, trips: int) -> float:
    """Σ_k fn(addr + k·stride) over ``trips`` trips of an inner loop, from up to four sampled
    trips (line/bank patterns repeat with the alignment of k·stride)."""
    if trips <= 0:
        return 0.0
    period = 32 // math.gcd(int(stride), 32)  # alignments k·stride takes mod 32 elements
    ks = range(min(trips, period, 4))
    return float(np.mean([fn(addr + k * stride) for k in ks])) * trips


def loop_cycles(trips: float, instr: float, lat: float, unroll: int = 1) -> float:
    """Critical path of an inner loop with a dependent accumulation (see module docstring)."""
    return float(trips) * max(instr, LAT_FMA, lat / max(unroll, 1))
