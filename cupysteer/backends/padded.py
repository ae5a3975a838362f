"""The padded baseline of the CuPy backend: e2cnn's storage and one cuBLAS GEMM per block.

``CupyExpander(..., method="padded", padded_blocks=...)`` runs this instead of the fused
kernels: one padded (d, size_out·size_in·P) basis per pair of representation names
(:meth:`cupysteer.LayerBasis.padded_blocks`), one GEMM per such block (cuBLAS through CuPy's
``@``) and a scatter into the filter; the adjoint is the same steps transposed. It is kept as
the reference point of the benchmarks (``benchmarks/bench_gpu.py``), not as a fast path.

The functions take the ``cupy`` module as an argument (the CuPy backend hands in its own) and
work on the :class:`~cupysteer.backends.packing.PackedPlan` of the expander for the offsets
of each layer.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .packing import PackedPlan

__all__ = ["check_blocks", "upload_bytes", "upload", "expand", "adjoint"]


def check_blocks(padded_blocks: Sequence[list] | None, n_plans: int) -> list:
    """The padded blocks of each plan (one list per plan), or a ValueError."""
    if padded_blocks is None or len(padded_blocks) != n_plans:
        raise ValueError("method='padded' needs padded_blocks, one list per plan "
                         "(LayerBasis.padded_blocks())")
    return list(padded_blocks)


def upload_bytes(padded_blocks: Sequence[list], dtype) -> int:
    """Device bytes of the padded bases (on top of the packed plan's tables)."""
    item = np.dtype(dtype).itemsize
    return sum(np.asarray(b["E"]).size * item for blocks in padded_blocks for b in blocks)


def upload(cupy, padded_blocks: Sequence[list], dtype) -> list:
    """The padded bases on the current device, as (d, size_out·size_in·P) matrices, with the
    output rows / input columns each block scatters to."""
    return [[dict(E=cupy.asarray(np.asarray(b["E"], dtype).reshape(len(b["E"]), -1)),
                  shape=b["E"].shape, lo=b["lo"], n_out=b["n_out"], n_in=b["n_in"],
                  rows=cupy.asarray(b["out_channels"])[:, None],
                  cols=cupy.asarray(b["in_channels"])[None, :])
             for b in blocks] for blocks in padded_blocks]


def expand(cupy, packed: PackedPlan, device_blocks: list, w, batch: int, dtype):
    """Weights (batch, dim) (or (dim,) with batch 1) → flat filters (batch, filter_size)."""
    p = packed
    out = cupy.zeros((batch, p.filter_size), dtype)
    W = w.reshape(batch, p.dim)
    for woff, foff, shape, blocks in zip(p.weight_offsets, p.filter_offsets, p.filter_shapes,
                                         device_blocks):
        co, ci = shape[0], shape[1]
        F = out[:, foff:foff + int(np.prod(shape))].reshape(batch, co, ci, -1)
        for b in blocks:
            d, so, si, P = b["shape"]
            n = b["n_out"] * b["n_in"]
            Wb = W[:, woff + b["lo"]:woff + b["lo"] + n * d].reshape(batch * n, d)
            B = (Wb @ b["E"]).reshape(batch, b["n_out"], b["n_in"], so, si, P)
            B = B.transpose(0, 1, 3, 2, 4, 5).reshape(batch, b["n_out"] * so,
                                                      b["n_in"] * si, P)
            F[:, b["rows"], b["cols"]] = B
    return out


def adjoint(cupy, packed: PackedPlan, device_blocks: list, g, batch: int, dtype):
    """Flat filter gradients (batch, filter_size) → weight gradients (batch, dim)."""
    p = packed
    out = cupy.zeros((batch, p.dim), dtype)
    G = g.reshape(batch, p.filter_size)
    for woff, foff, shape, blocks in zip(p.weight_offsets, p.filter_offsets, p.filter_shapes,
                                         device_blocks):
        co, ci = shape[0], shape[1]
        F = G[:, foff:foff + int(np.prod(shape))].reshape(batch, co, ci, -1)
        for b in blocks:
            d, so, si, P = b["shape"]
            n = b["n_out"] * b["n_in"]
            X = F[:, b["rows"], b["cols"]].reshape(batch, b["n_out"], so, b["n_in"], si, P)
            X = X.transpose(0, 1, 3, 2, 4, 5).reshape(batch * n, so * si * P)
            out[:, woff + b["lo"]:woff + b["lo"] + n * d] = \
                (X @ b["E"].T).reshape(batch, n * d)
    return out
