"""cupysteer.fourier (sampling matrices of a band-limited Fourier transform on the group) and
cupysteer.torch.nn.FourierPointwise / FourierELU.

* equal to escnn 1.0.11 (buffers A, Ainv and outputs; tests/data/fieldwise/escnn.npz, made by
  scripts/make_escnn_fieldwise_fixtures.py) for SO(2), O(2), SO(3), O(3) grids;
* exactly equivariant (float64, ≤ 1e-10) under every grid-preserving element that is also in
  the Fourier grid (2D: SO(2)/O(2) with N = 8, C8, D4; 3D: SO(3)/O(3) 'cube', octahedral),
  approximately under the others, with measured bounds (relative to the largest output, ELU,
  200 random fields): SO(2) band limit 2 — N = 8: < 0.1, N = 16: < 0.01, N = 32: < 1e-3;
  SO(3) band limit 1 — 'cube': < 0.1, 'ico': < 0.03;
* gradcheck, torch.compile, state-dict round trips, copies, pickles and clear errors.
"""
import copy
import math
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import cupysteer as cs  # noqa: E402
from cupysteer import r3  # noqa: E402
from cupysteer.fourier import (  # noqa: E402
    FourierSampling,
    group_grid,
    spectral_regular_representation,
)
from cupysteer.torch import nn as cnn  # noqa: E402

from _paths import DATA  # noqa: E402

FIXTURES = DATA / "fieldwise" / "escnn.npz"


ESCNN_CASES = {
    "so2_elu": lambda: cnn.FourierELU(cs.SO2(), 3, [(0,), (1,), (2,)], N=8),
    "so2_relu_n7": lambda: cnn.FourierPointwise(cs.SO2(), 2, [(0,), (1,), (2,)], N=7),
    "o2_elu": lambda: cnn.FourierELU(cs.O2(), 2, [(0, 0), (1, 0), (1, 1), (1, 2)], N=8),
    "so3_elu_cube": lambda: cnn.FourierELU(r3.SO3(), 2, [(0,), (1,)], type="cube"),
    "so3_relu_ico_out": lambda: cnn.FourierPointwise(
        r3.SO3(), 2, [(0,), (1,), (2,)], type="ico", out_irreps=[(0,), (1,)]),
    "o3_elu_cube": lambda: cnn.FourierELU(r3.O3(), 2, [(0, 0), (1, 0), (0, 1), (1, 1)],
                                          type="cube"),
}


@pytest.mark.parametrize("case", sorted(ESCNN_CASES))
def test_equals_escnn(case):
    d = np.load(FIXTURES)
    m = ESCNN_CASES[case]()
    key = f"fourier_{case}"
    np.testing.assert_allclose(m.A.numpy(), d[f"{key}.A"], atol=1e-6, rtol=0)
    np.testing.assert_allclose(m.Ainv.numpy(), d[f"{key}.Ainv"], atol=1e-6, rtol=0)
    y = m(torch.tensor(d[f"{key}.x"]))
    np.testing.assert_allclose(y.detach().numpy(), d[f"{key}.out"], atol=1e-5, rtol=0)


def _octahedral_all():
    O = r3.Octahedral()
    return cnn.FourierELU(O, 2, [p.id for p in O.irreps()], inplace=False)


EXACT = {  # every grid-preserving element of the group is in the Fourier grid
    "SO2_N8": lambda: cnn.FourierELU(cs.SO2(), 2, [(0,), (1,), (2,)], 8, inplace=False),
    "O2_N8": lambda: cnn.FourierPointwise(cs.O2(), 2, [(0, 0), (1, 0), (1, 1), (1, 2)], 8,
                                          function="p_relu", inplace=False),
    "C8": lambda: cnn.FourierELU(cs.CyclicGroup(8), 2, [(0,), (1,), (2,), (4,)]),
    "D4": lambda: cnn.FourierPointwise(cs.DihedralGroup(4), 2, [(0, 0), (1, 0), (1, 1)],
                                       function="p_tanh"),
    "SO2_out": lambda: cnn.FourierELU(cs.SO2(), 1, [(0,), (1,), (2,)], 12,
                                      out_irreps=[(0,), (1,)]),
    "SO3_cube": lambda: cnn.FourierELU(r3.SO3(), 2, [(0,), (1,)], "cube", inplace=False),
    "O3_cube": lambda: cnn.FourierELU(r3.O3(), 1, [(0, 0), (1, 0), (0, 1), (1, 1)], "cube"),
    "octahedral": _octahedral_all,
}


