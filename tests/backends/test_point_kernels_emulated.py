"""kernels/point_conv.cu run on the CPU (g++ + the CUDA emulation header) against the NumPy
reference of the point-convolution contract (cupysteer.backends.point_numpy).

The launches are the CuPy backend's own: :class:`PointLaunch` on the stand-in ``cupy`` of
tests/cuda_emulation (same source text, name expressions, CSRs, launch configuration and
argument lists); outputs are poisoned with NaN before every launch and dynamic shared memory
with NaN bytes before every CUDA block, so an element the kernels fail to write, or a lane
partial read before it is written, fails the comparison. Set CUPYSTEER_EMU_SANITIZE=address
or =thread to run the whole file under ASan+UBSan or TSan.
"""
from __future__ import annotations

import pickle
import sys
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cupysteer.backends import cupy_backend as cb
from cupysteer.backends import point_cupy as pc

from _helpers import rel_err
from cuda_emulation import harness as H
from cuda_emulation.point_harness import CpuPointLaunch, device, point_module
from cuda_emulation.point_problems import loop_reference, make_problem, reference

pytestmark = pytest.mark.skipif(H.gxx() is None, reason="g++ not found: the CPU emulation of "
                                "the CUDA kernels needs a host C++20 compiler")
TOL = {np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-12}


