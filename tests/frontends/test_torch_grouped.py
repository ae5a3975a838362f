"""The whole-model launch (cupysteer.torch.grouped.expand_together): every steerable layer of
a model expands in one forward launch and one adjoint launch per step, with the same results
as per-layer expansion — on the CPU fallback (per-layer NumPy into one buffer) and on the CPU
emulation of the CUDA kernels (the real CupyExpander launcher over g++-built kernels) — and
the model keeps working with state_dict, deepcopy, pickle, eval mode, torch.compile and DDP."""
from __future__ import annotations

import copy
import os
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import cupysteer as cs  # noqa: E402
from cupysteer.torch import SteerableConv2d, SteerableConv3d, SteerableConvTranspose2d  # noqa: E402
from cupysteer.torch import grouped as gmod  # noqa: E402
from cupysteer.torch.grouped import GroupedExpansion, expand_together  # noqa: E402

from cuda_emulation import harness as H  # noqa: E402

needs_gxx = pytest.mark.skipif(H.gxx() is None, reason="g++ not found: the CPU emulation of "
                                                       "the CUDA kernels cannot be built")


def build(dtype=torch.float64, seed=0):
    """Four steerable layers (one transposed, one 3D-free planar net) and a plain layer."""
    torch.manual_seed(seed)
    G = cs.CyclicGroup(4)
    R, T = G.regular_representation, G.trivial_representation
    rgb, t2 = cs.FieldType(G, [T] * 3), cs.FieldType(G, [R] * 2)
    t3 = cs.FieldType(G, [R, G.irreps()[1].representation, T])
    model = torch.nn.Sequential(
        SteerableConv2d(rgb, t2, 5, padding=2), torch.nn.ReLU(),
        SteerableConv2d(t2, t3, 3, padding=1), torch.nn.Tanh(),
        SteerableConvTranspose2d(t3, t2, 3, padding=1),
        SteerableConv2d(t2, t2, 1), torch.nn.Conv2d(8, 4, 1))
    return model.to(dtype)


class Emulated:
    """``expander_factory`` running the CPU emulation of the CUDA kernels; records every
    expander it makes (their stand-in ``cupy`` counts the launches)."""

    def __init__(self):
        self.made = []

    def __call__(self, plans, dtype):
        ex = H.CpuExpander(plans, dtype)
        self.made.append(ex)
        return ex

    @property
    def launches(self):
        return [name.split("<")[0] for ex in self.made for name in ex.cupy.launches]


def step(model, x):
    for p in model.parameters():
        p.grad = None
    y = model(x)
    y.square().sum().backward()
    return y.detach(), [p.grad.clone() for p in model.parameters()]


def assert_same(a, b, rtol, atol):
    (ya, ga), (yb, gb) = a, b
    torch.testing.assert_close(ya, yb, rtol=rtol, atol=atol)
    assert len(ga) == len(gb)
    for u, v in zip(ga, gb):
        torch.testing.assert_close(u, v, rtol=rtol, atol=atol)


X = torch.randn(2, 3, 11, 11, generator=torch.Generator().manual_seed(1))


def test_cpu_fallback_matches_per_layer(monkeypatch):
    ref = step(build(), X.double())
    model = build()
    grouped = expand_together(model)
    assert isinstance(grouped, GroupedExpansion) and len(grouped.layers) == 4
    calls = []
    for name in ("numpy_expand", "numpy_adjoint"):
        real = getattr(gmod._Group, name)
        monkeypatch.setattr(gmod._Group, name,
                            lambda self, a, real=real, name=name: calls.append(name) or
                            real(self, a))
    assert_same(step(model, X.double()), ref, rtol=1e-12, atol=1e-12)
    assert calls == ["numpy_expand", "numpy_adjoint"]  # one grouped call each way


@needs_gxx
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-11), (torch.float32, 2e-5)])
def test_emulated_kernels_one_launch_each_way(dtype, tol):
    """One forward launch and one adjoint launch per training step, for all four layers, with
    the per-layer results (NumPy reference)."""
    x = X.to(dtype)
    ref = step(build(dtype), x)
    model, emu = build(dtype), Emulated()
    expand_together(model, emu)
    for _ in range(2):
        assert_same(step(model, x), ref, rtol=tol, atol=tol)
    assert len(emu.made) == 1
    assert emu.launches == ["expand_forward", "expand_adjoint"] * 2


@needs_gxx
def test_groups_per_dtype():
    model, emu = build(torch.float32), Emulated()
    model[2].double()
    model[3] = torch.nn.Identity()  # the float64 layer's output to float32 again:
    model.insert(3, _Cast(torch.float32))
    model.insert(2, _Cast(torch.float64))
    expand_together(model, emu)
    model(X)
    assert sorted(str(ex.dtype) for ex in emu.made) == ["float32", "float64"]
    assert [ex.packed.filter_shapes for ex in emu.made if ex.dtype == np.float64] == \
        [(tuple(model[3].basis.shape),)]


class _Cast(torch.nn.Module):
    def __init__(self, dtype):
        super().__init__()
        self.dtype = dtype

    def forward(self, x):
        return x.to(self.dtype)


def test_layers_keep_working_alone_and_remove():
    model = build()
    grouped = expand_together(model)
    layer = model[2]
    h = torch.randn(1, 8, 7, 7, dtype=torch.float64)
    alone = layer(h)
    model(X.double())
    assert layer._grouped_filter is None  # nothing left behind after the forward
    torch.testing.assert_close(layer(h), alone, rtol=0, atol=0)
    ref = step(model, X.double())
    grouped.remove()
    assert not model._forward_pre_hooks and not model._forward_hooks
    assert_same(step(model, X.double()), ref, rtol=1e-12, atol=1e-12)


