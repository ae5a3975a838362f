"""Framework-free interop through DLPack: NumPy, CuPy, PyTorch and JAX arrays in, the same
framework out, zero-copy wherever the memory allows.

Nothing here imports a framework at module import time: the framework of an array is read
from its type (``array-api-compat`` when installed, else the modules of its type's MRO), and
a framework is imported only to build an array *of that framework*, which implies the caller
already has it loaded.

>>> import numpy as np, cupysteer as cs
>>> from cupysteer import dlpack
>>> G = cs.CyclicGroup(4)
>>> t = cs.FieldType(G, [G.regular_representation])
>>> basis = cs.LayerBasis(t, t, 3)
>>> dlpack.expand(basis, np.ones(basis.dim, np.float32)).shape     # torch/jax/cupy in → same out
(4, 4, 3, 3)

Copies. ``to_numpy`` / ``from_numpy`` share memory when they can; otherwise they copy and
:func:`why_copy` names the reason (also logged at DEBUG level on the ``cupysteer.dlpack``
logger). With ``copy=False`` a needed copy raises :class:`BufferError` carrying that reason.
The reasons are the measured sharp edges of DLPack on CPU:

* read-only NumPy arrays: ``torch.from_dlpack`` would return a *writable* tensor aliasing them
  and JAX refuses them (legacy capsule), so they are copied;
* negative strides: ``torch.from_dlpack`` aborts the interpreter on them, JAX refuses them;
  they are copied (``np.ascontiguousarray``) before any framework sees them;
* non-compact strides (``x[:, ::2]``): JAX only imports compact buffers, so they are copied
  (torch shares strided buffers);
* JAX shares a NumPy buffer only when it is 64-byte aligned, and turns float64 into float32
  when ``jax_enable_x64`` is off; both are copies JAX makes itself;
* non-native byte order, torch conjugate/negative views, bfloat16 (no NumPy dtype): copied;
* another device (e.g. CUDA → NumPy): copied only when ``copy`` is not ``False``.

Devices. Arrays given together must live on one device; otherwise :func:`same_device`
raises ``ValueError`` naming both devices. CPU arrays are expanded by the NumPy backend;
arrays on a CUDA device go to CuPy (``cupy.from_dlpack``, which hands the consumer's current
stream to the producer; torch tensors run on torch's current stream) and need the CuPy backend.
"""
from __future__ import annotations

import logging
import sys
from typing import NamedTuple

import numpy as np

__all__ = ["Device", "framework", "array_namespace", "device", "same_device", "why_copy",
           "to_numpy", "from_numpy", "expand", "adjoint", "expand_bias"]

log = logging.getLogger("cupysteer.dlpack")

# DLPack DLDeviceType codes (dlpack.h)
_DEVICE_TYPES = {1: "cpu", 2: "cuda", 3: "cuda_host", 4: "opencl", 7: "vulkan", 8: "metal",
                 9: "vpi", 10: "rocm", 11: "rocm_host", 12: "ext_dev", 13: "cuda_managed",
                 14: "oneapi", 15: "webgpu", 16: "hexagon", 17: "maia"}
_CPU = 1
_JAX_ALIGNMENT = 64

# ---- detection --------------------------------------------------------------------------

_MODULE_FRAMEWORK = {"numpy": "numpy", "torch": "torch", "jax": "jax", "jaxlib": "jax",
                     "cupy": "cupy"}


def _framework_by_type(x) -> str | None:
    for cls in type(x).__mro__:
        top = (cls.__module__ or "").split(".")[0]
        if top in _MODULE_FRAMEWORK:
            return _MODULE_FRAMEWORK[top]
    return None


def framework(x) -> str:
    """``'numpy'``, ``'cupy'``, ``'torch'``, ``'jax'`` or ``'dlpack'`` (another object with
    ``__dlpack__``). Raises ``TypeError`` for anything else. Imports no framework."""
    try:
        import array_api_compat as aac
    except ImportError:
        aac = None
    if aac is not None:
        for name, test in (("numpy", aac.is_numpy_array), ("torch", aac.is_torch_array),
                           ("jax", aac.is_jax_array), ("cupy", aac.is_cupy_array)):
            if test(x):
                return name
    else:
        name = _framework_by_type(x)
        if name is not None:
            return name
    if isinstance(x, np.generic):
        return "numpy"
    if hasattr(x, "__dlpack__") and hasattr(x, "__dlpack_device__"):
        return "dlpack"
    raise TypeError(f"expected an array implementing __dlpack__ (NumPy, CuPy, torch, JAX), got "
                    f"{type(x).__module__}.{type(x).__qualname__}")


