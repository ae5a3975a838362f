"""The padded cuBLAS path (``CupyExpander(method='padded')``) in the cost model.

Per weight block of e2cnn's storage (one padded basis E of (d, s_out·s_in·P) per pair of
representation names, :mod:`cupysteer.backends.padded`): a GEMM (n_out·n_in × d) · E, a
transpose copy and an advanced-index scatter into the filter (adjoint: gather, copy, GEMM with
Eᵀ, slice assignment); plus one zero-fill of the output. Device time per block::

    3 launches + (bytes(E) + bytes(W) + 4·bytes(block output)) / HBM + 2·n·d·s_out·s_in·P / FP32

and host time ``HOST_FIXED + HOST_PER_BLOCK × blocks`` (CuPy's per-operation overhead, calibrated
on gpu-review.md's measurements with a CuPy stand-in: 60–100 µs for one block, 0.8–1.5 ms for
16 blocks; the low end is taken, in the padded path's favour). Predicted = max(host, device).
"""
from __future__ import annotations

__all__ = ["padded_estimate", "HOST_FIXED", "HOST_PER_BLOCK"]

HOST_FIXED = 10e-6
HOST_PER_BLOCK = 50e-6


def _blocks(layer):
    size = {r.name: r.size for r in layer.in_type.representations
            + layer.out_type.representations}
    P = len(layer.points)
    for b in layer.weight_blocks:
        yield b.n_out * b.n_in, b.elements, size[b.out_name] * size[b.in_name] * P


def padded_estimate(layers, dev, batch: int = 1, item: int = 4) -> dict:
    """{'forward_s', 'adjoint_s', 'device_s', 'host_s', 'basis_bytes'} of the padded path."""
    dev_s, host_s, basis = 0.0, HOST_FIXED, 0
    for L in layers:
        dev_s += dev.launch_s  # the zero fill of the output (its bytes: below)
        for n, d, cells in _blocks(L):
            e_bytes = item * d * cells
            out = item * batch * n * cells
            basis += e_bytes
            dev_s += (3 * dev.launch_s + (e_bytes + item * batch * n * d + 4 * out) / dev.hbm_Bps
                      + 2.0 * batch * n * d * cells / dev.fp32_flops)
            host_s += HOST_PER_BLOCK
    filt = sum(item * batch * int(L.shape[0]) * int(L.shape[1]) * len(L.points) for L in layers)
    dev_s += filt / dev.hbm_Bps
    t = max(dev_s, host_s)
    return {"forward_s": t, "adjoint_s": t, "device_s": dev_s, "host_s": host_s,
            "basis_bytes": basis}
