"""The NumPy backend's "rows" schedule (issue 18): one weight gather, GEMMs that write the
filter in place, Q_out over cache-sized runs of output fields, and the BLAS thread limit that
the torch operator holds.

Equality: against the independent dense reference (``LayerBasis.dense``) and the "blocks"
schedule. Determinism: bit-identical across calls, fresh expanders and run lengths (the run
length only splits the batch of identical GEMM calls, never a sum).
"""
from __future__ import annotations

import numpy as np
import pytest

import cupysteer as cs
from cupysteer.backends.numpy_backend import NumpyExpander, blas_threads

# the benchmark's layers, with fewer fields (the schedule is the same)
LAYERS = {
    "C8 regular": lambda: _regular(cs.CyclicGroup(8), 3, 5),
    "C16 regular": lambda: _regular(cs.CyclicGroup(16), 2, 7),
    "D4 regular": lambda: _regular(cs.DihedralGroup(4), 3, 5),
    "SO2 irreps": lambda: _irreps(cs.SO2(3), 2, 7),
    "C8 regular + irreps": lambda: _mixed(cs.CyclicGroup(8), 5),
}


def _regular(G, m, k):
    t = cs.FieldType(G, [G.regular_representation] * m)
    return cs.LayerBasis(t, t, kernel_size=k)


def _irreps(G, m, k):
    t = cs.FieldType(G, [G.irrep(i).representation for i in range(4)] * m)
    return cs.LayerBasis(t, t, kernel_size=k)


def _mixed(G, k):
    R = G.regular_representation
    tin = cs.FieldType(G, [R, G.irrep(1), R, G.trivial_representation])
    tout = cs.FieldType(G, [G.irrep(2), R, R, G.irrep(1), R])
    return cs.LayerBasis(tin, tout, kernel_size=k)


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)


@pytest.fixture(scope="module", params=sorted(LAYERS))
def layer(request):
    return LAYERS[request.param]()


def _inputs(L, batch=None, seed=0):
    rng = np.random.default_rng(seed)
    lead = () if batch is None else (batch,)
    return rng.standard_normal(lead + (L.dim,)), rng.standard_normal(lead + L.shape)


@pytest.mark.parametrize("batch", [None, 3])
def test_rows_match_dense_and_blocks(layer, batch):
    W, G = _inputs(layer, batch)
    D = layer.dense().reshape(layer.dim, -1)
    ref = (W @ D).reshape(W.shape[:-1] + layer.shape)
    gref = G.reshape(G.shape[:G.ndim - len(layer.shape)] + (-1,)) @ D.T
    rows = NumpyExpander(layer.plan, np.float64, method="rows")
    blocks = NumpyExpander(layer.plan, np.float64, method="blocks")
    assert rows.method == "rows"
    K = rows.expand(W).reshape(ref.shape)
    assert rel(K, ref) < 1e-12
    assert rel(K, blocks.expand(W).reshape(ref.shape)) < 1e-12
    A = rows.adjoint(G)
    assert rel(A, gref) < 1e-12
    assert rel(A, blocks.adjoint(G)) < 1e-12
    r32 = NumpyExpander(layer.plan, np.float32, method="rows")
    assert rel(r32.expand(W.astype(np.float32)).reshape(ref.shape), ref) < 1e-5
    assert rel(r32.adjoint(G.astype(np.float32)), gref) < 1e-5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bit_identical_across_calls_expanders_and_run_lengths(layer, dtype):
    W, G = (x.astype(dtype) for x in _inputs(layer, seed=1))
    a = NumpyExpander(layer.plan, dtype)
    K, A = a.expand(W), a.adjoint(G)
    for _ in range(2):
        np.testing.assert_array_equal(a.expand(W), K)
        np.testing.assert_array_equal(a.adjoint(G), A)
    b = NumpyExpander(layer.plan, dtype)
    b.CHUNK_BYTES = 1  # one output field per run: many runs, the same GEMM calls
    assert any(len(b._chunks(g, 1)) > 1 for g in b.groups if g.Q is not None) or \
        all(g.Q is None or g.n == 1 for g in b.groups)
    np.testing.assert_array_equal(b.expand(W), K)
    np.testing.assert_array_equal(b.adjoint(G), A)
    np.testing.assert_array_equal(layer.expand(W), K)  # LayerBasis uses the same expander


