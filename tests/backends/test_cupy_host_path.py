"""The CuPy backend's host path and its ``out=`` contract, on the CPU: the real
:class:`~cupysteer.backends.cupy_backend.CupyExpander` over the stand-in ``cupy`` of
``tests/cuda_emulation`` (kernels built with g++, outputs poisoned with NaN before each launch).

* ``out=``: checked before any reshape (type, shape, dtype, C-contiguity, device), never
  replaced by a copy; on the NumPy path supported with the same checks;
* device memory: only what the expander allocates is checked (a caller's ``out`` is not);
* the host path: launch configuration, kernel handles, device tables and argument tuples are
  prepared once per (kind, output type, batch, device); a hot call launches exactly one
  kernel and never synchronises; the first use inside a CUDA graph capture is refused with the
  fix, and after :meth:`~CupyExpander.prepare` capture works.
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest

import cupysteer as cs
from cupysteer import _memory

from _helpers import rel_err
from cuda_emulation import harness as H

pytestmark = pytest.mark.skipif(H.gxx() is None, reason="g++ not found: the CPU emulation of "
                                                        "the CUDA kernels cannot be built")


class DevArray(H.HostArray):
    """A host array that cupysteer's dispatch takes for a ``cupy.ndarray`` (device 0)."""


DevArray.__module__ = "cupy._emulated"


class OtherDevArray(DevArray):
    @property
    def device(self):
        return type("Device", (), {"id": 1})()


def dev(a):
    return np.ascontiguousarray(a).view(DevArray)


@pytest.fixture(scope="module")
def layer():
    G = cs.CyclicGroup(4)
    R = G.regular_representation
    return cs.LayerBasis(cs.FieldType(G, [R, G.irreps()[1].representation]),
                         cs.FieldType(G, [R] * 2), 3)


def emulated(layer, dtype=np.float32, **kw):
    """``layer`` with its CuPy expander replaced by the emulated one (what
    ``LayerBasis._cupy_expander`` builds on a GPU machine)."""
    ex = H.CpuExpander(layer.plan, dtype, **kw)
    layer._expanders[("cupy", np.dtype(dtype), "fused")] = ex
    return ex


