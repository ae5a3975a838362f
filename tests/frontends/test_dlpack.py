"""cupysteer.dlpack: framework detection, zero-copy conversions (sharing checked by mutating
one side), the documented copy reasons, device checks and expansion in the caller's framework.
"""
import importlib
import subprocess
import sys

import numpy as np
import pytest

import cupysteer as cs
from cupysteer import dlpack as dl


@pytest.fixture(scope="module")
def basis():
    G = cs.DihedralGroup(4)
    tin = cs.FieldType(G, [G.regular_representation, G.irrep(1, 1).representation])
    tout = cs.FieldType(G, [G.trivial_representation, G.regular_representation])
    return cs.LayerBasis(tin, tout, 3)


def _torch():
    return pytest.importorskip("torch")


def _jnp():
    pytest.importorskip("jax")
    import jax.numpy as jnp
    return jnp


class FakeDevice:
    """A DLPack producer on another device (there is no GPU here)."""

    def __init__(self, dev=(2, 0)):
        self.dev = dev

    def __dlpack_device__(self):
        return self.dev

    def __dlpack__(self, **kwargs):  # pragma: no cover - never consumed
        raise BufferError("fake")


def aligned(n, dtype=np.float32):
    """A 64-byte aligned array (JAX shares only such buffers)."""
    a = dl._aligned_copy(np.arange(n, dtype=dtype))
    assert a.ctypes.data % 64 == 0
    return a


# ---- import hygiene and detection --------------------------------------------------------------

def test_core_imports_no_framework():
    code = ("import sys, numpy as np, cupysteer as cs; from cupysteer import dlpack\n"
            "G = cs.CyclicGroup(2); t = cs.FieldType(G, [G.regular_representation])\n"
            "b = cs.LayerBasis(t, t, 3); dlpack.expand(b, np.ones(b.dim, np.float32))\n"
            "assert dlpack.framework(np.zeros(2)) == 'numpy'\n"
            "bad = sorted(m for m in ('torch', 'jax', 'jaxlib', 'cupy') if m in sys.modules)\n"
            "assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("adapter,hidden", [("torch", ["torch"]),
                                            ("jax", ["jax", "jax.numpy"])])
def test_missing_framework_names_the_extra(monkeypatch, adapter, hidden):
    """Without the framework, importing the adapter says which extra to install."""
    for name in hidden:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, f"cupysteer.{adapter}", raising=False)
    with pytest.raises(ImportError, match=rf'pip install -e "\.\[{adapter}\]"'):
        importlib.import_module(f"cupysteer.{adapter}")


@pytest.mark.parametrize("with_compat", [True, False])
def test_framework_detection(monkeypatch, with_compat):
    if not with_compat:  # fall back to the type's module names
        monkeypatch.setitem(sys.modules, "array_api_compat", None)
    assert dl.framework(np.zeros(3)) == "numpy"
    assert dl.framework(np.float32(1)) == "numpy"
    assert dl.framework(FakeDevice()) == "dlpack"
    with pytest.raises(TypeError, match="__dlpack__"):
        dl.framework([1.0, 2.0])
    torch = pytest.importorskip("torch")
    jnp = _jnp()
    assert dl.framework(torch.zeros(2)) == "torch"
    assert dl.framework(torch.nn.Parameter(torch.zeros(2))) == "torch"
    assert dl.framework(jnp.zeros(2)) == "jax"


def test_array_namespace_rejects_mixed_frameworks():
    torch = _torch()
    with pytest.raises(TypeError):
        dl.array_namespace(np.zeros(2), torch.zeros(2))


def test_device_and_mixed_devices():
    assert str(dl.device(np.zeros(2))) == "cpu"
    assert str(dl.device(FakeDevice((2, 1)))) == "cuda:1"
    assert dl.same_device(np.zeros(2), None, np.ones(1)).is_cpu
    with pytest.raises(ValueError, match=r"weights is on cpu but bias is on cuda:0"):
        dl.same_device(np.zeros(2), FakeDevice(), names=["weights", "bias"])


def test_expand_refuses_mixed_devices(basis):
    with pytest.raises(ValueError, match=r"cpu.*cuda:0"):
        dl.expand(basis, np.zeros(basis.dim, np.float32), bias=FakeDevice())


def test_gpu_array_without_cupy(monkeypatch, basis):
    monkeypatch.setitem(sys.modules, "cupy", None)
    with pytest.raises(RuntimeError, match="CuPy"):
        dl.expand(basis, FakeDevice())


# ---- numpy ↔ torch ----------------------------------------------------------------------------

def test_numpy_torch_round_trip_shares_memory():
    torch = _torch()
    a = np.arange(6, dtype=np.float32)
    t = dl.from_numpy(a, like=torch.zeros(1))
    assert dl.why_copy(a, "torch") is None
    t[0] = 100
    assert a[0] == 100
    back = dl.to_numpy(t)
    back[1] = -1
    assert t[1].item() == -1 and a[1] == -1
    # strided numpy arrays are shared too
    s = np.arange(12.0).reshape(3, 4)[:, ::2]
    ts = dl.from_numpy(s, like=torch.zeros(1))
    ts[0, 1] = 7
    assert s[0, 1] == 7