@pytest.mark.parametrize("case", sorted(EXACT))
def test_exactly_equivariant_on_the_grid_elements(float64, case):
    m = EXACT[case]()
    G = m.in_type.group
    three = G.space.dimension == 3
    size = 3 if three else 5
    grid = cnn.grid_elements(G, (size,) * (3 if three else 2))
    assert len(grid) >= (12 if three else 4)
    for g, _ in grid:  # each is in the Fourier grid: its left multiplication permutes it
        assert m.sampling.permutation(g) is not None
    x = torch.randn(2, m.in_type.size, *(size,) * (3 if three else 2),
                    generator=torch.Generator().manual_seed(3))
    errors = cnn.check_equivariance(m, m.in_type, m.out_type, x=x, atol=1e-10, rtol=0)
    assert len(errors) == len(grid)


def _fibre_error(m, g, n=200):
    """max |m(ρ(g)x) − ρ(g)m(x)| / max |m(x)| on n random fields (one pixel)."""
    d = m.in_type.group.space.dimension
    x = torch.randn(n, m.in_type.size, *(1,) * d, generator=torch.Generator().manual_seed(0))
    R_in = torch.tensor(m.in_type.representation.evaluate([g])[0])
    R_out = torch.tensor(m.out_type.representation.evaluate([g])[0])
    y = m(x)
    yg = m(torch.einsum("ab,nb...->na...", R_in, x))
    return float((yg - torch.einsum("ab,nb...->na...", R_out, y)).abs().max() / y.abs().max())


@pytest.mark.parametrize("N, bound", [(8, 0.1), (16, 0.01), (32, 1e-3)])
def test_so2_approximately_equivariant_off_the_grid(float64, N, bound):
    m = cnn.FourierELU(cs.SO2(), 1, [(0,), (1,), (2,)], N, inplace=False)
    for angle in (0.3, 1.1, 2.9):
        assert m.sampling.permutation(angle) is None
        err = _fibre_error(m, angle)
        assert 1e-8 < err < bound  # not exact (aliasing), but bounded
    assert _fibre_error(m, 2 * math.pi * 3 / N) < 1e-12  # a grid element: exact


@pytest.mark.parametrize("kind, bound", [("cube", 0.1), ("ico", 0.03)])
def test_so3_approximately_equivariant_off_the_grid(float64, kind, bound):
    m = cnn.FourierELU(r3.SO3(), 1, [(0,), (1,)], kind, inplace=False)
    for g in r3.SO3().sample(3, np.random.default_rng(0)):
        assert m.sampling.permutation(g) is None
        assert 1e-8 < _fibre_error(m, g) < bound


def test_sampling_structure():
    s = FourierSampling(cs.SO2(), [(0,), (1,), (2,)], 8)
    assert s.A.shape == (8, 5) and s.A_inv.shape == (5, 8)
    assert not s.A.flags.writeable and not s.A_inv.flags.writeable
    np.testing.assert_allclose(s.A_inv @ s.A, np.eye(5), atol=1e-7)  # escnn's ε = 1e-8
    np.testing.assert_allclose(np.linalg.norm(s.A, axis=1), 1.0, atol=1e-12)  # normalize
    with pytest.raises(AttributeError):
        s.A = None
    t = pickle.loads(pickle.dumps(s))
    assert np.array_equal(t.A, s.A) and np.array_equal(t.A_inv, s.A_inv)
    assert t.grid_args == (8,) and repr(t) == repr(s)
    r = FourierSampling(r3.SO3(), [(0,), (1,)], "rand", 30)  # unseeded: pickled as drawn
    assert np.array_equal(pickle.loads(pickle.dumps(r)).A, r.A)
    rho = spectral_regular_representation(cs.O2(), [(0, 0), (1, 1)])
    assert rho.name == "regular_[(0, 0)|(1, 1)]" and rho.size == 5 and rho.is_identity_basis
    # SO(2)'s 2-dim irreps are complex: once; O(2)'s and SO(3)'s are real: dim times
    assert spectral_regular_representation(cs.SO2(), [(1,)]).size == 2
    assert spectral_regular_representation(r3.SO3(), [(1,)]).size == 9
    assert FourierSampling(cs.SO2(), [(0,)], elements=[0.0, 1.0]).n_grid == 2


def test_grids_follow_escnn():
    np.testing.assert_allclose(group_grid(cs.SO2(), 4), [0, math.pi / 2, math.pi,
                                                         3 * math.pi / 2])
    rng = np.random.RandomState(5)  # escnn's 'rand': RandomState(seed).random() · 2π
    np.testing.assert_allclose(group_grid(cs.SO2(), 3, "rand", 5),
                               [rng.random() * 2 * math.pi for _ in range(3)])
    assert group_grid(cs.O2(), 2) == [(0, 0.0), (0, math.pi), (1, 0.0), (1, math.pi)]
    assert group_grid(cs.DihedralGroup(4), "regular", 2) == [(0, 0), (0, 2), (1, 0), (1, 2)]
    assert len(group_grid(cs.CyclicGroup(6))) == 6
    cube = group_grid(r3.SO3(), "cube")
    assert cube.shape == (24, 3, 3)
    assert len(group_grid(r3.SO3(), "ico")) == 60 and len(group_grid(r3.SO3(), "tetra")) == 12
    assert np.allclose(group_grid(r3.O3(), "cube")[24:], -cube)
    np.testing.assert_allclose(group_grid(r3.SO3(), "rand", 4, 1),
                               group_grid(r3.SO3(), "rand", 4, 1))
    assert len(group_grid(r3.Octahedral())) == 24