def weights(layer, batch=(), dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(batch + (layer.dim,)).astype(dtype)


# ---- out= on the CuPy path ----------------------------------------------------------------------

def test_cupy_out_receives_the_filter(layer):
    emulated(layer)
    w = weights(layer, (2,))
    out = dev(np.full((2,) + layer.shape, np.nan, np.float32))
    got = layer.expand(dev(w), out=out)
    assert got is out
    assert rel_err(np.asarray(out), layer.expand(w.astype(np.float64))) < 1e-5
    G = np.random.default_rng(1).standard_normal((2,) + layer.shape).astype(np.float32)
    gout = dev(np.full((2, layer.dim), np.nan, np.float32))
    assert layer.adjoint(dev(G), out=gout) is gout
    assert rel_err(np.asarray(gout), layer.adjoint(G.astype(np.float64))) < 1e-5


def _transposed(shape):
    """A Fortran-ordered array of ``shape``: reshaping it to one flat row must copy."""
    return dev(np.zeros(shape[::-1], np.float32)).transpose()


def _every_other(shape):
    return dev(np.zeros(shape[:-1] + (2 * shape[-1],), np.float32))[..., ::2]


@pytest.mark.parametrize("view", [_transposed, _every_other])
def test_cupy_out_non_contiguous_is_refused_not_copied(layer, view):
    """Before: ``out.reshape`` of a transposed ``out`` made a copy, the kernel filled the copy
    and ``out`` came back unwritten, silently."""
    emulated(layer)
    out = view(layer.shape)
    with pytest.raises(ValueError, match="out must be C-contiguous"):
        layer.expand(dev(weights(layer)), out=out)
    assert not np.asarray(out).any()
    gview = dev(np.zeros((layer.dim, 2), np.float32))[:, 0]
    with pytest.raises(ValueError, match="out must be C-contiguous"):
        layer.adjoint(dev(np.ones(layer.shape, np.float32)), out=gview)


@pytest.mark.parametrize("bad, error, match", [
    (lambda L: dev(np.zeros(L.shape, np.float64)), ValueError, r"dtype float32"),
    (lambda L: dev(np.zeros((1,) + L.shape, np.float32)), ValueError, r"must have shape"),
    (lambda L: dev(np.zeros(L.shape[::-1], np.float32)), ValueError, r"must have shape"),
    (lambda L: np.zeros(L.shape, np.float32), TypeError, r"out must be a cupy.ndarray"),
    (lambda L: np.zeros(L.shape, np.float32).view(OtherDevArray), ValueError,
     r"out lives on device 1, the current device is 0"),
])
def test_cupy_out_checks(layer, bad, error, match):
    ex = emulated(layer)
    with pytest.raises(error, match=match):
        layer.expand(dev(weights(layer)), out=bad(layer))
    assert ex.last_config is None  # nothing was launched


def test_cupy_out_checked_by_the_expander_too(layer):
    ex = emulated(layer)
    p = ex.packed
    w = dev(weights(layer))
    with pytest.raises(ValueError, match="C-contiguous"):
        ex.expand(w, out=dev(np.zeros((p.filter_size, 2), np.float32))[:, 0])
    with pytest.raises(ValueError, match="shape"):
        ex.adjoint(dev(np.zeros(p.filter_size, np.float32)),
                   out=dev(np.zeros(p.dim + 1, np.float32)))


# ---- out= on the NumPy path ---------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_out(layer, dtype):
    w = weights(layer, (3,), dtype)
    out = np.full((3,) + layer.shape, np.nan, dtype)
    assert layer.expand(w, out=out) is out
    np.testing.assert_array_equal(out, layer.expand(w))
    G = np.random.default_rng(2).standard_normal(layer.shape).astype(dtype)
    gout = np.full(layer.dim, np.nan, dtype)
    assert layer.adjoint(G, out=gout) is gout
    np.testing.assert_array_equal(gout, layer.adjoint(G))


@pytest.mark.parametrize("bad, error, match", [
    (lambda L: np.zeros(L.shape[:-1] + (2 * L.shape[-1],), np.float32)[..., ::2], ValueError,
     "C-contiguous"),
    (lambda L: np.zeros(L.shape, np.float64), ValueError, "dtype float32"),
    (lambda L: np.zeros(L.shape[1:], np.float32), ValueError, "must have shape"),
    (lambda L: dev(np.zeros(L.shape, np.float32)), TypeError, "out must be a NumPy array"),
    (lambda L: np.broadcast_to(np.zeros(1, np.float32), L.shape), ValueError, "writeable"),
])
def test_numpy_out_checks(layer, bad, error, match):
    out = bad(layer)
    before = np.array(out)
    with pytest.raises(error, match=match):
        layer.expand(weights(layer), out=out)
    np.testing.assert_array_equal(np.asarray(out), before)


def test_out_with_wrong_weights_names_the_weights(layer):
    with pytest.raises(ValueError, match=rf"weights must have shape \({layer.dim},\)"):
        layer.expand(np.zeros(layer.dim + 1, np.float32), out=np.zeros(layer.shape, np.float32))


# ---- device memory: only what is allocated ------------------------------------------------

class _NoKernels(H.CpuExpander):
    """The real launcher with kernels that do nothing (for sizes the emulation would take
    seconds to fill)."""

    def _module(self, half):
        return type("M", (), {"get_function": lambda s, n: (lambda *a, **k: None)})()


def test_out_is_not_checked_against_free_device_memory(layer):
    """torch's caching allocator may hold most of the card: a ≥ 64 MiB filter batch written into
    torch's own tensor must not be refused because the *free* memory is small."""
    ex = _NoKernels(layer.plan, np.float32, mem_free=1 << 20)  # 1 MiB free
    p = ex.packed
    batch = (80 << 20) // (4 * p.filter_size) + 1  # > 80 MiB of filters
    w = np.zeros((batch, p.dim), np.float32).view(H.HostArray)
    out = np.empty((batch, p.filter_size), np.float32).view(H.HostArray)
    assert ex.expand(w, out=out) is out
    g = np.zeros((batch, p.filter_size), np.float32).view(H.HostArray)
    gout = np.empty((batch, p.dim), np.float32).view(H.HostArray)
    assert ex.adjoint(g, out=gout) is gout
    with pytest.raises(MemoryError, match=r"expand: \d+ filter\(s\) .* on CUDA device 0"):
        ex.expand(w)


def test_explicit_memory_limit_applies_to_allocations_only(layer, monkeypatch):
    ex = emulated(layer)
    ex.prepare(batch=1)  # the plan upload is checked too: do it before the limit
    monkeypatch.setenv(_memory.ENV, "16")
    w = dev(weights(layer))
    out = dev(np.empty(layer.shape, np.float32))
    layer.expand(w, out=out)
    assert not np.isnan(np.asarray(out)).any()
    with pytest.raises(MemoryError, match="CUPYSTEER_MEMORY_LIMIT=16"):
        layer.expand(w)


# ---- the host path ------------------------------------------------------------------------------

class _Counting(H.CpuExpander):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.configs, self.modules = [], 0

    def config(self, kind, batch):
        self.configs.append((kind, batch))
        return super().config(kind, batch)

    def _module(self, half):
        self.modules += 1
        return super()._module(half)


def test_prepared_once_then_one_launch_per_call(layer):
    ex = _Counting(layer.plan, np.float32)
    p = ex.packed
    w = np.random.default_rng(3).standard_normal((2, p.dim)).astype(np.float32)
    g = np.random.default_rng(4).standard_normal((2, p.filter_size)).astype(np.float32)
    first = (ex.expand(w), ex.adjoint(g))
    assert ex.configs == [("forward", 2), ("adjoint", 2)] and ex.modules == 2
    assert ex.cupy.stream.synchronized == 1  # the plan upload, once
    n = len(ex.cupy.launches)
    for _ in range(3):
        np.testing.assert_array_equal(ex.expand(w), first[0])
        np.testing.assert_array_equal(ex.adjoint(g), first[1])
    assert len(ex.cupy.launches) == n + 6  # one launch per call, nothing else
    assert ex.configs == [("forward", 2), ("adjoint", 2)] and ex.modules == 2
    assert ex.cupy.stream.synchronized == 1
    ex.expand(w[0])  # another batch size: one more preparation
    assert ex.configs[-1] == ("forward", 1) and ex.cupy.stream.synchronized == 1
    ex.shared_limit = 4 * 1024  # a lowered limit is a new configuration, not a stale one
    ex.expand(w[0])
    assert ex.configs[-1] == ("forward", 1) and ex.last_config.shared_mem <= 4 * 1024


def test_graph_capture(layer):
    """The first use needs an upload and a synchronisation: refused inside a capture, with the
    fix in the message; prepared beforehand, the calls inside the capture only launch."""
    ex = H.CpuExpander(layer.plan, np.float32)
    p = ex.packed
    w = np.ones((1, p.dim), np.float32)
    ex.cupy.stream.capturing = True
    with pytest.raises(RuntimeError, match=r"inside a CUDA graph capture.*\.prepare\(batch=1\)"):
        ex.expand(w)
    ex.cupy.stream.capturing = False
    ex.prepare(batch=1)
    ex.cupy.stream.capturing = True
    out = np.empty((1, p.filter_size), np.float32)
    ex.expand(w, out=out)
    ex.adjoint(out, out=np.empty((1, p.dim), np.float32))
    ex.cupy.stream.capturing = False
    assert rel_err(out, layer.expand(w.astype(np.float64)).reshape(1, -1)) < 1e-5


def test_adjoint_writes_every_weight_without_zero_fill(layer):
    """The adjoint output is no longer zero-filled before the launch (one launch per call):
    the poisoned emulation shows the kernel writes every entry."""
    ex = H.CpuExpander(layer.plan, np.float64)
    g = np.random.default_rng(5).standard_normal((3, ex.packed.filter_size))
    got = ex.adjoint(g)
    assert not np.isnan(got).any()
    assert rel_err(got, layer.adjoint(g.reshape((3,) + layer.shape))) < 1e-12


def test_expander_pickles_without_device_state(layer):
    ex = H.CpuExpander(layer.plan, np.float32)
    ex.expand(np.zeros(ex.packed.dim, np.float32))
    state = ex.__getstate__()
    assert not {"_launches", "_device_tables", "_lock"} & set(state)
    clone = pickle.loads(pickle.dumps(cs.backends.cupy_backend.CupyExpander(layer.plan)))
    assert clone.packed.dim == layer.dim and clone.last_config is None