def test_outputs_are_fresh_and_inputs_untouched(layer):
    W, G = _inputs(layer, seed=2)
    W0, G0 = W.copy(), G.copy()
    ex = NumpyExpander(layer.plan, np.float64)
    K1, A1 = ex.expand(W), ex.adjoint(G)
    K2, A2 = ex.expand(2 * W), ex.adjoint(2 * G)
    assert not np.shares_memory(K1, K2) and not np.shares_memory(A1, A2)
    np.testing.assert_array_equal(K2, 2 * K1)  # K1 not overwritten by the second call
    np.testing.assert_array_equal(A2, 2 * A1)
    np.testing.assert_array_equal(W, W0)
    np.testing.assert_array_equal(G, G0)


def test_gather_is_a_permutation(layer):
    ex = NumpyExpander(layer.plan, np.float32)
    np.testing.assert_array_equal(np.sort(ex.gather), np.arange(layer.dim))
    np.testing.assert_array_equal(ex.gather[ex.scatter], np.arange(layer.dim))


def test_partial_rows_are_zero_filled():
    """An output field whose irreps get no basis from some input field (SO(2) frequency 3 out
    of frequency 0 in, 3×3 filters): those rows must be zero, in place and in runs."""
    G = cs.SO2(3)
    tin = cs.FieldType(G, [G.irrep(0).representation] * 2)
    tout = cs.FieldType(G, [G.irrep(3).representation, G.irrep(0).representation] * 2)
    L = cs.LayerBasis(tin, tout, kernel_size=3)
    w = np.random.default_rng(3).standard_normal(L.dim)
    ref = np.tensordot(w, L.dense(), axes=(0, 0))
    ex = NumpyExpander(L.plan, np.float64, method="rows")
    assert rel(ex.expand(w).reshape(L.shape), ref) < 1e-12


def test_blas_threads_limits_and_restores():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = [i["num_threads"] for i in threadpoolctl.threadpool_info()
              if i["user_api"] == "blas"]
    with blas_threads(1):
        inside = [i["num_threads"] for i in threadpoolctl.threadpool_info()
                  if i["user_api"] == "blas"]
        assert all(n == 1 for n in inside)
    after = [i["num_threads"] for i in threadpoolctl.threadpool_info()
             if i["user_api"] == "blas"]
    assert after == before


def test_blas_threads_interleaved_holders_restore_the_limit():
    """Two holders (two threads running torch CPU ops) entering and leaving interleaved: the
    process is limited while either holds it and unlimited again after both left."""
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def counts():
        return [i["num_threads"] for i in threadpoolctl.threadpool_info()
                if i["user_api"] == "blas"]

    before = counts()
    a, b = blas_threads(1), blas_threads(1)
    a.__enter__()
    b.__enter__()
    a.__exit__(None, None, None)
    assert all(n == 1 for n in counts())  # b still holds it
    b.__exit__(None, None, None)
    assert counts() == before


def test_torch_cpu_op_expands_under_one_blas_thread(monkeypatch):
    """cupysteer.torch's CPU branch runs the NumPy expansion with one BLAS thread (torch's
    pool holds the cores; BENCHMARKS.md, issue 18)."""
    torch = pytest.importorskip("torch")
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from cupysteer.torch import ops
    L = _regular(cs.CyclicGroup(4), 2, 3)
    seen = []
    real = cs.LayerBasis.expand

    def spy(self, w, *a, **k):
        seen.append(max(i["num_threads"] for i in threadpoolctl.threadpool_info()
                        if i["user_api"] == "blas"))
        return real(self, w, *a, **k)

    monkeypatch.setattr(cs.LayerBasis, "expand", spy)
    w = torch.randn(L.dim)
    out = ops.expand(L, w)
    assert seen == [1]
    np.testing.assert_allclose(out.numpy(), real(L, w.numpy()), rtol=0, atol=0)
