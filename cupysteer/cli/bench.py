"""``cupysteer bench``: median and minimum times of expand/adjoint on NumPy, and on CuPy when
a CUDA device is there (:mod:`cupysteer.backends.cupy_backend`, imported only here)."""
from __future__ import annotations

import json
import time

import numpy as np

from ..basis import LayerBasis
from ._common import build_basis, describe, require_min, resolved_kwargs, say, with_progress

#: timed calls of ``bench`` (and of ``bench --quick``)
BENCH_REPEAT, QUICK_REPEAT = 20, 2


def _time(fn, repeat, sync=lambda: None):
    """(median, min) seconds of ``repeat`` calls of ``fn`` after one warm-up call."""
    fn()
    sync()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        sync()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts)), float(np.min(ts))


def _cupy_rows(basis, w, G, repeat):
    """(timing rows, note): the CuPy timings, or none and why."""
    try:
        from ..backends import cupy_backend
        available = cupy_backend.is_available()
    except Exception as exc:  # pragma: no cover - broken optional backend
        return [], f"CuPy backend not importable ({exc})"
    if not available:
        return [], "CuPy: not available (no CuPy or no CUDA device), skipped"
    cp = cupy_backend.import_cupy()
    wd, Gd = cp.asarray(w), cp.asarray(G)
    sync = cp.cuda.get_current_stream().synchronize
    return [("cupy", "expand", *_time(lambda: basis.expand(wd), repeat, sync)),
            ("cupy", "adjoint", *_time(lambda: basis.adjoint(Gd), repeat, sync))], None


def _print_bench(result, rows, args, dtype) -> None:
    print(f"bench {result['layer']}, {dtype}, batch {args.batch}, {args.repeat} repeats")
    what = "first build" if args.quick else "basis build (no cache)"
    print(f"  {what + ':':23s} {result['basis_build_seconds'] * 1e3:9.2f} ms")
    for b, o, m, n in rows:
        print(f"  {b:6s} {o:8s} median {m * 1e3:9.3f} ms   min {n * 1e3:9.3f} ms")
    if result["note"]:
        print(f"  {result['note']}")


def cmd_bench(args) -> int:
    """Time the uncached basis build (not with --quick), expand and adjoint."""
    if args.repeat is None:
        args.repeat = QUICK_REPEAT if args.quick else BENCH_REPEAT
    require_min(args, 1, "--repeat", "--batch")
    dtype = np.dtype(args.dtype)
    basis, secs = build_basis(args)
    if args.quick:
        cold = secs
    else:
        say(args, "cupysteer: timing an uncached build")
        t = time.perf_counter()
        LayerBasis(basis.in_type, basis.out_type, cache=False,
                   **resolved_kwargs(args, basis.in_type.group))
        cold = time.perf_counter() - t
    shape = (args.batch, basis.dim) if args.batch > 1 else (basis.dim,)
    rng = np.random.default_rng(args.seed)
    w = rng.standard_normal(shape).astype(dtype)
    G = rng.standard_normal(shape[:-1] + basis.shape).astype(dtype)
    ops = [("numpy", "expand", lambda: basis.expand(w)),
           ("numpy", "adjoint", lambda: basis.adjoint(G))]
    rows = [(b, o, *_time(fn, args.repeat))
            for b, o, fn in with_progress(args, ops, "timing", lambda op: f"{op[0]} {op[1]}")]
    cupy, cupy_note = _cupy_rows(basis, w, G, args.repeat)
    rows += cupy
    result = dict(layer=describe(basis), dtype=str(dtype), batch=args.batch,
                  repeat=args.repeat, basis_build_seconds=cold,
                  timings=[dict(backend=b, op=o, median_ms=m * 1e3, min_ms=n * 1e3)
                           for b, o, m, n in rows], note=cupy_note)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_bench(result, rows, args, dtype)
    return 0