def test_torch_to_numpy_detaches_and_shares():
    torch = _torch()
    p = torch.nn.Parameter(torch.ones(3))
    a = dl.to_numpy(p)
    with torch.no_grad():
        p[0] = 5
    assert a[0] == 5
    assert dl.to_numpy(p, copy=True).ctypes.data != a.ctypes.data


def test_read_only_numpy_is_copied_for_torch():
    torch = _torch()
    a = np.arange(4, dtype=np.float32)
    a.setflags(write=False)
    assert "read-only" in dl.why_copy(a, "torch")
    t = dl.from_numpy(a, like=torch.zeros(1))
    t[0] = 9                          # torch.from_dlpack would have written into `a`
    assert a[0] == 0
    with pytest.raises(BufferError, match="read-only"):
        dl.from_numpy(a, like=torch.zeros(1), copy=False)


def test_negative_strides_are_copied_for_torch():
    torch = _torch()
    a = np.arange(6.0)[::-1]          # torch.from_dlpack(a) would abort the interpreter
    assert "negative strides" in dl.why_copy(a, "torch")
    t = dl.from_numpy(a, like=torch.zeros(1))
    assert t.tolist() == a.tolist()
    with pytest.raises(BufferError, match="negative strides"):
        dl.from_numpy(a, like=torch.zeros(1), copy=False)


def test_byte_order_and_torch_special_tensors():
    torch = _torch()
    a = np.arange(3, dtype=">f4")
    assert "byte order" in dl.why_copy(a, "torch")
    assert dl.from_numpy(a, like=torch.zeros(1)).tolist() == [0.0, 1.0, 2.0]
    bf = torch.ones(3, dtype=torch.bfloat16)
    assert "bfloat16" in dl.why_copy(bf)
    assert dl.to_numpy(bf).dtype == np.float32
    neg = torch.ones(3)._neg_view()
    assert "negative bit" in dl.why_copy(neg)
    assert dl.to_numpy(neg).tolist() == [-1.0, -1.0, -1.0]
    with pytest.raises(BufferError, match="bfloat16"):
        dl.to_numpy(bf, copy=False)


# ---- numpy ↔ jax ↔ torch ----------------------------------------------------------------------

def test_numpy_jax_round_trip_shares_memory():
    jnp = _jnp()
    a = aligned(8)
    assert dl.why_copy(a, "jax") is None
    j = dl.from_numpy(a, like=jnp.zeros(1))
    a[3] = 42                          # JAX imported the buffer: it sees the write
    assert float(j[3]) == 42
    back = dl.to_numpy(j)              # zero-copy and read-only, like JAX's buffers
    assert back.ctypes.data == a.ctypes.data and not back.flags.writeable


def test_jax_copies_with_reasons():
    jnp = _jnp()
    like = jnp.zeros(1)
    a = aligned(9)
    unaligned = a[1:]
    assert "64-byte" in dl.why_copy(unaligned, "jax")
    ro = aligned(4)
    ro.setflags(write=False)
    assert "read-only" in dl.why_copy(ro, "jax")
    assert "non-compact" in dl.why_copy(np.arange(12.0, dtype=np.float32)[::2], "jax")
    assert "negative" in dl.why_copy(a[::-1], "jax")
    assert "float64" in dl.why_copy(np.zeros(3), "jax")   # x64 off by default
    for x in (unaligned, ro, a[::-2], np.arange(12.0, dtype=np.float32)[::2]):
        j = dl.from_numpy(x, like=like)
        np.testing.assert_array_equal(np.asarray(j), x)
        x_w = np.array(x)
        x_w[0] += 1                       # a copy: j keeps the old values
        assert float(j[0]) == float(x[0])
    assert dl.from_numpy(np.zeros(3), like=like).dtype == np.float32
    with pytest.raises(BufferError, match="read-only"):
        dl.from_numpy(ro, like=like, copy=False)
    # the copy made for JAX is aligned, so JAX shares it instead of copying twice
    j = dl.from_numpy(unaligned, like=like)
    assert j.unsafe_buffer_pointer() % 64 == 0


def test_torch_jax_round_trip():
    torch = _torch()
    jnp = _jnp()
    t = torch.arange(8, dtype=torch.float32)
    j = dl.from_numpy(dl.to_numpy(t), like=jnp.zeros(1))
    assert j.unsafe_buffer_pointer() == t.data_ptr()
    t[2] = 50
    assert float(j[2]) == 50
    # JAX buffers are immutable (exported read-only): torch gets a copy, with the reason
    assert "read-only" in dl.why_copy(j, "torch")
    t2 = dl.from_numpy(dl.to_numpy(j), like=torch.zeros(1))
    assert t2.data_ptr() != t.data_ptr() and t2.tolist() == t.tolist()
    t2[0] = -3
    assert float(j[0]) == 0


