"""Bad inputs: every one fails loudly, with an error that names the argument and the fix, or
is documented as accepted (and then gives exactly the filter of the equivalent clean input).

This file holds the cases the per-module tests do not (see README "Robustness and security"
for the whole table and where each row is tested). Paths that need CuPy run against a small
stand-in ``cupy`` module (the checks happen in Python before any allocation or launch); NaN
propagation through the CUDA kernels runs on the CPU emulation (tests/cuda_emulation).
"""
from __future__ import annotations

import math
import types

import numpy as np
import pytest

import cupysteer as cs
from cupysteer import _memory
from cupysteer.backends import cupy_backend as cb
from cupysteer.backends.launch import launch_config
from cupysteer.backends.packing import pack_plans

from _helpers import ft, group, irrep, network, reference_forward
from cuda_emulation import harness as H

needs_gxx = pytest.mark.skipif(H.gxx() is None, reason="g++ not found: the CPU emulation of "
                                                       "the CUDA kernels needs a host C++ compiler")


@pytest.fixture(scope="module")
def layer():
    """Mixed, repeated, non-contiguous fields with non-identity Q on both sides."""
    G = cs.DihedralGroup(3)
    tin = cs.FieldType(G, [G.regular_representation, G.irrep(1, 1), G.trivial_representation])
    tout = cs.FieldType(G, [G.irrep(1, 1), G.trivial_representation, G.regular_representation,
                            G.irrep(1, 0)])
    return cs.LayerBasis(tin, tout, 3)


@pytest.fixture(autouse=True)
def _auto_memory_limit(monkeypatch):
    monkeypatch.delenv(_memory.ENV, raising=False)


# ---- weights, filter_grad, bias: dtypes --------------------------------------------------------

def test_complex_weights_name_the_fix(layer):
    for name, call, shape in (("weights", layer.expand, (layer.dim,)),
                              ("filter_grad", layer.adjoint, layer.shape),
                              ("bias", layer.expand_bias, (layer.num_bias,))):
        with pytest.raises(ValueError, match=rf"{name} must be real .*{name}\.real"):
            call(np.ones(shape, np.complex128))


def test_integer_weights_exact_or_rejected(layer):
    """Integers (and bools) are converted to float64 when that is exact, else rejected."""
    w = np.arange(layer.dim) - 40
    np.testing.assert_array_equal(layer.expand(w), layer.expand(w.astype(np.float64)))
    for v in (2 ** 53 + 1, -(2 ** 63)):
        bad = np.zeros(layer.dim, np.int64)
        bad[5] = v
        with pytest.raises(ValueError, match=r"weights: integer values beyond 2\*\*53"):
            layer.expand(bad)
    with pytest.raises(ValueError, match="weights"):
        layer.expand(np.full(layer.dim, 2 ** 64 - 1, np.uint64))
    layer.expand(np.full(layer.dim, 2 ** 53, np.int64))  # still exact


@pytest.mark.parametrize("dtype", [np.longdouble, np.float16, object, "U3", "M8[s]"])
def test_unsupported_float_dtypes_name_the_cast(layer, dtype):
    with pytest.raises(ValueError, match=r"weights must be float32 or float64, got .*astype"):
        layer.expand(np.zeros(layer.dim, dtype))


def test_non_finite_message_points_at_the_entry(layer):
    for bad in (np.nan, np.inf, -np.inf):
        w = np.zeros((2, layer.dim))
        w[1, 7] = bad
        with pytest.raises(ValueError, match=rf"weights contains NaN or infinity \(at flat index "
                                             rf"{layer.dim + 7}\); the NumPy backend rejects"):
            layer.expand(w)
        g = np.zeros(layer.shape)
        g[0, 0, 1, 1] = bad
        with pytest.raises(ValueError, match="filter_grad contains NaN or infinity"):
            layer.adjoint(g)


@pytest.mark.parametrize("dtype", [">f8", ">f4"])
def test_non_native_byte_order_is_read_correctly(layer, dtype):
    native = np.dtype(dtype).newbyteorder("=")
    w = np.random.default_rng(0).standard_normal(layer.dim).astype(native)
    swapped = w.astype(dtype)
    assert not swapped.dtype.isnative
    np.testing.assert_array_equal(layer.expand(swapped), layer.expand(w))
    G = np.random.default_rng(1).standard_normal(layer.shape).astype(w.dtype)
    np.testing.assert_array_equal(layer.adjoint(G.astype(dtype)), layer.adjoint(G))


