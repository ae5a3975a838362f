"""Host overhead of the CUDA path, measured on the CPU: cupysteer's own Python per call.

    python3 benchmarks/bench_host.py [--json out.json] [--quick] [--number N]

No GPU is needed. A stand-in ``cupy`` module (:class:`StandInCupy`, inserted into
``sys.modules`` before cupysteer's CuPy backend is imported) makes the real
:class:`~cupysteer.backends.cupy_backend.CupyExpander` and :meth:`cupysteer.LayerBasis.expand`
run on the CPU: arrays are NumPy arrays posing as ``cupy.ndarray`` on device 0, streams and
devices are stubs, ``empty`` reuses one block per shape (as CuPy's pool reuses freed blocks)
and ``RawModule`` returns kernels that do nothing. What ``timeit`` then
measures per call is cupysteer's host path (checks, cached launch arguments, allocation of the
output, the launch call) plus the stand-in's own cost of the few CuPy calls it makes (a few
hundred ns; CuPy's and the driver's launch cost, 3-5 µs on a GPU, is not included).

For every layer of ``benchmarks/bench_gpu.py`` (2D and 3D, and the 10-layer network in one
expander), float32, batch 1: ``CupyExpander.expand`` and ``.adjoint`` with ``out=`` given
(torch's path: the output comes from its allocator) and without (the output from the pool),
and ``LayerBasis.expand``/``adjoint`` with ``out=``. The first call of each (upload of the
tables, launch configuration: once per plan set, dtype, batch and device) is timed apart.
Target (issue 13): ≤ 10 µs per hot call.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import timeit
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

TARGET_US = 10.0

# ---- the stand-in cupy module -----------------------------------------------------------------


class _Device:
    def __init__(self, i=0):
        self.id = i
        self.mem_info = (64 << 30, 80 << 30)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _Stream:
    def synchronize(self):
        pass

    def is_capturing(self):
        return False


_DEV = _Device(0)
_STREAM = _Stream()


class ndarray(np.ndarray):  # noqa: N801 (CuPy's name)
    """A NumPy array posing as ``cupy.ndarray`` on device 0."""

    @property
    def device(self):
        return _DEV

    def get(self):
        return np.asarray(self)


ndarray.__module__ = "cupy._core.core"


class _NoOpModule:
    def __init__(self, **kw):
        self.kw = kw

    def get_function(self, name):
        return lambda grid, block, args, shared_mem=0, stream=None: None


class _Pool:
    def free_bytes(self):
        return 0


def _wrap(a):
    return a.view(ndarray)


def stand_in_cupy() -> types.ModuleType:
    """A module object with the part of ``cupy`` the CuPy backend uses."""
    m = types.ModuleType("cupy")
    m.ndarray = ndarray
    m.float16, m.float32, m.float64, m.uint16 = np.float16, np.float32, np.float64, np.uint16
    m.is_available = lambda: True
    m.asarray = lambda a, dtype=None: _wrap(np.asarray(a, dtype))
    pool: dict = {}  # like CuPy's memory pool: a freed block of the same size is reused

    def empty(shape, dtype=np.float64):
        key = (tuple(shape) if isinstance(shape, (tuple, list)) else (shape,), np.dtype(dtype))
        if key not in pool:
            pool[key] = _wrap(np.empty(*key))
        return pool[key]
    m.empty = empty
    m.zeros = lambda shape, dtype=np.float64: _wrap(np.zeros(shape, dtype))
    m.ascontiguousarray = lambda a: _wrap(np.ascontiguousarray(a))
    m.RawModule = _NoOpModule
    m.get_default_memory_pool = _Pool
    m.cuda = types.SimpleNamespace(Device=lambda *a: _DEV, get_current_stream=lambda: _STREAM)
    return m


def install_stand_in():
    """Put the stand-in into ``sys.modules['cupy']`` (refuses if a real CuPy is loaded)."""
    real = sys.modules.get("cupy")
    if real is not None and not getattr(real, "_cupysteer_stand_in", False):
        raise RuntimeError("a real cupy is already imported; run bench_host.py in a fresh "
                           "process")
    m = stand_in_cupy()
    m._cupysteer_stand_in = True
    sys.modules["cupy"] = m
    return m


# ---- measurement ------------------------------------------------------------------------------

def per_call_us(fn, number: int, repeat: int = 5) -> float:
    """Best of ``repeat`` runs of ``number`` calls, µs per call."""
    return 1e6 * min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def first_call_us(fn) -> float:
    t = time.perf_counter()
    fn()
    return 1e6 * (time.perf_counter() - t)


def measure(name, layers, cupy, number) -> dict:
    from cupysteer.backends.cupy_backend import CupyExpander
    ex = CupyExpander([L.plan for L in layers], np.float32)
    p = ex.packed
    rng = np.random.default_rng(0)
    w = _wrap(rng.standard_normal(p.dim).astype(np.float32))
    g = _wrap(rng.standard_normal(p.filter_size).astype(np.float32))
    fo = _wrap(np.empty(p.filter_size, np.float32))
    wo = _wrap(np.empty(p.dim, np.float32))
    r = {"name": name, "layers": len(layers), "dim": p.dim, "filter_size": p.filter_size,
         "expand_first_us": first_call_us(lambda: ex.expand(w, out=fo)),
         "adjoint_first_us": first_call_us(lambda: ex.adjoint(g, out=wo))}
    r["expand_out_us"] = per_call_us(lambda: ex.expand(w, out=fo), number)
    r["adjoint_out_us"] = per_call_us(lambda: ex.adjoint(g, out=wo), number)
    r["expand_alloc_us"] = per_call_us(lambda: ex.expand(w), number)
    r["adjoint_alloc_us"] = per_call_us(lambda: ex.adjoint(g), number)
    if len(layers) == 1:
        L = layers[0]
        K = _wrap(np.empty(L.shape, np.float32))
        G = _wrap(rng.standard_normal(L.shape).astype(np.float32))
        L.expand(w, out=K)
        L.adjoint(G, out=wo)
        r["basis_expand_out_us"] = per_call_us(lambda: L.expand(w, out=K), number)
        r["basis_adjoint_out_us"] = per_call_us(lambda: L.adjoint(G, out=wo), number)
    hot = [v for k, v in r.items() if k.endswith("_us") and "first" not in k]
    r["max_hot_us"] = max(hot)
    r["meets_target"] = r["max_hot_us"] <= TARGET_US
    return r


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--quick", action="store_true", help="bench_gpu's quick layer set")
    ap.add_argument("--number", type=int, default=2000, help="calls per timing run")
    args = ap.parse_args(argv)
    cupy = install_stand_in()
    sys.path.insert(0, HERE)
    import bench_gpu  # noqa: E402 (after the stand-in: bench_gpu imports the backend)
    t0 = time.perf_counter()
    sets = bench_gpu.build_layers(args.quick)
    print(f"layers built in {time.perf_counter() - t0:.1f} s", flush=True)
    env = {"machine": platform.machine(), "processor": platform.processor(),
           "python": platform.python_version(), "numpy": np.__version__,
           "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d"), "number": args.number,
           "target_us": TARGET_US}
    print(json.dumps(env), flush=True)
    results = []
    print("%-26s %8s %8s %8s %8s %8s %8s %9s %9s" % (
        "layer", "exp out", "adj out", "exp new", "adj new", "L.exp", "L.adj", "1st exp",
        "1st adj"), flush=True)
    for name, layers in sets.items():
        r = measure(name, layers, cupy, args.number)
        results.append(r)

        def f(k):
            return "%8.2f" % r[k] if k in r else "%8s" % "-"
        print("%-26s %s %s %s %s %s %s %9.0f %9.0f" % (
            name[:26], f("expand_out_us"), f("adjoint_out_us"), f("expand_alloc_us"),
            f("adjoint_alloc_us"), f("basis_expand_out_us"), f("basis_adjoint_out_us"),
            r["expand_first_us"], r["adjoint_first_us"]), flush=True)
    worst = max(r["max_hot_us"] for r in results)
    print(f"worst hot call: {worst:.2f} µs (target ≤ {TARGET_US} µs): "
          f"{'met' if worst <= TARGET_US else 'MISSED'}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"env": env, "results": results, "worst_us": worst}, fh, indent=1)
    return 0 if worst <= TARGET_US else 1


if __name__ == "__main__":
    sys.exit(main())