def array_namespace(*xs):
    """The array-API namespace of ``xs`` (``array_api_compat.array_namespace`` when installed;
    otherwise the framework's module, which must then already be imported). Mixing
    frameworks raises ``TypeError``."""
    try:
        from array_api_compat import array_namespace as ns
    except ImportError:
        names = {framework(x) for x in xs}
        if len(names) != 1:
            raise TypeError(f"arrays from several frameworks: {sorted(names)}")
        name = names.pop()
        if name == "dlpack":
            raise TypeError("no array namespace for a bare DLPack producer; install "
                            "array-api-compat")
        return sys.modules["jax.numpy" if name == "jax" else name] if name != "numpy" else np
    return ns(*xs)


class Device(NamedTuple):
    """A DLPack device: ``type`` (DLDeviceType code) and ``id``."""

    type: int
    id: int

    @property
    def name(self) -> str:
        return _DEVICE_TYPES.get(self.type, f"dldevice{self.type}")

    @property
    def is_cpu(self) -> bool:
        return self.type == _CPU

    def __str__(self):
        return self.name if self.is_cpu else f"{self.name}:{self.id}"


def device(x) -> Device:
    """The DLPack device of ``x`` (NumPy scalars and Python numbers: CPU)."""
    if isinstance(x, (np.ndarray, np.generic, int, float)):
        return Device(_CPU, 0)
    try:
        t, i = x.__dlpack_device__()
    except AttributeError:
        raise TypeError(f"{type(x).__qualname__} does not implement __dlpack_device__") from None
    return Device(int(t), int(i))


def same_device(*xs, names=None) -> Device:
    """The one device of ``xs`` (``None`` entries ignored); ``ValueError`` naming both
    devices if they differ."""
    names = names or [f"argument {i}" for i in range(len(xs))]
    found = None
    for n, x in zip(names, xs):
        if x is None:
            continue
        d = device(x)
        if found is None:
            found = (n, d)
        elif d != found[1]:
            raise ValueError(f"mixed devices: {found[0]} is on {found[1]} but {n} is on {d}; "
                             f"move them to one device first")
    return found[1] if found else Device(_CPU, 0)


# ---- zero-copy analysis --------------------------------------------------------------------

def _np_reason(a: np.ndarray, target: str) -> str | None:
    """Why the NumPy array ``a`` cannot be shared with ``target`` (None: it can)."""
    if a.dtype.byteorder not in ("=", "|") and a.dtype.itemsize > 1:
        return "non-native byte order is not representable in DLPack"
    if target == "numpy":
        return None
    if any(s < 0 for s in a.strides) and a.size > 1:
        return (f"negative strides {a.strides} (torch.from_dlpack aborts the interpreter on "
                f"them, JAX refuses them)")
    if not a.flags.writeable:
        return ("read-only array (torch would alias it as a writable tensor, JAX refuses "
                "read-only DLPack exports)")
    if target == "jax":
        if not (a.flags.c_contiguous or a.flags.f_contiguous):
            return f"non-compact strides {a.strides} (JAX imports compact buffers only)"
        if a.dtype == np.float64 and not _jax_x64():
            return "float64 with jax_enable_x64 off (JAX converts it to float32)"
        if a.ctypes.data % _JAX_ALIGNMENT and a.size:
            return f"buffer not {_JAX_ALIGNMENT}-byte aligned (JAX copies it on import)"
    if target == "cupy":
        return "host to device transfer"
    return None


def _jax_x64() -> bool:
    import jax
    return jax.dtypes.canonicalize_dtype(np.float64) == np.float64


def why_copy(x, target: str = "numpy", like=None) -> str | None:
    """Why converting ``x`` to ``target`` (a framework name) must copy, or ``None`` if the
    memory can be shared. With ``like``, a different device also counts."""
    src = framework(x)
    if like is not None and not device(like).is_cpu:
        if device(x) != device(like):
            return f"device transfer {device(x)} → {device(like)}"
    if not device(x).is_cpu:
        if like is None or device(like).is_cpu:
            return f"device transfer {device(x)} → cpu"
        return None  # same device: the consumer's from_dlpack shares it
    if src == "torch":
        if x.is_conj():
            return "torch tensor with the conjugate bit set (resolved by a copy)"
        if x.is_neg():
            return "torch tensor with the negative bit set (resolved by a copy)"
        if str(x.dtype) == "torch.bfloat16":
            return "bfloat16 has no NumPy dtype (cast to float32)"
        if target == "numpy":
            return None
    if src in ("jax", "cupy", "dlpack") and target == "numpy":
        return None
    if src == "numpy" or isinstance(x, np.generic):
        return _np_reason(np.asarray(x), target)
    if target == src:
        return None
    return _np_reason(_to_numpy_view(x), target)


