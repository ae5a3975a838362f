"""cupysteer.torch.SteerablePointConv: the NumPy reference's result, gradients by the explicit
adjoints (gradcheck), equivariance, copies / pickles / state_dict, torch.compile."""
from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

import cupysteer as cs  # noqa: E402
from cupysteer import r3  # noqa: E402
from cupysteer.torch import SteerablePointConv  # noqa: E402

C4 = cs.CyclicGroup(4)
T_IN = cs.FieldType(C4, [C4.regular_representation, C4.trivial_representation])
T_OUT = cs.FieldType(C4, [C4.regular_representation, C4.irrep(1)])


def _graph(n=9, d=2, E=30, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=dtype)
    ei = torch.randint(0, n, (2, E), generator=g)
    ei[:, 0] = 0
    return x, ei


def _conv(**kw):
    torch.manual_seed(0)
    conv = SteerablePointConv(T_IN, T_OUT, width=1.5, n_rings=3, dtype=torch.float64, **kw)
    with torch.no_grad():
        if conv.bias is not None:
            conv.bias.normal_()
    return conv


@pytest.mark.parametrize("aggregation", ["sum", "mean"])
def test_matches_numpy_reference(aggregation):
    conv = _conv(aggregation=aggregation, chunk_edges=7)
    x, ei = _graph()
    f = torch.randn(9, T_IN.size, dtype=torch.float64)
    y = conv(f, x, ei)
    ref = conv.basis.apply(conv.weights.detach().numpy(), f.numpy(), x.numpy(), ei.numpy(),
                           bias=conv.bias.detach().numpy(), aggregation=aggregation)
    np.testing.assert_allclose(y.detach().numpy(), ref, atol=1e-12)


def test_gradcheck_features_and_weights():
    conv = _conv(aggregation="mean", chunk_edges=11)
    x, ei = _graph(n=4, E=12)
    f = torch.randn(4, T_IN.size, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda f: conv(f, x, ei), (f,), fast_mode=True)
    y = conv(f, x, ei)
    h = torch.randn_like(y)
    (y * h).sum().backward()
    gw = conv.weights.grad.clone()
    eps = 1e-6
    for k in (0, conv.weights.numel() // 2, conv.weights.numel() - 1):
        with torch.no_grad():
            conv.weights[k] += eps
            up = (conv(f, x, ei) * h).sum()
            conv.weights[k] -= 2 * eps
            dn = (conv(f, x, ei) * h).sum()
            conv.weights[k] += eps
        assert abs((up - dn).item() / (2 * eps) - gw[k].item()) < 1e-6 * max(1, abs(gw[k]))


def test_equivariance_float64_3d():
    G = r3.SO3(2)
    t_in = cs.FieldType(G, [G.irrep(0), G.irrep(1)])
    t_out = cs.FieldType(G, [G.irrep(1), G.irrep(0)])
    torch.manual_seed(1)
    conv = SteerablePointConv(t_in, t_out, width=2.0, n_rings=3, dtype=torch.float64)
    x, ei = _graph(n=10, d=3, E=40)
    f = torch.randn(10, 4, dtype=torch.float64)
    y = conv(f, x, ei)
    for g in G.sample(2, np.random.default_rng(0)):
        A = torch.from_numpy(G.action_matrices([g])[0])
        rin = torch.from_numpy(t_in.representation(g))
        rout = torch.from_numpy(t_out.representation(g))
        yg = conv(f @ rin.T, x @ A.T, ei)
        assert (yg - y @ rout.T).abs().max() < 1e-12


def test_copies_pickle_state_dict():
    conv = _conv()
    x, ei = _graph()
    f = torch.randn(9, T_IN.size, dtype=torch.float64)
    y = conv(f, x, ei)
    for c in (copy.deepcopy(conv), pickle.loads(pickle.dumps(conv)), copy.copy(conv)):
        torch.testing.assert_close(c(f, x, ei), y, rtol=0, atol=0)
    fresh = _conv()
    with torch.no_grad():
        fresh.weights.zero_()
    fresh.load_state_dict(conv.state_dict())
    torch.testing.assert_close(fresh(f, x, ei), y, rtol=0, atol=0)
    assert set(conv.state_dict()) == {"weights", "bias"}


def test_torch_compile_matches_eager():
    conv = _conv()
    x, ei = _graph()
    f = torch.randn(9, T_IN.size, dtype=torch.float64, requires_grad=True)
    compiled = torch.compile(conv, backend="eager")  # graph break around the NumPy basis
    torch.testing.assert_close(compiled(f, x, ei), conv(f, x, ei))
    compiled(f, x, ei).sum().backward()
    assert f.grad is not None and conv.weights.grad is not None


def test_bad_inputs_name_the_argument():
    conv = _conv()
    x, ei = _graph()
    f = torch.randn(9, T_IN.size, dtype=torch.float64)
    with pytest.raises(ValueError, match="positions.requires_grad"):
        conv(f, x.clone().requires_grad_(True), ei)
    with pytest.raises(ValueError, match="features"):
        conv(f[:, :3], x, ei)
    with pytest.raises(ValueError, match="positions"):
        conv(f, x[:, :1], ei)
    with pytest.raises(ValueError, match="edge_index"):
        conv(f, x, ei.float())
    with pytest.raises(ValueError, match="edge_index"):
        conv(f, x, ei + 100)
    with pytest.raises(ValueError, match="aggregation"):
        SteerablePointConv(T_IN, T_OUT, width=1.0, n_rings=2, aggregation="max")
    with pytest.raises(ValueError, match="width and n_rings"):
        SteerablePointConv(T_IN, T_OUT)


def test_torch_ops_implement_the_numpy_contract():
    """contract_ops (the dispatch point) computes exactly point_numpy's three operations."""
    from cupysteer.backends import point_numpy as pn
    from cupysteer.torch.point import contract_ops
    b = _conv().basis
    rng = np.random.default_rng(3)
    n, E = 7, 23
    B, w = rng.normal(size=(E, b.n_entries)), rng.normal(size=b.dim)
    g, h = rng.normal(size=(n, b.in_type.size)), rng.normal(size=(n, b.out_type.size))
    s, d = rng.integers(0, n, E), rng.integers(0, n, E)
    ops = contract_ops(torch.device("cpu"))
    T = ops.prepare(b.table)
    tt = [torch.from_numpy(a) for a in (B, w, g, h, s, d)]
    y = ops.contract(T, tt[0], tt[1], tt[2], tt[4], tt[5], n).numpy()
    np.testing.assert_allclose(y, pn.contract(b.table, B, w, g, s, d, n), atol=1e-12)
    ga = ops.contract_adjoint_features(T, tt[0], tt[1], tt[3], tt[4], tt[5], n).numpy()
    np.testing.assert_allclose(ga, pn.contract_adjoint_features(b.table, B, w, h, s, d, n),
                               atol=1e-12)
    gw = ops.contract_adjoint_weights(T, tt[0], tt[3], tt[2], tt[4], tt[5], b.dim).numpy()
    np.testing.assert_allclose(gw, pn.contract_adjoint_weights(b.table, B, h, g, s, d, b.dim),
                               atol=1e-12)
    e = torch.zeros(0, dtype=torch.int64)
    empty = torch.zeros(0, b.n_entries, dtype=torch.float64)
    assert not ops.contract(T, empty, tt[1], tt[2], e, e, n).any()
    assert not ops.contract_adjoint_features(T, empty, tt[1], tt[3], e, e, n).any()
    assert not ops.contract_adjoint_weights(T, empty, tt[3], tt[2], e, e, b.dim).any()