@pytest.mark.parametrize("case", ["SO2_N8", "SO3_cube", "SO2_out"])
def test_gradcheck(float64, case):
    m = EXACT[case]()
    d = m.in_type.group.space.dimension
    x = torch.randn(1, m.in_type.size, *(2 if d == 2 else 1,) * d, requires_grad=True)
    assert torch.autograd.gradcheck(m, (x,), atol=1e-6)


def test_state_dict_copy_pickle_and_compile(float64):
    m = EXACT["O2_N8"]()
    x = torch.randn(2, m.in_type.size, 4, 4)
    ref = m(x)
    assert sorted(m.state_dict()) == ["A", "Ainv"]  # escnn's buffers
    fresh = EXACT["O2_N8"]()
    fresh.load_state_dict(m.state_dict(), strict=True)
    for other in (fresh, copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        torch.testing.assert_close(other(x), ref, rtol=0, atol=0)
        assert other.in_type == m.in_type and other.out_type == m.out_type
    compiled = torch.compile(m, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(x), ref)


def test_from_type_and_compat_gspace():
    m = cnn.FourierELU(r3.SO3(), 2, [(0,), (1,)], "cube")
    again = cnn.FourierELU.from_type(m.in_type, "cube")
    assert again.in_type == m.in_type and torch.equal(again.A, m.A)
    from cupysteer.compat import escnn as ecompat
    gs = ecompat.rot3dOnR3()
    viaspace = cnn.FourierELU(gs, 2, [(0,), (1,)], "cube")
    assert viaspace.in_type.gspace == gs and torch.equal(viaspace.A, m.A)


def test_errors():
    G = cs.CyclicGroup(8)
    with pytest.raises(ValueError, match="not band-limited Fourier coefficients"):
        cnn.FourierELU.from_type(cs.FieldType(G, [G.regular_representation]))  # basis ≠ I
    rho = spectral_regular_representation(G, [(0,), (1,)])
    with pytest.raises(ValueError, match="same spectral regular representation"):
        cnn.FourierELU.from_type(cs.FieldType(G, [rho, G.irrep(1)]))
    with pytest.raises(ValueError, match="is not an irrep id of SO"):
        cnn.FourierELU(cs.SO2(), 1, [(0,), (1, 1)], 8)
    with pytest.raises(ValueError, match="twice"):
        cnn.FourierELU(cs.SO2(), 1, [(0,), (0,)], 8)
    with pytest.raises(ValueError, match="cannot resolve"):
        cnn.FourierELU(cs.SO2(), 1, [(0,), (1,), (2,)], 3)
    with pytest.raises(ValueError, match="cannot resolve"):
        cnn.FourierELU(r3.SO3(), 1, [(0,), (1,), (2,)], "cube")
    with pytest.raises(ValueError, match="'thomson' grid is not reproduced"):
        cnn.FourierELU(r3.SO3(), 1, [(0,), (1,)], "thomson", 30)
    with pytest.raises(ValueError, match="needs N"):
        cnn.FourierELU(cs.SO2(), 1, [(0,), (1,)])
    with pytest.raises(ValueError, match="positive divisor"):
        cnn.FourierELU(G, 1, [(0,)], "regular", 3)
    with pytest.raises(ValueError, match="function must be one of"):
        cnn.FourierPointwise(cs.SO2(), 1, [(0,)], 4, function="n_relu")
    with pytest.raises(ValueError, match="channels must be a positive int"):
        cnn.FourierELU(cs.SO2(), 0, [(0,)], 4)
    with pytest.raises(TypeError, match="gspace must be"):
        cnn.FourierELU("SO2", 1, [(0,)], 4)
    with pytest.raises(ValueError, match="either elements= or grid arguments"):
        FourierSampling(cs.SO2(), [(0,)], 4, elements=[0.0])
    m = cnn.FourierELU(cs.SO2(), 2, [(0,), (1,)], 4)
    with pytest.raises(ValueError, match=r"input must have shape \[N, 6"):
        m(torch.randn(1, 5, 3, 3))


@pytest.mark.parametrize("case", ["O2_N8", "SO3_cube", "SO2_out"])
def test_export(float64, case):
    m = EXACT[case]()
    d = m.in_type.group.space.dimension
    x = torch.randn(2, m.in_type.size, *(3,) * d)
    plain = cnn.export(m)
    assert not any(hasattr(x, "in_type") for x in plain.modules())  # no field types left
    torch.testing.assert_close(plain(x), m(x), atol=1e-12, rtol=0)
    assert cnn.export(plain) is not None