@pytest.fixture(scope="module", autouse=True)
def emulated_module():
    t0 = time.perf_counter()
    b = point_module().build
    print(f"\n[point emulation] g++ build: {'cached' if not b.seconds else f'{b.seconds:.1f} s'}"
          f" ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)


# ---- problems: tests/cuda_emulation/point_problems.py -------------------------------------

def run_all(p, launch=None, **kwargs):
    """(y, grad_g, grad_w) through one prepared CpuPointLaunch."""
    L = launch or CpuPointLaunch(p["table"], p["src"], p["dst"], p["n_src"], p["n_tgt"],
                                 c_in=p["g"].shape[1], **kwargs)
    return (L.contract(p["basis"], p["w"], p["g"]),
            L.adjoint_features(p["basis"], p["w"], p["gy"]),
            L.adjoint_weights(p["basis"], p["gy"], p["g"], len(p["w"])), L)


def assert_matches(p, got, tol):
    for name, a, b in zip(("contract", "adjoint_features", "adjoint_weights"), got,
                          reference(p)):
        if name == "adjoint_features":  # the prepared launch returns g's width (c_in), the
            assert not a[:, b.shape[1]:].any()  # function the table's: extra columns are 0
            a = a[:, :b.shape[1]]
        assert a.shape == b.shape and a.dtype == b.dtype, (name, a.shape, b.shape)
        assert np.isfinite(a).all(), name  # every element written (outputs poisoned)
        assert rel_err(a, b.astype(np.float64)) < tol, (name, rel_err(a, b))


# ---- against the reference -----------------------------------------------------------------

problems = st.fixed_dictionaries(dict(
    seed=st.integers(0, 2 ** 31), n_blocks=st.integers(1, 6), c_out=st.integers(1, 9),
    c_in=st.integers(1, 9), n_src=st.integers(1, 6), n_tgt=st.integers(1, 6),
    E=st.integers(0, 30), dtype=st.sampled_from([np.float32, np.float64])))


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(problems)
def test_random_tables_and_graphs_match_the_reference(kw):
    p = make_problem(**kw)
    *got, _ = run_all(p)
    assert_matches(p, got, TOL[np.dtype(kw["dtype"])])


def test_numpy_reference_matches_plain_loops():
    """The reference the kernels are checked against, itself against the contract's loops."""
    for seed in range(4):
        p = make_problem(seed, n_blocks=4)
        for a, b in zip(reference(p), loop_reference(p)):
            assert rel_err(a, b) < 1e-12


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adjoint_identities(dtype):
    """<ȳ, contract(w, g)> = <adjoint_features(w, ȳ), g> = <adjoint_weights(ȳ, g), w>."""
    p = make_problem(7, n_blocks=5, c_out=9, c_in=8, E=40, dtype=dtype)
    y, gg, gw, _ = run_all(p)
    lhs = float(np.vdot(p["gy"].astype(np.float64), y))
    scale = np.abs(p["gy"]).sum() * np.abs(y).max() + 1
    assert abs(lhs - float(np.vdot(gg, p["g"]))) < 10 * TOL[np.dtype(dtype)] * scale
    assert abs(lhs - float(np.vdot(gw, p["w"]))) < 10 * TOL[np.dtype(dtype)] * scale


# ---- edge cases --------------------------------------------------------------------------------

def test_no_edges_isolated_nodes_and_unused_channels():
    p = make_problem(1, E=0)
    y, gg, gw, L = run_all(p)
    assert not y.any() and not gg.any() and not gw.any()
    assert L.n_tiles == 0 and np.isfinite(gw).all()
    # targets 0 and 3 and source 4 have no edges; channel 0 is covered by no block
    t = np.array([[1, 1, 2, 1, 2, 0, 0], [3, 0, 1, 3, 1, 2, 4]], np.int64)
    p = make_problem(2, src=[0, 1, 2, 0, 3], dst=[1, 2, 1, 2, 2])
    rng = np.random.default_rng(0)
    p.update(table=t, basis=rng.standard_normal((5, 7)), w=rng.standard_normal(3),
             g=rng.standard_normal((5, 3)), gy=rng.standard_normal((4, 4)))
    y, gg, gw, _ = run_all(p)
    assert_matches(p, (y, gg, gw), 1e-12)
    assert not y[[0, 3]].any() and not y[:, 0].any() and not gg[4].any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_degree_uses_lanes_deterministically(dtype):
    """A hub with 3000 in-edges and one with 2000 out-edges: several lanes per element
    (split > 1, the partials combined in shared memory), matching the reference, and
    bit-identical from run to run."""
    rng = np.random.default_rng(3)
    E = 3000
    src = np.where(np.arange(E) < 2000, 0, rng.integers(1, 6, E))
    dst = np.where(np.arange(E) % 3 == 0, rng.integers(0, 5, E), 5)
    p = make_problem(4, n_blocks=3, c_out=6, c_in=5, n_src=6, n_tgt=7, src=src, dst=dst,
                     dtype=dtype, dims=(1, 3, 5))
    y, gg, gw, L = run_all(p)
    assert L.config("forward", dtype).split > 1 and L.config("features", dtype).split > 1
    assert L.n_tiles > 1
    assert_matches(p, (y, gg, gw), 10 * TOL[np.dtype(dtype)])
    y2, gg2, gw2, _ = run_all(p, L)
    for a, b in ((y, y2), (gg, gg2), (gw, gw2)):
        assert a.tobytes() == b.tobytes()


def test_large_irreps_many_blocks_wide_fields():
    """3D sizes: blocks of 13 × 13 (l = 6) and 7 × 5, 60 blocks, more output channels than
    threads per CUDA block (several rounds of items, one node per CUDA block)."""
    p = make_problem(5, n_blocks=60, c_out=140, c_in=30, n_src=4, n_tgt=3, E=12,
                     dims=(1, 3, 5, 7, 13))
    y, gg, gw, L = run_all(p)
    assert L.config("forward", np.float64).nodes_per_block == 1
    assert_matches(p, (y, gg, gw), 1e-12)


def test_fewer_threads_more_rounds():
    """The same kernels with 32 threads per CUDA block (so items take several rounds and
    lanes split differently) give the same results."""
    p = make_problem(6, n_blocks=4, c_out=9, c_in=6, E=60, n_tgt=3, n_src=3)
    a = run_all(p)[:3]
    b = run_all(p, threads=32)[:3]
    for x, z in zip(a, b):
        assert rel_err(x, z) < 1e-12


# ---- the prepared launch ---------------------------------------------------------------------

def test_prepared_launch_is_one_launch_per_call_and_pickles():
    p = make_problem(8, E=15)
    y, gg, gw, L = run_all(p)
    cupy = L.cupy
    assert cupy.stream.synchronized == 2  # tables and weight CSR uploaded once each
    n = len(L.launches)
    L.contract(p["basis"], p["w"], p["g"])
    assert len(L.launches) == n + 1
    L.adjoint_features(p["basis"], p["w"], p["gy"])
    assert len(L.launches) == n + 2
    L.adjoint_weights(p["basis"], p["gy"], p["g"])
    assert len(L.launches) == n + 4  # the two passes
    assert cupy.stream.synchronized == 2  # nothing uploaded again
    M = pickle.loads(pickle.dumps(L))
    np.testing.assert_array_equal(M.contract(p["basis"], p["w"], p["g"]), y)
    # non-contiguous inputs are made contiguous, not misread
    g2 = np.asfortranarray(p["g"])
    np.testing.assert_array_equal(L.contract(p["basis"], p["w"], g2), y)


def test_module_functions_take_device_arrays(monkeypatch):
    """contract / contract_adjoint_* of point_cupy (fresh PointLaunch per call) with the
    stand-in cupy and the emulated module in place of CuPy's."""
    host = H.HostCupy()
    monkeypatch.setattr(pc, "import_cupy", lambda: host)
    monkeypatch.setattr(pc, "_MODULES", {})
    p = make_problem(9, E=18)
    ref = reference(p)
    d = {k: device(v) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v
         for k, v in p.items()}
    y = pc.contract(p["table"], d["basis"], d["w"], d["g"], p["src"], p["dst"], p["n_tgt"])
    gg = pc.contract_adjoint_features(p["table"], d["basis"], d["w"], d["gy"], p["src"],
                                      p["dst"], p["n_src"])
    gw = pc.contract_adjoint_weights(p["table"], d["basis"], d["gy"], d["g"], p["src"],
                                     p["dst"], len(p["w"]))
    for a, b in zip((y, gg, gw), ref):
        assert isinstance(a, H.HostArray) and rel_err(a, b) < 1e-12
    assert host.launches == ["point_segments<double, double>"] * 2 + [
        "point_weight_partials<double, double>", "point_weight_reduce<double, double>"]


def test_argument_checks_name_the_argument():
    p = make_problem(10, E=6)
    L = CpuPointLaunch(p["table"], p["src"], p["dst"], p["n_src"], p["n_tgt"],
                       c_in=p["g"].shape[1])
    b, w, g = p["basis"], p["w"], p["g"]
    bad = [
        (lambda: L.contract(b.astype(np.float32), w, g), ValueError, "weights has dtype"),
        (lambda: L.contract(b, w, g.astype(np.float32)), ValueError, "g has dtype"),
        (lambda: L.contract(b[:-1], w, g), ValueError, "basis must have shape"),
        (lambda: L.contract(b[:, :1], w, g), ValueError, "basis must have shape"),
        (lambda: L.contract(b, w[:0], g), ValueError, "weights must have shape"),
        (lambda: L.contract(b, w, g[:, :-1]), ValueError, "g must have shape"),
        (lambda: L.contract(b.astype(np.float16), w, g), ValueError, "basis must be float32"),
        (lambda: L.adjoint_features(b, w, p["gy"][:-1]), ValueError, "grad_y must have shape"),
        (lambda: L.adjoint_weights(b, p["gy"], g, 0), ValueError, "n_weights"),
        (lambda: pc.PointLaunch.contract(L, b, w, g), TypeError, "basis: the CuPy backend "
                                                                 "takes cupy.ndarray"),
        (lambda: CpuPointLaunch(p["table"], p["src"], p["dst"][:-1], 5, 4), ValueError,
         "same length"),
        (lambda: CpuPointLaunch(p["table"], p["src"], p["dst"], 5, 1), ValueError,
         "dst holds node"),
        (lambda: CpuPointLaunch(p["table"], -1 - p["src"], p["dst"], 5, 4), ValueError,
         "src holds node -"),
        (lambda: CpuPointLaunch(p["table"], p["src"] + 0.5, p["dst"], 5, 4), ValueError,
         "src must be an integer array"),
        (lambda: CpuPointLaunch(p["table"], p["src"][:, None], p["dst"][:, None], 5, 4),
         ValueError, "src must be one-dimensional"),
        (lambda: CpuPointLaunch(p["table"][:, :6], p["src"], p["dst"], 5, 4), ValueError,
         "table must be"),
        (lambda: CpuPointLaunch(p["table"], p["src"], p["dst"], 5, 4, c_in=0), ValueError,
         "c_in = 0"),
    ]
    for call, exc, match in bad:
        with pytest.raises(exc, match=match):
            call()
    assert not L.launches  # nothing was launched by a failing call


def test_benchmark_script_runs_on_the_emulator():
    """benchmarks/bench_point_gpu.py's measuring code on the emulated kernels (tiny sizes),
    so the GPU benchmark is not first run on a borrowed GPU; its synthetic C8 table is a
    valid table the reference agrees on, and its materialised baseline's filters (checked
    with NumPy: the stand-in cupy has no matmul) give the same result."""
    import importlib.util

    from _paths import REPO
    spec = importlib.util.spec_from_file_location("bench_point_gpu",
                                                  REPO / "benchmarks" / "bench_point_gpu.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    table, n_entries, n_weights, c = bench.c8_table(1, 2)
    assert c == 8 and len(table) == 25 and n_entries == sum(
        2 * max(a, b) * a * b for a in bench.C8_IRREP_DIMS for b in bench.C8_IRREP_DIMS)
    case = bench.make_case(48, 6, 1, 2, np.float64)
    case["harmonics"] = bench.harmonics(case, 2)
    case["delta"] = np.random.default_rng(0).uniform(-1, 1, (48, 2))
    lines = []
    res = bench.run(H.HostCupy(), case, iters=1, repeats=1, launch_cls=CpuPointLaunch,
                    baseline=False, out=lines.append)
    assert res["edges_per_s"] > 0 and any("GB/s" in s for s in lines)
    assert res["contract_2d"] > 0 and any("contract_2d" in s for s in lines)
    p = dict(table=case["table"], basis=case["basis"], w=case["w"], g=case["g"],
             gy=case["gy"], src=case["src"], dst=case["dst"], n_src=case["n"],
             n_tgt=case["n"])
    y, gg, gw, _ = run_all(p)
    assert_matches(p, (y, gg, gw), 1e-12)
    # the materialised baseline's filters (basis @ M), applied with NumPy, agree too
    K = (case["basis"] @ bench.expansion_matrix(case)).reshape(-1, 8, 8)
    y0 = np.zeros_like(y)
    np.add.at(y0, case["dst"], np.einsum("eoi,ei->eo", K, case["g"][case["src"]]))
    assert rel_err(y, y0) < 1e-12
    if not cb.is_available():
        assert bench.main([]) == 0  # no GPU: a message, no traceback


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_summation_order_is_increasing_edge_order(dtype):
    """With one lane per element (split = 1) the forward is, bit for bit, the sequential sum
    over the target's edges in increasing edge index, then the blocks covering the channel
    in table order (the emulation compiles without FMA contraction: IEEE operations one by
    one, replayed here in the same order with NumPy scalars of the same dtype)."""
    p = make_problem(11, n_blocks=4, c_out=5, c_in=4, n_src=4, n_tgt=3, E=14, dtype=dtype,
                     dims=(1, 2, 3))
    L = CpuPointLaunch(p["table"], p["src"], p["dst"], p["n_src"], p["n_tgt"],
                       c_in=p["g"].shape[1])
    assert L.config("forward", dtype).split == 1
    for t in range(p["n_tgt"]):  # the CSR keeps each target's edges in increasing order
        seg = L.tgt_edges[L.tgt_ptr[t]:L.tgt_ptr[t + 1]]
        assert (np.diff(seg) > 0).all() and (p["dst"][seg] == t).all()
    y = L.contract(p["basis"], p["w"], p["g"])
    T, B, w, g = p["table"], p["basis"], p["w"], p["g"]
    want = np.zeros_like(y)
    for t in range(p["n_tgt"]):
        for o in range(y.shape[1]):
            acc = dtype(0)
            for e in np.flatnonzero(p["dst"] == t):
                for oo, io, do, di, nb, wo, bo in T:
                    if not oo <= o < oo + do:
                        continue
                    for c in range(di):
                        kv = dtype(0)
                        for k in range(nb):
                            kv = w[wo + k] * B[e, bo + (k * do + o - oo) * di + c] + kv
                        acc = kv * g[p["src"][e], io + c] + acc
            want[t, o] = acc
    assert y.tobytes() == want.tobytes()