# ---- expansion in the caller's framework ---------------------------------------------------------

def test_expand_numpy(basis):
    w = basis.init_weights(np.random.default_rng(0))
    np.testing.assert_array_equal(dl.expand(basis, w), basis.expand(w))
    G = np.random.default_rng(1).standard_normal(basis.shape)
    np.testing.assert_allclose(dl.adjoint(basis, G), basis.adjoint(G))
    f, b = dl.expand(basis, w, bias=np.ones(basis.num_bias, np.float32))
    np.testing.assert_allclose(b, basis.expand_bias(np.ones(basis.num_bias, np.float32)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_expand_torch(basis, dtype):
    torch = _torch()
    w = basis.init_weights(np.random.default_rng(0), np.dtype(dtype))
    wt = torch.from_numpy(w.copy()).requires_grad_()
    f = dl.expand(basis, wt)
    assert isinstance(f, torch.Tensor) and f.dtype == wt.dtype
    np.testing.assert_array_equal(f.numpy(), basis.expand(w))
    G = torch.randn(basis.shape, dtype=wt.dtype)
    np.testing.assert_allclose(dl.adjoint(basis, G).numpy(), basis.adjoint(G.numpy()),
                               rtol=1e-6)
    bt = torch.ones(basis.num_bias, dtype=wt.dtype)
    _, eb = dl.expand(basis, wt, bias=bt)
    assert isinstance(eb, torch.Tensor) and eb.shape == (basis.out_type.size,)
    with pytest.raises(TypeError, match="one framework"):
        dl.expand(basis, wt, bias=np.ones(basis.num_bias))


def test_expand_jax(basis):
    jnp = _jnp()
    w = basis.init_weights(np.random.default_rng(0))
    f = dl.expand(basis, jnp.asarray(w))
    assert dl.framework(f) == "jax" and f.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(f), basis.expand(w))


@pytest.mark.gpu
def test_expand_torch_cuda(basis):
    torch = _torch()
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    pytest.importorskip("cupy")
    w = basis.init_weights(np.random.default_rng(0))
    f = dl.expand(basis, torch.from_numpy(w).cuda())
    assert f.is_cuda
    np.testing.assert_allclose(f.cpu().numpy(), basis.expand(w), atol=1e-6)


# ---- issue 16: byte order and empty batches ------------------------------------------------
@pytest.mark.parametrize("dtype", [">f8", ">f4", "<f8", ">i4", ">u2"])
def test_expand_accepts_any_byte_order(basis, dtype):
    w = (np.arange(basis.dim) % 7).astype(dtype)
    native = w.astype(np.dtype(dtype).newbyteorder("="))
    f = dl.expand(basis, w)
    expected = basis.expand(_native_float(native))
    np.testing.assert_array_equal(f, expected)
    g = dl.adjoint(basis, np.ones(basis.shape, ">f8"))
    np.testing.assert_array_equal(g, basis.adjoint(np.ones(basis.shape)))
    b = dl.expand_bias(basis, np.ones(basis.num_bias, ">f4"))
    np.testing.assert_array_equal(b, basis.expand_bias(np.ones(basis.num_bias, np.float32)))


def _native_float(a):
    return a if a.dtype.kind == "f" else a.astype(np.float32)


@pytest.mark.parametrize("framework", ["numpy", "torch", "jax"])
def test_empty_batches_give_empty_results(basis, framework):
    make = {"numpy": lambda s: np.zeros(s, np.float32),
            "torch": lambda s: _torch().zeros(s),
            "jax": lambda s: _jnp().zeros(s)}[framework]
    cases = [(dl.expand, (0, basis.dim), (0,) + basis.shape),
             (dl.adjoint, (0,) + basis.shape, (0, basis.dim)),
             (dl.expand_bias, (0, basis.num_bias), (0, basis.shape[0]))]
    for fn, shape, result in cases:
        out = fn(basis, make(shape))
        assert dl.framework(out) == framework and tuple(out.shape) == result
    f, b = dl.expand(basis, make((0, basis.dim)), make((0, basis.num_bias)))
    assert tuple(f.shape) == (0,) + basis.shape and tuple(b.shape) == (0, basis.shape[0])


@pytest.mark.parametrize("shape", [(0,), (0, 5), (2, 0), (0, 0)])
def test_empty_arrays_of_the_wrong_shape_are_still_refused(basis, shape):
    with pytest.raises(ValueError, match="weights"):
        dl.expand(basis, np.zeros(shape, np.float32))


@pytest.mark.parametrize("dtype", [np.complex64, "U3", object])
def test_non_float_dtypes_name_the_argument(basis, dtype):
    with pytest.raises((ValueError, TypeError), match="weights"):
        dl.expand(basis, np.zeros(basis.dim, dtype))
