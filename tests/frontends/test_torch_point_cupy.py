"""SteerablePointConv on the CUDA kernels (kernels/point_conv.cu) through ``contract_ops``'s
CuPy branch (:class:`cupysteer.torch.point.CupyOps`).

Without a GPU: the layer's forward and backward run through ``CupyOps`` — the very class
``contract_ops`` returns for CUDA tensors — with its runtime swapped for the CPU emulation of
the kernels (``CpuPointLaunch``: point_cupy's ``PointLaunch`` on the stand-in ``cupy``, the
.cu compiled by g++), and are compared with the torch-op path. What the emulation does not
cover (real ``cupy.from_dlpack`` / ``torch.from_dlpack`` on CUDA memory, torch's stream) is
run by the GPU test at the end, which skips with its reason where there is no CUDA device.
"""
from __future__ import annotations

import contextlib
import functools

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

import cupysteer as cs  # noqa: E402
from cupysteer import r3  # noqa: E402
from cupysteer.torch import SteerablePointConv  # noqa: E402
from cupysteer.torch import point as P  # noqa: E402

from _helpers import rel_err  # noqa: E402
from cuda_emulation import harness as H  # noqa: E402
from cuda_emulation.point_harness import CpuPointLaunch  # noqa: E402

TOL = {torch.float64: 1e-12, torch.float32: 1e-5}
C4 = cs.CyclicGroup(4)
SO3 = r3.SO3(2)
TYPES = {
    "C4": (cs.FieldType(C4, [C4.regular_representation, C4.trivial_representation]),
           cs.FieldType(C4, [C4.regular_representation, C4.irrep(1)]), 2),
    "SO3": (cs.FieldType(SO3, [SO3.irrep(0), SO3.irrep(1)]),
            cs.FieldType(SO3, [SO3.irrep(1), SO3.irrep(0)]), 3),
}
emulated = pytest.mark.skipif(H.gxx() is None, reason="g++ not found: the CPU emulation of "
                              "the CUDA kernels needs a host C++20 compiler")


class _CountingLaunch(CpuPointLaunch):
    built: list = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, threads=32, **kwargs)
        self.built.append(self)


def _emulated_ops():
    """CupyOps with the CPU runtime: CPU tensors viewed as the stand-in's arrays (zero-copy)."""
    return P.CupyOps(launch=_CountingLaunch, to_cupy=lambda t: t.detach().numpy(),
                     to_torch=torch.from_numpy, stream=lambda device: contextlib.nullcontext())


def _problem(name, dtype, n=10, E=40, seed=0, device="cpu"):
    t_in, t_out, d = TYPES[name]
    torch.manual_seed(seed)
    conv = SteerablePointConv(t_in, t_out, width=1.5, n_rings=3, dtype=dtype,
                              aggregation="mean", chunk_edges=13).to(device)
    with torch.no_grad():
        conv.bias.normal_()
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=dtype).to(device)
    f = torch.randn(n, t_in.size, generator=g, dtype=dtype).to(device)
    ei = torch.randint(0, n, (2, E), generator=g).to(device)
    gy = torch.randn(n, t_out.size, generator=g, dtype=dtype).to(device)
    return conv, f, x, ei, gy


def _run(conv, f, x, ei, gy):
    """Output and gradients (features, weights, bias) of one forward + backward."""
    conv.zero_grad()
    f = f.detach().requires_grad_()
    y = conv(f, x, ei)
    (y * gy).sum().backward()
    return [a.detach().cpu().double().numpy() for a in
            (y, f.grad, conv.weights.grad, conv.bias.grad)]


def _compare(got, want, dtype):
    for name, a, b in zip(("output", "grad features", "grad weights", "grad bias"), got, want):
        assert np.isfinite(a).all(), name
        assert rel_err(a, b) < TOL[dtype], (name, rel_err(a, b))


@emulated
@pytest.mark.parametrize("name", sorted(TYPES))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_layer_through_the_emulated_cuda_kernels_matches_torch_ops(monkeypatch, name, dtype):
    conv, f, x, ei, gy = _problem(name, dtype)
    want = _run(conv, f, x, ei, gy)  # CPU tensors: the torch-op path
    ops = _emulated_ops()
    calls = []
    monkeypatch.setattr(P, "contract_ops",
                        lambda device, dtype=None: calls.append(device) or ops)
    _CountingLaunch.built.clear()
    got = _run(conv, f, x, ei, gy)
    _compare(got, want, dtype)
    # 40 edges in chunks of 13: four chunks, one PointLaunch each, shared by the forward and
    # both adjoints; every launch ran the kernels (segments ×2, weight partials + reduce)
    assert len(_CountingLaunch.built) == 4 and calls
    kernels = [k for L in _CountingLaunch.built for k in L.launches]
    assert len(kernels) >= 4 * 4, kernels


@emulated
def test_emulated_path_keeps_equivariance_gradients_and_no_grad(monkeypatch):
    """No-grad forward (no backward launches) and features-only gradients."""
    conv, f, x, ei, gy = _problem("C4", torch.float64)
    want = conv(f, x, ei).detach()
    monkeypatch.setattr(P, "contract_ops", lambda device, dtype=None: _emulated_ops())
    with torch.no_grad():
        got = conv(f, x, ei)
    assert rel_err(got.numpy(), want.numpy()) < 1e-12
    conv.requires_grad_(False)
    fr = f.clone().requires_grad_()
    (conv(fr, x, ei) * gy).sum().backward()
    assert fr.grad is not None and conv.weights.grad is None


def test_dispatch_picks_cupy_ops_for_cuda_float_tensors(monkeypatch):
    cuda = torch.device("cuda", 0)
    assert isinstance(P._cupy_ready(), bool)  # never raises, whatever is installed
    monkeypatch.setattr(P, "_cupy_ready", lambda: True)
    for dtype in (torch.float32, torch.float64, None):
        assert isinstance(P.contract_ops(cuda, dtype), P.CupyOps), dtype
    for device, dtype in ((cuda, torch.float16), (cuda, torch.bfloat16),
                          (torch.device("cpu"), torch.float32), (torch.device("mps"), None)):
        assert P.contract_ops(device, dtype) is P._TORCH_OPS, (device, dtype)
    monkeypatch.setattr(P, "_cupy_ready", lambda: False)
    assert P.contract_ops(cuda, torch.float32) is P._TORCH_OPS


def test_cupy_table_reaches_the_tables_channels():
    conv, *_ = _problem("C4", torch.float64)
    t = P.CupyOps.prepare(conv.basis.table)
    assert t.c_out == P.prepare_table(conv.basis.table).c_out and t.launches == {}


def _gpu_reason():
    if not torch.cuda.is_available():
        return "no CUDA device visible to torch"
    if not P._cupy_ready():
        return "CuPy is not installed or sees no CUDA device"
    return None


@pytest.mark.skipif(_gpu_reason() is not None, reason=f"GPU test: {_gpu_reason()}")
@pytest.mark.parametrize("name", sorted(TYPES))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_layer_on_cuda_matches_torch_ops(monkeypatch, name, dtype):  # pragma: no cover
    problem = _problem(name, dtype, n=200, E=3000, device="cuda")
    assert isinstance(P.contract_ops(problem[1].device, dtype), P.CupyOps)
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):  # the kernels run on torch's current stream
        got = _run(*problem)
    torch.cuda.synchronize()
    monkeypatch.setattr(P, "contract_ops", functools.partial(lambda *a, **k: P._TORCH_OPS))
    _compare(got, _run(*problem), dtype)
