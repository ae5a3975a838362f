"""What real training code does to a layer, each against the eager original: deepcopy/EMA
then drop the original, equal twins built then dropped, rebuild loops, pickle, torch.save/load
(full models and weights_only state dicts), torch.func (functional_call + grad, vmap, jvp),
and the eval-mode cache (issue 16: returned filters never alias it; inference_mode forwards
never poison it)."""
import copy
import gc
import io
import pickle

import pytest

torch = pytest.importorskip("torch")
from torch.func import functional_call, grad, jvp, vmap  # noqa: E402

import cupysteer as cs  # noqa: E402
from cupysteer.torch import SteerableConv2d, SteerableConvTranspose2d, ops  # noqa: E402


def _types():
    G = cs.DihedralGroup(4)
    return (cs.FieldType(G, [G.regular_representation, G.irrep(1, 1).representation]),
            cs.FieldType(G, [G.trivial_representation, G.regular_representation]))


def build(seed=0, cache=None):
    tin, tout = _types()
    torch.manual_seed(seed)
    kw = {} if cache is None else {"cache": cache}
    return torch.nn.Sequential(SteerableConv2d(tin, tout, 3, padding=1, **kw), torch.nn.ReLU(),
                               SteerableConvTranspose2d(tout, tin, 3, padding=1, **kw))


X = torch.randn(2, 10, 7, 7, generator=torch.Generator().manual_seed(5))


def _run(model, x=X):
    """(output, gradient of every parameter) of one forward + backward."""
    model.zero_grad()
    y = model(x)
    y.square().sum().backward()
    return y.detach(), {k: p.grad.clone() for k, p in model.named_parameters()}


def _same(a, b):
    torch.testing.assert_close(a[0], b[0])
    assert a[1].keys() == b[1].keys()
    for k in a[1]:
        torch.testing.assert_close(a[1][k], b[1][k])


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_deepcopy_ema_then_drop_the_original(mode):
    model = build().train(mode == "train")
    ref = _run(model)
    ema = copy.deepcopy(model)
    del model
    gc.collect()
    _same(_run(ema), ref)
    with torch.no_grad():  # an EMA update, then the copy still runs
        for p in ema.parameters():
            p.mul_(0.5)
    assert not torch.allclose(ema(X), ref[0])


def test_equal_twin_built_then_dropped():
    first, second = build(cache=False), build(cache=False)
    assert first[0].basis is not second[0].basis
    ref = _run(second)
    del first
    gc.collect()
    _same(_run(second), ref)


def test_rebuild_loop():
    outs = []
    for _ in range(3):
        model = build()
        outs.append(_run(model))
        del model
        gc.collect()
    _same(outs[1], outs[0])
    _same(outs[2], outs[0])


def test_operator_key_survives_dropping_the_first_registrant():
    a = cs.LayerBasis(*_types(), 3, cache=False)
    b = cs.LayerBasis(*_types(), 3, cache=False)
    key = ops.register_basis(a)
    assert ops.register_basis(b) == key
    del a
    gc.collect()
    w = torch.randn(b.dim, dtype=torch.float64)
    torch.testing.assert_close(torch.ops.cupysteer.expand(w, key),
                               torch.from_numpy(b.expand(w.numpy())))


@pytest.mark.parametrize("how", ["pickle", "torch.save"])
def test_pickled_model_runs_after_the_original_is_gone(how):
    model = build()
    ref = _run(model)
    if how == "pickle":
        blob = pickle.dumps(model)
        del model
        gc.collect()
        other = pickle.loads(blob)
    else:
        buf = io.BytesIO()
        torch.save(model, buf)
        del model
        gc.collect()
        buf.seek(0)
        other = torch.load(buf, weights_only=False)
    _same(_run(other), ref)


def test_state_dict_weights_only_round_trip():
    model = build(seed=1).eval()
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    assert list(state) == ["0.weights", "0.bias", "2.weights", "2.bias"]
    fresh = build(seed=2).eval()
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh(X), model(X))


def test_functional_call_grad_equals_eager_backward():
    model = build()
    ref = _run(model)
    params = dict(model.named_parameters())

    def loss(p, x):
        return functional_call(model, p, (x,)).square().sum()

    g = grad(loss)(params, X)
    for k in params:
        torch.testing.assert_close(g[k], ref[1][k])
    model.eval()  # eval mode: the transform never sees (nor fills) the cache
    g_eval = grad(loss)(params, X)
    assert model[0]._cache is None
    for k in params:
        torch.testing.assert_close(g_eval[k], ref[1][k])


def test_vmap_over_inputs_and_over_parameters():
    model = build()
    params = {k: v.detach() for k, v in model.named_parameters()}
    xs = torch.randn(3, 2, 10, 7, 7)
    out = vmap(lambda x: functional_call(model, params, (x,)))(xs)
    torch.testing.assert_close(out, torch.stack([model(x) for x in xs]).detach())
    stacked = {k: torch.stack([v, -v]) for k, v in params.items()}
    out = vmap(lambda p: functional_call(model, p, (X,)))(stacked)
    neg = copy.deepcopy(model)
    with torch.no_grad():
        for p in neg.parameters():
            p.neg_()
    torch.testing.assert_close(out[1], neg(X).detach())


def test_jvp_through_the_layer():
    """Forward mode: the filter is linear in the weights, so the output's tangent along
    ``t`` is the difference of two forwards without bias."""
    tin, tout = _types()
    layer = SteerableConv2d(tin, tout, 3, padding=1, bias=False)
    w = layer.weights.detach()
    t = torch.randn_like(w)
    _, tangent = jvp(lambda w: functional_call(layer, {"weights": w}, (X,)), (w,), (t,))
    with torch.no_grad():
        layer.weights.copy_(t)
        torch.testing.assert_close(tangent, layer(X), rtol=1e-5, atol=1e-5)


# ---- the eval-mode cache (issue 16) ---------------------------------------------------------

@pytest.mark.parametrize("grad_enabled", [False, True])
def test_writing_to_expand_parameters_never_reaches_the_cache(grad_enabled):
    layer = build()[0].eval()
    x = X
    with torch.set_grad_enabled(grad_enabled):
        y = layer(x).detach()
        f, b = layer.expand_parameters()
        with torch.no_grad():
            f.zero_()
            b.zero_()
        torch.testing.assert_close(layer(x).detach(), y)
        f2, _ = layer.expand_parameters()
    assert f2.abs().max() > 0


def test_inference_mode_forward_then_training_forward():
    """One forward under inference_mode with frozen weights must not break later forwards
    that need autograd (the cached filter would be an inference tensor)."""
    layer = build()[0].eval()
    layer.requires_grad_(False)
    with torch.inference_mode():
        y_inf = layer(X)
    x = X.clone().requires_grad_(True)
    y = layer(x)                       # frozen weights, gradient to the input
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().max() > 0
    torch.testing.assert_close(y.detach(), y_inf.clone())
    layer.requires_grad_(True)         # unfrozen: gradients reach the weights too
    layer(X).square().sum().backward()
    assert layer.weights.grad is not None
    with torch.inference_mode():       # and inference_mode still uses a cache
        torch.testing.assert_close(layer(X), y_inf)
