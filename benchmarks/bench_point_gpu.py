"""GPU benchmark of the point-convolution kernels (kernels/point_conv.cu via
cupysteer.backends.point_cupy.PointLaunch). Needs CuPy and a CUDA device; without one it
prints why and exits 0.

    python3 benchmarks/bench_point_gpu.py [--edges 100000] [--degree 16] [--mult 8]
                                          [--rings 3] [--dtype float32] [--iters 20]

Problem: a random graph of ``--edges`` edges (about ``--degree`` per target) with features
of C8 regular×``mult`` fields in irreps coordinates (per field ψ0, ψ1, ψ2, ψ3, ψ4: dims
1, 2, 2, 2, 1; 64 channels for mult 8), one block per (output irrep, input irrep) of every
field pair, ``rings × max(d_out, d_in)`` basis elements per block (a synthetic table of the
size a 2D point convolution gets; blocks of one irreps pair share their basis columns).

Measured in the same run, on the same device (CUDA events around ``--iters`` back-to-back
calls, median of 5 runs):

* ``contract`` / ``adjoint_features`` / ``adjoint_weights`` of one prepared PointLaunch
  (forward: one launch; the weight gradient: two);
* ``contract_2d`` / ``adjoint_weights_2d``: the same with the basis evaluated in the kernel
  from a rings × harmonics descriptor (:func:`harmonics`, the ``*_2d`` kernels);
* ``materialised``: escnn's strategy in CuPy — every edge's full C_out × C_in filter
  (basis @ expansion matrix, E × C_out × C_in), a batched mat-vec and a scatter-add to the
  targets (atomics) — the ratio printed is its time over ``contract``'s;
* the floor: the bytes ``contract`` must move at least (basis E × n_entries, one gather of
  g per edge, y, the CSR indices) over the device-to-device copy bandwidth measured here.

Prints edges/s, GB/s achieved, the fraction of the floor, and the ratio to the materialised
filters. The emulated tests run :func:`run` on the CPU (tiny sizes) to keep this script
working where no GPU is lent.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
if SRC not in sys.path:
    sys.path.insert(0, SRC)

import numpy as np  # noqa: E402

from cupysteer.backends import cupy_backend as cb  # noqa: E402
from cupysteer.backends.point_cupy import PointLaunch  # noqa: E402
from cupysteer.backends.point_harmonics import RadialHarmonics  # noqa: E402

C8_IRREP_DIMS = (1, 2, 2, 2, 1)


def c8_table(mult: int, rings: int):
    """(table, n_entries, n_weights, c) of C8 regular×mult → C8 regular×mult."""
    dims = list(C8_IRREP_DIMS) * mult
    offsets = np.concatenate([[0], np.cumsum(dims)])[:-1]
    kinds = list(range(len(C8_IRREP_DIMS))) * mult
    pair_offset, n_entries, n_weights, rows = {}, 0, 0, []
    for o, (oo, do, ko) in enumerate(zip(offsets, dims, kinds)):
        for i, (io, di, ki) in enumerate(zip(offsets, dims, kinds)):
            nb = rings * max(do, di)
            if (ko, ki) not in pair_offset:
                pair_offset[(ko, ki)] = n_entries
                n_entries += nb * do * di
            rows.append([oo, io, do, di, nb, n_weights, pair_offset[(ko, ki)]])
            n_weights += nb
    return np.array(rows, np.int64), n_entries, n_weights, int(sum(dims))


def make_case(edges: int, degree: int, mult: int, rings: int, dtype, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    table, n_entries, n_weights, c = c8_table(mult, rings)
    n = max(1, edges // degree)
    return dict(table=table, n=n, c=c, src=rng.integers(0, n, edges),
                dst=np.sort(rng.integers(0, n, edges)),
                basis=rng.standard_normal((edges, n_entries)).astype(dtype),
                w=rng.standard_normal(n_weights).astype(dtype),
                g=rng.standard_normal((n, c)).astype(dtype),
                gy=rng.standard_normal((n, c)).astype(dtype))


def harmonics(case: dict, rings: int, seed: int = 1) -> RadialHarmonics:
    """A rings × harmonics descriptor over the case's basis slices (one element per (slice,
    basis element): ring radius, sigma 0.6, a frequency 0..3, a phase 0 or π/2, scale d_out;
    entry coefficients ±1 / 0 as the planar 2×2 / 1×2 / 2×1 / 1×1 matrices have)."""
    rng = np.random.default_rng(seed)
    n = case["basis"].shape[1]
    entry_el, coef, elements, seen = np.zeros(n, np.int64), np.zeros((n, 2)), [], set()
    for _, _, do, di, nb, _, bo in case["table"]:
        if bo in seen:
            continue
        seen.add(bo)
        for k in range(nb):
            q = bo + k * do * di
            elements.append((2.0 * (k % rings) / max(rings - 1, 1), 0.6,
                             float(rng.integers(0, 4)), float(rng.choice([0, np.pi / 2])),
                             float(do)))
            entry_el[q:q + do * di] = len(elements) - 1
            coef[q:q + do * di] = rng.choice([-1.0, 0.0, 1.0], (do * di, 2))
    return RadialHarmonics(np.array(elements), entry_el, coef)


def floor_bytes(case: dict) -> int:
    """Bytes contract must move: the basis once, g once per edge, y once, the CSR indices."""
    item = case["basis"].dtype.itemsize
    E, n, c = len(case["src"]), case["n"], case["c"]
    return case["basis"].nbytes + E * c * item + n * c * item + 3 * E * 8


def floor_bytes_2d(case: dict) -> int:
    """The same with the basis evaluated in the kernel: delta (E, 2) instead of the basis."""
    item = case["basis"].dtype.itemsize
    return floor_bytes(case) - case["basis"].nbytes + 2 * len(case["src"]) * item


def _timer(cupy):
    """seconds(fn, iters): CUDA events on a GPU, perf_counter + synchronize elsewhere."""
    def seconds(fn, iters):
        if hasattr(cupy.cuda, "Event"):
            start, stop = cupy.cuda.Event(), cupy.cuda.Event()
            start.record()
            for _ in range(iters):
                fn()
            stop.record()
            stop.synchronize()
            return cupy.cuda.get_elapsed_time(start, stop) / 1e3 / iters
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        cupy.cuda.get_current_stream().synchronize()
        return (time.perf_counter() - t0) / iters
    return seconds


def expansion_matrix(case) -> np.ndarray:
    """M (n_entries, C_out·C_in): the full filter of edge e is (basis[e] @ M).reshape(C, C)."""
    t, c = case["table"], case["c"]
    M = np.zeros((case["basis"].shape[1], c * c), case["basis"].dtype)
    for oo, io, do, di, nb, wo, bo in t:
        for k in range(nb):
            for r in range(do):
                M[bo + (k * do + r) * di: bo + (k * do + r + 1) * di,
                  (oo + r) * c + io: (oo + r) * c + io + di] += \
                    np.eye(di, dtype=M.dtype) * case["w"][wo + k]
    return M


def materialised(cupy, case, dev):
    """escnn's strategy: the full per-edge filter, a batched mat-vec, a scatter-add."""
    c, M = case["c"], cupy.asarray(expansion_matrix(case))
    if hasattr(cupy.add, "at"):  # CuPy >= 13
        scatter_add = cupy.add.at
    else:  # pragma: no cover - older CuPy
        import cupyx
        scatter_add = cupyx.scatter_add

    def run():
        K = (dev["basis"] @ M).reshape(-1, c, c)  # E × C_out × C_in
        msg = cupy.matmul(K, dev["g"][dev["src"]][:, :, None])[:, :, 0]
        y = cupy.zeros((case["n"], c), msg.dtype)
        scatter_add(y, dev["dst"], msg)
        return y
    return run