def test_failed_forward_leaves_no_filter_behind():
    model = build()
    expand_together(model)
    with pytest.raises(ValueError, match="channels"):
        model(torch.randn(1, 5, 9, 9, dtype=torch.float64))  # wrong channel count
    assert all(getattr(m, "_grouped_filter", None) is None for m in model.modules())


def test_state_dict_deepcopy_pickle():
    model = build()
    keys = list(model.state_dict())
    expand_together(model)
    assert list(model.state_dict()) == keys
    ref = step(model, X.double())
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        hook = next(iter(clone._forward_pre_hooks.values())).__self__
        assert all(a is b for a, b in zip(hook.layers, [clone[0], clone[2], clone[4],
                                                        clone[5]]))
        assert_same(step(clone, X.double()), ref, rtol=1e-12, atol=1e-12)
        with torch.no_grad():  # the copy's hook serves the copy's weights, not the original's
            clone[0].weights.mul_(2)
        assert not torch.equal(clone(X.double()), model(X.double()))


def test_eval_mode_uses_the_layers_cache():
    model, emu = build(), Emulated()
    expand_together(model, emu)
    model.eval()
    with torch.no_grad():
        y = model(X.double())
    assert emu.made == []
    torch.testing.assert_close(y, build().eval()(X.double()), rtol=1e-12, atol=1e-12)


def test_torch_compile():
    model = build()
    ref = step(model, X.double())
    expand_together(model)
    compiled = torch.compile(model, backend="eager")
    assert_same(step(compiled, X.double()), ref, rtol=1e-10, atol=1e-10)


def test_ddp(tmp_path):
    """DistributedDataParallel (one gloo process) calls the model's forward: the grouped
    expansion runs and the gradients are those of the model alone."""
    dist = pytest.importorskip("torch.distributed")
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    ref = step(build(), X.double())
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/store", rank=0,
                            world_size=1)
    try:
        model = build()
        expand_together(model)
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        assert_same(step(ddp, X.double()), ref, rtol=1e-12, atol=1e-12)
    finally:
        dist.destroy_process_group()


def test_3d_layers_group_too():
    from cupysteer import r3
    G = r3.Octahedral()
    t = cs.FieldType(G, [G.regular_representation])
    torch.manual_seed(0)
    model = torch.nn.Sequential(SteerableConv3d(t, t, 3, padding=1),
                                SteerableConv3d(t, t, 3, padding=1)).double()
    x = torch.randn(1, 24, 5, 5, 5, dtype=torch.float64)
    ref = step(model, x)
    expand_together(model)
    assert_same(step(model, x), ref, rtol=1e-12, atol=1e-12)


def test_errors():
    with pytest.raises(ValueError, match="no steerable layer"):
        expand_together(torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1)))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        expand_together([build()])
    model = build()
    g = expand_together(model)
    key = g._group_of(g.layers).key
    with pytest.raises(ValueError, match=r"weights must be a float32/float64 tensor of shape"):
        torch.ops.cupysteer.expand_many(torch.zeros(3, dtype=torch.float64), key)
    with pytest.raises(KeyError, match="expand_together"):
        torch.ops.cupysteer.expand_many(torch.zeros(3), 12345)


@pytest.mark.gpu
def test_grouped_on_cuda_matches_cpu():
    """On a GPU: the grouped CUDA launch against the CPU, with TF32 off (cuDNN's default TF32
    rounding alone exceeds these tolerances)."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    pytest.importorskip("cupy")
    model = build(torch.float32)
    ref = step(model, X)
    gpu = copy.deepcopy(model).cuda()
    expand_together(gpu)
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        y, grads = step(gpu, X.cuda())
    assert_same((y.cpu(), [g.cpu() for g in grads]), ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("how", ["deepcopy_then_drop_original", "equal_twin_dropped"])
def test_grouped_model_survives_the_death_of_an_equal_model(how):
    """An EMA copy (or an equal twin built first) keeps working after the other model is
    deleted: the operator key resolves to any live group, and each model re-registers its own
    at every forward."""
    import gc
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    first = build()
    expand_together(first)
    first(x)
    survivor = copy.deepcopy(first) if how.startswith("deepcopy") else build()
    if not how.startswith("deepcopy"):
        expand_together(survivor)
    ref = survivor(x).detach()
    del first
    gc.collect()
    torch.testing.assert_close(survivor(x).detach(), ref, rtol=0, atol=0)
    step(survivor, x)  # forward + adjoint through the grouped operators


def test_remove_works_on_a_deepcopy():
    x = torch.randn(1, 3, 9, 9, dtype=torch.float64)
    model = build()
    hooks = expand_together(model)
    twin = copy.deepcopy(model)
    twin_hooks = next(h.__self__ for h in twin._forward_pre_hooks.values()
                      if isinstance(getattr(h, "__self__", None), GroupedExpansion))
    twin(x)
    twin_hooks.remove()
    assert not any(isinstance(getattr(h, "__self__", None), GroupedExpansion)
                   for h in list(twin._forward_pre_hooks.values())
                   + list(twin._forward_hooks.values()))
    assert len(model._forward_pre_hooks) == 1  # the original is untouched
    hooks.remove()
    assert not model._forward_pre_hooks and not model._forward_hooks
