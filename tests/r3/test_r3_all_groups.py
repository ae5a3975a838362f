"""Every group acting on R³, not only those of the escnn fixtures: its layer bases are exactly
equivariant on the grid symmetries it contains and steerable at arbitrary points for random
elements, and the CUDA-free backends agree."""
from __future__ import annotations

import math

import numpy as np
import pytest

import cupysteer as cs
from cupysteer import r3

GROUPS = {
    "SO3": lambda: r3.SO3(2), "O3": lambda: r3.O3(2),
    "O": r3.Octahedral, "Oh": r3.FullOctahedral, "I": r3.Icosahedral,
    "Ih": r3.FullIcosahedral,
    "C4z": lambda: r3.RotationsZ(4), "SO2z": lambda: r3.RotationsZ(-1, maximum_frequency=3),
    "D3z": lambda: r3.DihedralZ(3), "D4z_axis0": lambda: r3.DihedralZ(4, axis=0.0),
    "O2z": lambda: r3.DihedralZ(-1, maximum_frequency=2),
    "conical4": lambda: r3.Conical(4), "conical3_axis": lambda: r3.Conical(3, axis=0.3),
    "conicalO2": lambda: r3.Conical(-1, maximum_frequency=2),
    "cyl4": lambda: r3.Cylindrical(4), "cylSO2": lambda: r3.Cylindrical(-1, maximum_frequency=2),
    "fullcyl2": lambda: r3.FullCylindrical(2), "fullcyl3_axis": lambda: r3.FullCylindrical(
        3, axis=math.pi / 3),
    "fullcylO2": lambda: r3.FullCylindrical(-1, maximum_frequency=2),
    "mirror": r3.Mirror, "mirror_axis0": lambda: r3.Mirror(axis=0.0),
    "inv": r3.Inversion, "trivial": r3.Trivial3,
}


def field_types(G):
    """A field type mixing the group's irreps (and its regular representation when the group is
    finite and small) on both sides."""
    irreps = list(G.irreps())[:4]
    ins = [psi.representation for psi in irreps]
    outs = [psi.representation for psi in irreps[::-1]]
    if G.is_finite and G.order <= 24:
        outs.append(G.regular_representation)
    return cs.FieldType(G, ins), cs.FieldType(G, outs)


@pytest.fixture(scope="module", params=sorted(GROUPS))
def case(request):
    G = GROUPS[request.param]()
    tin, tout = field_types(G)
    return request.param, G, tin, tout


def test_grid_equivariance_is_exact(case):
    name, G, tin, tout = case
    basis = cs.LayerBasis(tin, tout, 3, cache=False)
    w = np.random.default_rng(1).standard_normal(basis.dim)
    errors = cs.equivariance_errors(basis, basis.expand(w))
    assert len(errors) >= 1
    assert max(errors.values()) < 1e-12, (name, errors)
    if name in ("trivial", "conical3_axis"):  # these contain no other cube symmetry
        assert len(errors) == 1, name  # only the identity (covered by the next test)
    else:
        assert len(errors) >= 2, name  # a non-trivial grid symmetry was really checked


def test_steerable_at_arbitrary_points(case):
    name, G, tin, tout = case
    rng = np.random.default_rng(2)
    pts = rng.uniform(-2.0, 2.0, size=(30, 3))
    a = cs.LayerBasis(tin, tout, 5, points=pts, cache=False)
    w = rng.standard_normal(a.dim)
    Ka = a.expand(w)
    for g in G.sample(2, rng):
        b = cs.LayerBasis(tin, tout, 5, points=pts @ np.asarray(g).T, cache=False)
        assert b.dim == a.dim
        want = np.einsum("ab,bcp,dc->adp", tout.representation(g), Ka, tin.representation(g))
        np.testing.assert_allclose(b.expand(w), want, atol=1e-10 * max(1.0, np.abs(Ka).max()))


FINITE = sorted(n for n, make in GROUPS.items() if make().is_finite)


@pytest.mark.parametrize("name", FINITE)
def test_dimension_is_the_character_formula(name):
    """Per irreps pair and degree l: #coefficient tensors = ⟨χ_out, χ_in χ_l⟩ (escnn's count),
    checked against the average of the characters over the finite group."""
    G = GROUPS[name]()
    tin, tout = field_types(G)
    from cupysteer.r3 import harmonic_coefficients, harmonic_matrix
    els = G.elements()
    for pin in tin.representations[:2]:
        for pout in tout.representations[:2]:
            psi_i, psi_o = pin.irreps[0], pout.irreps[0]
            for l in range(3):
                chi = (np.trace(psi_o.evaluate(els), axis1=1, axis2=2)
                       * np.trace(psi_i.evaluate(els), axis1=1, axis2=2)
                       * np.trace(harmonic_matrix(l, els), axis1=1, axis2=2)).mean()
                assert len(harmonic_coefficients(psi_i, psi_o, l)) == round(chi), (name, l)