def run(cupy, case, iters=20, repeats=5, launch_cls=PointLaunch, baseline=True, out=print):
    """Measure and print; returns {name: seconds per call} (and the derived rates)."""
    seconds = _timer(cupy)
    dev = {k: cupy.asarray(case[k]) for k in ("basis", "w", "g", "gy", "src", "dst")}
    L = launch_cls(case["table"], case["src"], case["dst"], case["n"], case["n"],
                   c_in=case["c"], c_out=case["c"])
    ops = {"contract": lambda: L.contract(dev["basis"], dev["w"], dev["g"]),
           "adjoint_features": lambda: L.adjoint_features(dev["basis"], dev["w"], dev["gy"]),
           "adjoint_weights": lambda: L.adjoint_weights(dev["basis"], dev["gy"], dev["g"])}
    if "harmonics" in case:  # the fused 2D basis: the *_2d kernels, no basis in memory
        sample = case["harmonics"].at(cupy.asarray(case["delta"]))
        ops["contract_2d"] = lambda: L.contract(sample, dev["w"], dev["g"])
        ops["adjoint_weights_2d"] = lambda: L.adjoint_weights(sample, dev["gy"], dev["g"])
    if baseline:
        ops["materialised"] = materialised(cupy, case, dev)
        y = np.asarray(cupy.asnumpy(ops["contract"]()))
        y0 = np.asarray(cupy.asnumpy(ops["materialised"]()))
        err = np.abs(y - y0).max() / max(np.abs(y0).max(), 1e-30)
        out(f"check: contract vs materialised, relative error {err:.2e}")
    res = {}
    for name, fn in ops.items():
        fn()  # warm-up (compile, upload)
        res[name] = statistics.median(seconds(fn, iters) for _ in range(repeats))
    E = len(case["src"])
    floor = floor_bytes(case)
    res["edges_per_s"] = E / res["contract"]
    res["gbytes_per_s"] = floor / res["contract"] / 1e9
    out(f"E={E} nodes={case['n']} C={case['c']} n_entries={case['basis'].shape[1]} "
        f"blocks={len(case['table'])} dtype={case['basis'].dtype}")
    for name in ops:
        out(f"  {name:18s} {res[name] * 1e3:9.3f} ms   {E / res[name]:.3e} edges/s")
    out(f"  contract moves >= {floor / 1e6:.1f} MB: {res['gbytes_per_s']:.1f} GB/s")
    if "contract_2d" in res:
        out(f"  contract_2d moves >= {floor_bytes_2d(case) / 1e6:.1f} MB; "
            f"contract / contract_2d: {res['contract'] / res['contract_2d']:.2f}x")
    if hasattr(cupy.cuda, "Event"):
        a = cupy.empty(1 << 28, np.uint8)
        b = cupy.empty_like(a)
        copy = statistics.median(seconds(lambda: b.__setitem__(Ellipsis, a), 10)
                                 for _ in range(3))
        bw = 2 * a.nbytes / copy
        res["copy_gbytes_per_s"] = bw / 1e9
        res["floor_s"] = floor / bw
        out(f"  device copy bandwidth {bw / 1e9:.0f} GB/s: floor {floor / bw * 1e3:.3f} ms, "
            f"contract at {res['floor_s'] / res['contract']:.0%} of it")
    if baseline:
        out(f"  materialised / contract: {res['materialised'] / res['contract']:.1f}x")
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--edges", type=int, default=100_000)
    ap.add_argument("--degree", type=int, default=16)
    ap.add_argument("--mult", type=int, default=8)
    ap.add_argument("--rings", type=int, default=3)
    ap.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    ap.add_argument("--iters", type=int, default=20)
    a = ap.parse_args(argv)
    if not cb.is_available():
        print("bench_point_gpu: no CuPy or no CUDA device here; nothing measured")
        return 0
    import cupy
    print(f"device: {cupy.cuda.runtime.getDeviceProperties(0)['name'].decode()}")
    case = make_case(a.edges, a.degree, a.mult, a.rings, np.dtype(a.dtype))
    case["harmonics"] = harmonics(case, a.rings)
    case["delta"] = np.random.default_rng(2).uniform(-1, 1, (a.edges, 2)).astype(a.dtype)
    run(cupy, case, a.iters)
    return 0


if __name__ == "__main__":
    sys.exit(main())