# ---- strides and flags: must work, never misread ----------------------------------------------

def _views(a: np.ndarray) -> dict:
    """Non-contiguous, negative-stride, read-only and broadcast views with the values of a."""
    rng = np.random.default_rng(2)
    big = np.empty((2,) + a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    big[...] = rng.standard_normal(big.shape)
    strided = big[1, ..., ::2]
    strided[...] = a
    rev = np.ascontiguousarray(a[..., ::-1])[..., ::-1]
    ro = a.copy()
    ro.setflags(write=False)
    fortran = np.asfortranarray(a)
    return {"strided": strided, "negative strides": rev, "read-only": ro, "fortran": fortran}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weight_views_give_identical_filters(layer, dtype):
    W = np.random.default_rng(3).standard_normal((3, layer.dim)).astype(dtype)
    ref = layer.expand(W)
    for name, v in _views(W).items():
        np.testing.assert_array_equal(layer.expand(v), ref, err_msg=name)
    # zero-stride broadcast (read-only view of one row)
    b = np.broadcast_to(W[1], (4, layer.dim))
    assert b.strides[0] == 0
    np.testing.assert_array_equal(layer.expand(b), layer.expand(np.ascontiguousarray(b)))
    # single read-only weight vector, and the input is never written to
    w = W[0].copy()
    w.setflags(write=False)
    before = w.copy()
    layer.expand(w)
    np.testing.assert_array_equal(w, before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_filter_grad_views_give_identical_gradients(layer, dtype):
    G = np.random.default_rng(4).standard_normal((2,) + layer.shape).astype(dtype)
    ref = layer.adjoint(G)
    for name, v in _views(G).items():
        np.testing.assert_array_equal(layer.adjoint(v), ref, err_msg=name)
    ro = G.copy()
    ro.setflags(write=False)
    layer.adjoint(ro)
    np.testing.assert_array_equal(ro, G)


def test_torch_non_contiguous_and_bad_dtypes(layer):
    torch = pytest.importorskip("torch")
    from cupysteer import torch as cst
    x = torch.randn(2 * layer.dim, dtype=torch.float64)[::2]
    assert not x.is_contiguous()
    assert torch.equal(cst.expand(layer, x), cst.expand(layer, x.contiguous()))
    g = torch.randn(layer.shape[::-1], dtype=torch.float64).permute(3, 2, 1, 0)
    assert not g.is_contiguous()
    assert torch.equal(cst.adjoint(layer, g), cst.adjoint(layer, g.contiguous()))
    for dt in (torch.int64, torch.complex64, torch.bool):
        with pytest.raises(TypeError, match="expected a floating tensor"):
            cst.expand(layer, torch.ones(layer.dim, dtype=dt))
    w = torch.zeros(layer.dim)
    w[2] = float("nan")
    with pytest.raises(ValueError, match="weights contains NaN"):  # CPU: the NumPy backend
        cst.expand(layer, w)


def test_jax_nan_propagates_and_complex_rejected(layer):
    jnp = pytest.importorskip("jax.numpy")
    from cupysteer import jax as csj
    w = jnp.zeros(layer.dim).at[2].set(jnp.nan)
    K = np.asarray(csj.expand(layer, w))  # pure jax.numpy: cannot raise under jit, propagates
    assert np.isnan(K).any() and not np.isnan(K).all()
    with pytest.raises(ValueError, match="weights contains NaN"):  # eager: the NumPy backend
        csj.expand_eager(layer, w)
    for fn, shape, name in ((csj.expand, (layer.dim,), "weights"),
                            (csj.adjoint, layer.shape, "filter_grad"),
                            (csj.expand_bias, (layer.num_bias,), "bias")):
        with pytest.raises(ValueError, match=rf"{name} must be real"):
            fn(layer, jnp.ones(shape, jnp.complex64))


# ---- field types, representations, settings ----------------------------------------------------

@pytest.mark.parametrize("groups", [
    (cs.CyclicGroup(4), cs.CyclicGroup(8)),
    (cs.DihedralGroup(4), cs.DihedralGroup(4, axis=0.0)),
    (cs.CyclicGroup(4), cs.DihedralGroup(4)),
    (cs.SO2(3), cs.O2(3)),
    (cs.FlipGroup(0.0), cs.FlipGroup(math.pi / 2))])
def test_field_types_of_different_groups(groups):
    A, B = groups
    with pytest.raises(ValueError, match="in_type and out_type must share one group"):
        cs.LayerBasis(cs.FieldType(A, [A.trivial_representation]),
                      cs.FieldType(B, [B.trivial_representation]), 3)


def test_e2cnn_field_types_of_different_gspaces():
    from cupysteer.compat import e2cnn as e
    a, b = e.Rot2dOnR2(4), e.FlipRot2dOnR2(4)
    with pytest.raises(ValueError, match="share one group"):
        e.R2ConvBasis(e.FieldType(a, [a.regular_repr]), e.FieldType(b, [b.regular_repr]), 3)


def test_two_representations_sharing_a_name():
    G = cs.CyclicGroup(4)
    Q = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    r1 = cs.Representation(G, [G.irrep(0), G.irrep(1)], name="mine")
    r2 = cs.Representation(G, [G.irrep(0), G.irrep(1)], Q, name="mine")
    t = cs.FieldType(G, [G.regular_representation])
    with pytest.raises(ValueError, match="in_type: two different representations share the "
                                         "name 'mine'; give them distinct names"):
        cs.LayerBasis(cs.FieldType(G, [r1, r2]), t, 3)


def test_complex_or_non_numeric_change_of_basis():
    G = cs.CyclicGroup(4)
    irr = [G.irrep(0), G.irrep(1)]
    for Q in (np.eye(3, dtype=complex), np.eye(3) + 1e-3j):
        with pytest.raises(ValueError, match=r"change_of_basis must be a real orthogonal matrix"
                                             r".*\.real"):
            cs.Representation(G, irr, Q)
        with pytest.raises(ValueError, match="change_of_basis must be a real"):
            cs.directsum([G.irrep(0), G.irrep(1)], change_of_basis=Q)
    with pytest.raises(ValueError, match="change_of_basis must be a real orthogonal matrix"):
        cs.Representation(G, irr, "not a matrix")
    # integer orthogonal matrices are fine (exact in float64)
    assert cs.Representation(G, irr, np.eye(3, dtype=int)).is_identity_basis


@pytest.mark.parametrize("kw, match", [
    (dict(kernel_size=3, dilation=-1), "dilation must be an integer >= 1"),
    (dict(kernel_size=3, dilation=True), "dilation must be an integer >= 1"),
    (dict(kernel_size="3"), "kernel_size must be an integer >= 1"),
    (dict(kernel_size=np.float64(3.0)), "kernel_size must be an integer >= 1"),
    (dict(kernel_size=3, sigma=float("nan")), "sigma must be positive"),
    (dict(kernel_size=3, sigma=[0.5, float("inf")]), "sigma must be positive"),
    (dict(kernel_size=3, sigma=[0.5, 0.0]), "sigma must be positive"),
    (dict(kernel_size=3, rings=[[0.0, 1.0]]), "rings must be a non-empty list"),
    (dict(kernel_size=1, rings=[0.0, 0.5]), "rings: radius 0.5 lies beyond"),
    (dict(kernel_size=3, frequencies_cutoff=lambda r: float("nan")),
     "frequencies_cutoff: the cut-off of the ring at radius 0 is nan"),
    (dict(kernel_size=3, frequencies_cutoff=lambda r: math.inf), "must be a finite frequency"),
    (dict(kernel_size=3, frequencies_cutoff=lambda r: "2"), "must be a finite frequency"),
])
def test_bad_settings_name_the_argument(kw, match):
    G = cs.CyclicGroup(4)
    t = cs.FieldType(G, [G.regular_representation])
    with pytest.raises(ValueError, match=match):
        cs.LayerBasis(t, t, **kw)


def test_even_and_odd_kernel_sizes():
    """k = 1 is the origin only, k = 2 has no point at the origin: with the default ring at
    radius 0 its basis is empty, and the error names kernel_size, the rings and the fix; with a
    ring through the points (or k = 4) it is fine. numpy integers are accepted."""
    G = cs.CyclicGroup(4)
    t = cs.FieldType(G, [G.regular_representation])
    assert cs.LayerBasis(t, t, 1).filter_shape == (1, 1)
    with pytest.raises(cs.EmptyBasisError, match=r"kernel_size \(2, 2\), rings \(0.0,\).*"
                                                 r"increase frequencies_cutoff"):
        cs.LayerBasis(t, t, 2)
    assert cs.LayerBasis(t, t, 2, rings=[0.7], frequencies_cutoff=3.0).dim > 0
    assert cs.LayerBasis(t, t, np.int64(4)).dim == cs.LayerBasis(t, t, 4).dim > 0
    assert cs.LayerBasis(t, t, 1, dilation=5).dim == cs.LayerBasis(t, t, 1).dim


def test_launch_refuses_fields_too_large_for_shared_memory():
    G = group("C4")
    L = cs.LayerBasis(ft(G, G.regular_representation), ft(G, G.regular_representation), 3)
    with pytest.raises(ValueError, match="bytes of shared memory per point.*use float32 or "
                                         "smaller fields"):
        launch_config(pack_plans([L.plan]), "forward", 1, 8, shared_limit=200)


# ---- absurd sizes: MemoryError before allocation, naming the size --------------------------------

def test_expand_larger_than_available_memory(layer, monkeypatch):
    """Auto limit (the memory available now): a batch of C8 filters needing several times the
    available memory (80 GB here) is refused before anything is allocated; the zero-stride
    weights cost nothing."""
    avail = _memory._available()
    if avail is None:
        pytest.skip("this platform does not report its available memory")
    G = cs.CyclicGroup(8)
    t = cs.FieldType(G, [G.regular_representation] * 4)
    L = cs.LayerBasis(t, t, 7)
    batch = max(100_000, 4 * avail // (2 * 32 * 32 * 49 * 8))
    w = np.broadcast_to(np.ones(L.dim), (batch, L.dim))
    calls = []
    real_empty = np.empty
    monkeypatch.setattr(np, "empty", lambda *a, **k: calls.append(a) or real_empty(*a, **k))
    with pytest.raises(MemoryError, match=rf"expand: a float64 filter of shape \({batch}, 32, 32, "
                                          r"7, 7\).*needs .* GiB \(\d+ bytes\), more than the "
                                          r"memory available"):
        L.expand(w)
    assert not any(np.prod(a[0]) > 10 ** 6 for a in calls if a and isinstance(a[0], tuple))


def test_memory_limit_environment(layer, monkeypatch):
    monkeypatch.setenv(_memory.ENV, "100K")
    W = np.ones((200, layer.dim))
    with pytest.raises(MemoryError, match=r"expand: .*\(200, 10, 9, 3, 3\).*more than the limit "
                                          r"CUPYSTEER_MEMORY_LIMIT=100K"):
        layer.expand(W)
    with pytest.raises(MemoryError, match=r"adjoint: the workspace .*\(200, 10, 9, 3, 3\)"):
        layer.adjoint(np.ones((200,) + layer.shape))
    layer.expand(W[:5])  # 5 filters (and their workspace) fit
    monkeypatch.setenv(_memory.ENV, "2K")
    with pytest.raises(MemoryError, match=r"dense: the padded basis of shape \(90, 10, 9, 3, 3\)"):
        layer.dense()
    with pytest.raises(MemoryError, match=r"padded_blocks: the padded basis"):
        layer.padded_blocks()
    monkeypatch.setenv(_memory.ENV, "off")
    assert layer.expand(W).shape == (200,) + layer.shape
    assert layer.dense().shape == (layer.dim,) + layer.shape
    monkeypatch.setenv(_memory.ENV, "lots")
    with pytest.raises(ValueError, match="CUPYSTEER_MEMORY_LIMIT must be a byte count"):
        layer.expand(W[:1])


@pytest.mark.parametrize("parse", [("1.5G", 3 << 29), ("512M", 512 << 20), ("4096", 4096),
                                   ("2 GiB", 2 << 30), ("auto", -1), ("OFF", None)])
def test_memory_limit_parsing(parse):
    assert _memory._parse(parse[0]) == parse[1]


def test_absurd_frequency_cutoff_fails_fast():
    """Before: a cut-off of 1e9 made C4's alias enumeration build billions of harmonics (a hang
    of minutes and tens of GB). Now: MemoryError with the size, in milliseconds."""
    G = cs.CyclicGroup(4)
    t = cs.FieldType(G, [G.regular_representation])
    with pytest.raises(MemoryError, match=r"sampling the basis of irrep_0 → irrep_0 \(about "
                                          r"\d+ angular harmonics .*\) needs .* TiB"):
        cs.LayerBasis(t, t, 5, frequencies_cutoff=1e9, cache=False)
    # bounded by maximum_offset, the same cut-off is fine
    assert cs.LayerBasis(t, t, 5, frequencies_cutoff=1e9, maximum_offset=1, cache=False).dim > 0


def test_cli_reports_absurd_sizes_in_one_line(capsys):
    from cupysteer.cli import main
    rc = main(["info", "--group", "C8", "--in", "regular", "--out", "regular", "--size", "5",
               "--cutoff", "1e9"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err
    assert err.startswith("cupysteer info: error: sampling the basis of") and "TiB" in err


def test_absurd_kernel_size_fails_before_sampling(monkeypatch):
    monkeypatch.setenv(_memory.ENV, "1G")
    G = cs.CyclicGroup(4)
    t = cs.FieldType(G, [G.regular_representation])
    with pytest.raises(MemoryError, match=r"sampling the basis .* on 1002001 points\) needs"):
        cs.LayerBasis(t, t, 1001, cache=False)


# ---- the CuPy path, with a stand-in cupy module --------------------------------------------------

class _DevArray(np.ndarray):
    """A NumPy array posing as a CuPy array on device ``_device``."""

    __module__ = "cupy"  # what LayerBasis looks at to route an array to the CUDA backend
    _device = 0

    @property
    def device(self):
        return types.SimpleNamespace(id=self._device)


class _OtherDevArray(_DevArray):
    _device = 1


def _fake_cupy(free=1 << 40, total=1 << 41, module=None):
    """``cupy`` whose allocations are recorded and whose device has ``free`` bytes free."""
    allocs = []

    def wrap(a):
        return np.asarray(a).view(_DevArray)

    def alloc(fill):
        def f(shape, dtype=np.float64):
            allocs.append((shape, np.dtype(dtype)))
            return wrap(np.full(shape, fill, dtype))
        return f

    fake = types.SimpleNamespace(
        ndarray=_DevArray, float16=np.float16, uint16=np.uint16, float32=np.float32,
        asarray=lambda a, dtype=None: wrap(np.array(a, dtype)),
        empty=alloc(np.nan), zeros=alloc(0),
        ascontiguousarray=lambda a: wrap(np.ascontiguousarray(a)),
        get_default_memory_pool=lambda: types.SimpleNamespace(free_bytes=lambda: 0),
        cuda=types.SimpleNamespace(
            Device=lambda *a: types.SimpleNamespace(id=0, mem_info=(free, total)),
            get_current_stream=lambda: types.SimpleNamespace(synchronize=lambda: None)),
        RawModule=module or (lambda **kw: pytest.fail("no kernel may be built here")),
        allocs=allocs)
    return fake


@pytest.mark.parametrize("dtype", [np.int64, np.complex64, np.float16, bool])
def test_cupy_path_rejects_non_float_dtypes(layer, dtype):
    """No silent cast on the device; the error names the argument (checked before CuPy is
    imported, so it runs without a GPU)."""
    with pytest.raises(ValueError, match="weights must be float32 or float64 for the CUDA "
                                         "kernels"):
        layer.expand(np.zeros(layer.dim, dtype).view(_DevArray))
    with pytest.raises(ValueError, match="filter_grad must be float32 or float64 for the CUDA"):
        layer.adjoint(np.zeros(layer.shape, dtype).view(_DevArray))


def test_cupy_path_device_and_shape_checks(layer, monkeypatch):
    monkeypatch.setattr(cb, "import_cupy", lambda: _fake_cupy())
    ex = cb.CupyExpander(layer.plan, np.float32)
    with pytest.raises(ValueError, match=r"weights lives on device 1 but the current device is 0;"
                                         r" use `with cupy.cuda.Device\(1\):`"):
        ex.expand(np.zeros(layer.dim, np.float32).view(_OtherDevArray))
    with pytest.raises(ValueError, match=r"weights must have shape \(90,\) or \(batch, \*\(90,\)"
                                         r"\), got \(2, 3, 90\)"):
        ex.expand(np.zeros((2, 3, layer.dim), np.float32).view(_DevArray))


def test_cupy_filter_larger_than_free_device_memory(monkeypatch):
    """The filter (and the plan upload) are checked against free device memory before any
    device allocation; the message names the sizes and the device."""
    G = cs.CyclicGroup(8)
    t = cs.FieldType(G, [G.regular_representation] * 4)
    L = cs.LayerBasis(t, t, 7)
    fake = _fake_cupy(free=100 << 20, total=16 << 30)
    monkeypatch.setattr(cb, "import_cupy", lambda: fake)
    ex = cb.CupyExpander(L.plan, np.float32)
    W = np.broadcast_to(np.zeros(L.dim, np.float32), (2000, L.dim)).view(_DevArray)
    with pytest.raises(MemoryError, match=r"expand: 2000 filter\(s\) of 50176 entries needs "
                                          r"382.8 MiB \(401408000 bytes\) on CUDA device 0, "
                                          r"which has 100.0 MiB free of 16.0 GiB"):
        ex.expand(W)
    assert fake.allocs == []
    # an explicit CUPYSTEER_MEMORY_LIMIT caps device allocations too: the plan upload
    pad = cb.CupyExpander(L.plan, np.float32, "padded", [L.padded_blocks(np.float32)])
    monkeypatch.setenv(_memory.ENV, "1K")
    with pytest.raises(MemoryError, match=r"uploading the expansion plan \(padded\) needs .* "
                                          r"more than the limit CUPYSTEER_MEMORY_LIMIT=1K"):
        pad._tables()


@needs_gxx
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_kernels_propagate_non_finite_values(dtype, bad):
    """The CUDA kernels never check values: a NaN/Inf weight (or gradient entry) reaches
    exactly the outputs of its own field pair (through Q) and nothing else, without a crash;
    every other entry is bit-identical to the result with that entry set to 0."""
    Ls = network()
    ex = H.CpuExpander([L.plan for L in Ls], dtype)
    p = ex.packed
    fp = p.fieldpairs[1]  # first layer, output field 0 × input field 1
    o0, so, i0, si, b0, b1, Ci, P, wbase = (int(fp[k]) for k in (0, 1, 3, 4, 6, 7, 9, 10, 11))
    n = int(p.blocks[b1 - 1, 6] + p.blocks[b1 - 1, 4] - p.blocks[b0, 6])
    assert b1 > b0 and n > 1
    region = np.zeros((p.filter_size,), bool)  # the field pair's outputs
    region[:Ls[0].plan.out_size * Ci * P].reshape(-1, Ci, P)[o0:o0 + so, i0:i0 + si] = True
    weights = np.zeros(p.dim, bool)  # the field pair's weights
    weights[wbase:wbase + n] = True

    rng = np.random.default_rng(5)
    W = rng.standard_normal((2, p.dim)).astype(dtype)
    W[1, wbase + 1] = 0
    ref = ex.expand(W)
    bad_W = W.copy()
    bad_W[1, wbase + 1] = bad
    out = ex.expand(bad_W)
    np.testing.assert_array_equal(out[0], ref[0])                 # the other batch item
    assert not np.isfinite(out[1, region]).any()                   # propagated ...
    np.testing.assert_array_equal(out[1, ~region], ref[1, ~region])  # ... and nowhere else

    Gr = rng.standard_normal((2, p.filter_size)).astype(dtype)
    entry = int(np.flatnonzero(region)[5])
    Gr[1, entry] = 0
    gref = ex.adjoint(Gr)
    Gb = Gr.copy()
    Gb[1, entry] = bad
    gw = ex.adjoint(Gb)
    np.testing.assert_array_equal(gw[0], gref[0])
    assert not np.isfinite(gw[1, weights]).any()
    np.testing.assert_array_equal(gw[1, ~weights], gref[1, ~weights])


@needs_gxx
def test_cupy_path_end_to_end_propagates_nan(monkeypatch):
    """LayerBasis.expand with a (stand-in) CuPy array runs CupyExpander and the kernels: NaN
    weights give NaN filters (documented: no check on the device), and non-contiguous weights
    are made contiguous before the launch (never misread)."""
    fake = _fake_cupy(module=lambda code, options, name_expressions: H.EmulatedModule(
        code, options, name_expressions))
    monkeypatch.setattr(cb, "import_cupy", lambda: fake)
    monkeypatch.setattr(cb, "_MODULES", {})
    G = group("C4")
    L = cs.LayerBasis(ft(G, G.regular_representation, irrep(G, 1)),
                      ft(G, irrep(G, 1), G.regular_representation), 3, cache=False)
    W = np.random.default_rng(6).standard_normal((2, 2 * L.dim))
    view = W[:, ::2].view(_DevArray)
    assert not view.flags.c_contiguous
    K = L.expand(view)
    assert K.shape == (2,) + L.shape
    np.testing.assert_allclose(np.asarray(K).reshape(2, -1), reference_forward([L], W[:, ::2]),
                               rtol=0, atol=1e-12)
    bad = np.ascontiguousarray(W[:, ::2])
    bad[0, 0] = np.nan
    K = np.asarray(L.expand(bad.view(_DevArray)))
    assert np.isnan(K[0]).any() and np.isfinite(K[1]).all()