def _to_numpy_view(x) -> np.ndarray:
    """Zero-copy NumPy view of a CPU array (may be read-only)."""
    if isinstance(x, (np.ndarray, np.generic)):
        return np.asarray(x)
    if framework(x) == "torch":
        x = x.detach()
    return np.from_dlpack(x)


def _copy_needed(reason, copy, what):
    if reason is None:
        return False
    if copy is False:
        raise BufferError(f"cannot share the memory of {what} without a copy: {reason}")
    log.debug("copying %s: %s", what, reason)
    return True


# ---- conversions ----------------------------------------------------------------------------

def to_numpy(x, *, copy: bool | None = None) -> np.ndarray:
    """A NumPy array with the data of ``x``: shares memory unless that is impossible
    (``copy=None``), always copies (``copy=True``) or raises ``BufferError`` with the reason
    (``copy=False``). Arrays imported from JAX are read-only, as JAX's buffers are."""
    src = framework(x)
    if src == "numpy":
        a = np.asarray(x)
        return a.copy() if copy else a
    what = f"a {src} array on {device(x)}"
    if not device(x).is_cpu:
        _copy_needed(f"device transfer {device(x)} → cpu", copy, what)
        if src == "torch":
            return x.detach().cpu().numpy()
        if src == "cupy":
            return x.get()
        return np.from_dlpack(x, device="cpu", copy=True)
    if src == "torch":
        t = x.detach()
        reason = why_copy(t, "numpy")
        if _copy_needed(reason, copy, what):
            t = t.resolve_conj().resolve_neg()
            if str(t.dtype) == "torch.bfloat16":
                t = t.float()
            return np.from_dlpack(t.contiguous()).copy()
        a = np.from_dlpack(t)
    else:
        a = np.from_dlpack(x)
    return a.copy() if copy else a


def _aligned_copy(a: np.ndarray) -> np.ndarray:
    """C-contiguous copy of ``a`` in a 64-byte aligned buffer (so JAX can share it)."""
    buf = np.empty(a.nbytes + _JAX_ALIGNMENT, np.uint8)
    off = (-buf.ctypes.data) % _JAX_ALIGNMENT
    out = buf[off:off + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


def from_numpy(a: np.ndarray, like, *, copy: bool | None = None):
    """The NumPy array ``a`` as an array of ``like``'s framework on ``like``'s device,
    sharing ``a``'s memory where possible (``copy`` as in :func:`to_numpy`). The dtype is
    kept, except that JAX without ``jax_enable_x64`` turns float64 into float32."""
    a = np.asarray(a)
    dst = framework(like)
    dev = device(like)
    if dst in ("numpy", "dlpack"):
        return a.copy() if copy else a
    reason = why_copy(a, dst, like=like)
    if copy:
        reason = reason or "copy=True"
    what = f"a NumPy array for {dst} on {dev}"
    needed = _copy_needed(reason, copy, what)
    if dst == "cupy":
        import cupy
        with cupy.cuda.Device(dev.id):
            return cupy.asarray(a)
    if needed and not (a.dtype.byteorder in ("=", "|") or a.dtype.itemsize == 1):
        a = a.astype(a.dtype.newbyteorder("="))
    if dst == "torch":
        import torch
        if needed:
            a = np.array(a, order="C", copy=True)
        t = torch.from_dlpack(a)
        return t if dev.is_cpu else t.to(like.device)
    if dst == "jax":
        import jax
        import jax.numpy as jnp
        if needed:
            if a.dtype == np.float64 and not _jax_x64():
                a = a.astype(np.float32)
            a = _aligned_copy(a)
        out = jnp.from_dlpack(a)
        return out if dev.is_cpu else jax.device_put(out, like.device)
    raise TypeError(f"cannot build a {dst} array")  # pragma: no cover


# ---- expansion in the caller's framework ----------------------------------------------------

def _float_dtype_ok(a: np.ndarray, name: str) -> np.ndarray:
    """float32/float64 as given (non-native byte order: the same values in native order);
    float16, integers and bools as float32; anything else refused naming ``name``."""
    if not a.dtype.isnative and a.dtype.kind in "fiu":
        a = a.astype(a.dtype.newbyteorder("="))
    if a.dtype in (np.float32, np.float64):
        return a
    if a.dtype in (np.float16,) or a.dtype.kind in "iub":
        return a.astype(np.float32)
    raise ValueError(f"{name} must be a real floating array (float32 or float64), got "
                     f"{a.dtype}")


def _on_gpu(fn, x, *args, out=None):
    """Run ``fn(cupy_array, *args)`` on the CUDA device of ``x``, zero-copy in and out.

    With ``out`` (an array of ``x``'s framework, e.g. a torch tensor from torch's caching
    allocator) the call is ``fn(cupy_array, *args, out=cupy_view_of_out)`` and ``out`` is
    returned: the result then lives in memory its framework owns (stream-ordered frees,
    CUDA graphs) rather than in CuPy's pool."""
    src = framework(x)
    try:
        import cupy
    except ImportError:
        raise RuntimeError(f"{src} array on {device(x)}: expanding device arrays needs CuPy "
                           f"(pip install \"cupy-cuda13x[ctk]>=14\" or "
                           f"\"cupy-cuda12x[ctk]>=14\")") from None
    with cupy.cuda.Device(device(x).id):
        if src == "torch":
            import torch
            ptr = torch.cuda.current_stream(x.device).cuda_stream
            stream = cupy.cuda.ExternalStream(ptr, device_id=device(x).id)
        else:
            stream = cupy.cuda.get_current_stream()
        with stream:
            xc = x if src == "cupy" else cupy.from_dlpack(x.detach() if src == "torch" else x)
            try:
                if out is not None:
                    oc = out if src == "cupy" else cupy.from_dlpack(out)
                    fn(xc, *args, out=oc)
                    return out
                out = fn(xc, *args)
            except TypeError as e:
                raise RuntimeError(f"no CUDA backend accepted the CuPy array: {e}") from e
    if src == "cupy":
        return out
    if src == "torch":
        import torch
        return torch.from_dlpack(out)
    if src == "jax":
        import jax.numpy as jnp
        return jnp.from_dlpack(out)
    return out


def _gpu_bias(basis, b):
    import cupy
    return b @ cupy.asarray(basis.bias_expansion().T, dtype=b.dtype)


def _call(method: str, basis, x, name: str):
    dev = device(x)
    if not dev.is_cpu:
        if method == "expand_bias":
            return _on_gpu(lambda a: _gpu_bias(basis, a), x)
        return _on_gpu(lambda a: getattr(basis, method)(a), x)
    a = _float_dtype_ok(to_numpy(x), name)
    return from_numpy(getattr(basis, method)(a), like=x)


def _empty_result(method: str, basis, x, name: str):
    """The result of an empty batch (0, …) in ``x``'s framework and device, or None when
    ``x`` is not an empty batch of the right shape (the backend then checks it). Every path
    gives empty in → empty out, whatever it does with a batch of zero items itself."""
    shape = tuple(getattr(x, "shape", ()))
    inner, result = {"expand": ((basis.dim,), tuple(basis.shape)),
                     "adjoint": (tuple(basis.shape), (basis.dim,)),
                     "expand_bias": ((basis.num_bias,), (basis.shape[0],))}[method]
    if len(shape) != len(inner) + 1 or shape[0] != 0 or shape[1:] != inner:
        return None
    dtype = _float_dtype_ok(np.empty(0, to_numpy(x).dtype), name).dtype
    return from_numpy(np.zeros((0,) + result, dtype), like=x)


def _run(method: str, basis, x, name: str):
    empty = _empty_result(method, basis, x, name)
    return empty if empty is not None else _call(method, basis, x, name)


def expand(basis, weights, bias=None):
    """``basis.expand(weights)`` for a weights array of any DLPack framework, returned in
    that framework on its device. With ``bias``, returns ``(filter, expanded_bias)``; both
    arrays must share a framework and device."""
    if bias is not None:
        same_device(weights, bias, names=["weights", "bias"])
        if framework(weights) != framework(bias):
            raise TypeError(f"weights are a {framework(weights)} array but bias is a "
                            f"{framework(bias)} array; pass both from one framework")
        return (_run("expand", basis, weights, "weights"),
                _run("expand_bias", basis, bias, "bias"))
    return _run("expand", basis, weights, "weights")


def adjoint(basis, filter_grad):
    """``basis.adjoint(filter_grad)`` (the exact transpose of :func:`expand`) in the caller's
    framework."""
    return _run("adjoint", basis, filter_grad, "filter_grad")


def expand_bias(basis, bias):
    """``basis.expand_bias(bias)`` in the caller's framework."""
    return _run("expand_bias", basis, bias, "bias")
