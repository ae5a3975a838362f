"""Regular, quotient and standard representations of the R³ groups
(cupysteer.r3.representations)."""
import json
import pickle

import numpy as np
import pytest

from cupysteer.r3 import representations as reps
from cupysteer.r3._finite import element_indices
from cupysteer.r3.groups import (
    O3,
    SO3,
    Conical,
    Cylindrical,
    DihedralZ,
    FullCylindrical,
    FullIcosahedral,
    FullOctahedral,
    Icosahedral,
    Inversion,
    Mirror,
    Octahedral,
    RotationsZ,
    Trivial3,
)

from _paths import DATA  # noqa: E402

DATA = DATA / "escnn3d"
INDEX = {c["name"]: c for c in json.loads((DATA / "index.json").read_text())["configs"]}

FINITE = [Octahedral(), FullOctahedral(), Icosahedral(), FullIcosahedral(), RotationsZ(1),
          RotationsZ(2), RotationsZ(6), DihedralZ(3), DihedralZ(4, 0.0), Conical(4, 0.3),
          Cylindrical(2), Cylindrical(3), FullCylindrical(3), Mirror(0.4), Inversion(), Trivial3()]
CONTINUOUS = [SO3(), O3(), RotationsZ(-1), DihedralZ(-1), DihedralZ(-1, 0.3), Conical(-1),
              Conical(-1, 0.7), Cylindrical(-1), FullCylindrical(-1), FullCylindrical(-1, 1.1)]

QUOTIENTS = [(Octahedral(), (False, 4), 6), (Octahedral(), (False, 3), 8),
             (Octahedral(), (True, 1), 12), (Octahedral(), (False, 2), 12),
             (Octahedral(), (False, 1), 24), (Octahedral(), "octa", 1),
             (Icosahedral(), (False, 5), 12), (Icosahedral(), (False, 3), 20),
             (Icosahedral(), (False, 2), 30), (Icosahedral(), (True, 1), 30),
             (FullOctahedral(), (2, (False, 4)), 6), (FullOctahedral(), (1, (False, 3)), 16),
             (FullIcosahedral(), (2, (False, 5)), 12), (RotationsZ(6), 2, 3),
             (DihedralZ(4), (None, 2), 4), (DihedralZ(4), (0, 1), 4), (Conical(6, 0.3), (1, 3), 2),
             (Cylindrical(4), (2, 2), 2), (Mirror(), 1, 2), (Inversion(), 2, 1)]


def _left_multiplication(G, E, X):
    """P[x][j, i] = 1 iff E_j = x·E_i."""
    n = len(E)
    P = np.zeros((len(X), n, n))
    for k, x in enumerate(X):
        P[k, element_indices(E, x @ E), np.arange(n)] = 1.0
    return P


def _assert_permutations(M):
    assert np.abs(M - np.rint(M)).max() < 1e-9
    R = np.rint(M)
    assert ((R == 0) | (R == 1)).all() and (R.sum(1) == 1).all() and (R.sum(2) == 1).all()


@pytest.mark.parametrize("G", FINITE, ids=repr)
def test_regular_representation(G):
    rho = G.regular_representation
    E = G.elements()
    assert rho.name == "regular" and rho.size == G.order
    Q = rho.change_of_basis
    np.testing.assert_allclose(Q.T @ Q, np.eye(G.order), atol=1e-12)
    M = rho.evaluate(E)
    _assert_permutations(M)
    np.testing.assert_allclose(M, _left_multiplication(G, E, E), atol=1e-10)
    # escnn's irreps list: each ψ d/sos times, in the group's order
    expect = [p for p in G.irreps() for _ in range(p.dim // p.sum_of_squares_constituents)]
    assert list(rho.irreps) == expect
    # Q[g, (ψ, c, i)] = sqrt(dψ/|G|) ψ(g)[i, c]
    col, T = 0, {}
    for k, psi in enumerate(expect):
        c = expect[:k].count(psi)
        T.setdefault(psi, psi.evaluate(E))
        np.testing.assert_allclose(Q[:, col:col + psi.dim],
                                   np.sqrt(psi.dim / G.order) * T[psi][:, :, c], atol=1e-14)
        col += psi.dim


@pytest.mark.parametrize("name, rep_id", [("octa_faces_k5", 1), ("ico_lift_k3", 1),
                                          ("inv_irreps_k3", 2)])
def test_regular_matches_escnn(name, rep_id):
    cfg = INDEX[name]
    z = np.load(DATA / cfg["file"])
    G = {"octa": Octahedral(), "ico": Icosahedral(), "inv": Inversion()}[cfg["gspace"]["spec"][0]]
    rho = G.regular_representation
    assert [list(p.id) for p in rho.irreps] == cfg["representations"][rep_id]["irreps"]
    np.testing.assert_allclose(rho.change_of_basis, z[f"rep{rep_id}_Q"], atol=1e-12)
    for g in cfg["generators"]:
        np.testing.assert_allclose(rho(z[f"action_gen{g['j']}"]), z[f"rep{rep_id}_gen{g['j']}"],
                                   atol=1e-12)


@pytest.mark.parametrize("G, sid, size", QUOTIENTS, ids=lambda x: repr(x))
def test_quotient_representation(G, sid, size):
    rho = G.quotient_representation(sid)
    assert rho.size == size and rho.name == f"quotient[{sid}]"
    Q = rho.change_of_basis
    np.testing.assert_allclose(Q.T @ Q, np.eye(size), atol=1e-12)
    E = G.elements()
    M = rho.evaluate(E)
    _assert_permutations(M)
    np.testing.assert_allclose(M[np.argmax(np.all(np.abs(E - np.eye(3)) < 1e-12, axis=(1, 2)))],
                               np.eye(size), atol=1e-12)
    # a homomorphism, with the subgroup fixing one coset (H itself)
    i, j = np.divmod(np.arange(len(E) ** 2)[:: max(1, len(E) ** 2 // 500)], len(E))
    ij = element_indices(E, E[i] @ E[j])
    np.testing.assert_allclose(M[ij], M[i] @ M[j], atol=1e-10)
    H = G._subgroup_elements(sid)
    assert len(H) * size == G.order
    fixed = np.stack([np.diagonal(rho(h)) > 0.5 for h in H]).all(axis=0)
    assert fixed.sum() >= 1
    # irreps in the group's order, multiplicities ⟨χ_ρ, χ_ψ⟩ / sos
    chi = np.trace(M, axis1=1, axis2=2)
    order = {p: k for k, p in enumerate(G.irreps())}
    assert [order[p] for p in rho.irreps] == sorted(order[p] for p in rho.irreps)
    for psi in G.irreps():
        m = (chi @ np.trace(psi.evaluate(E), axis1=1, axis2=2) / G.order
             / psi.sum_of_squares_constituents)
        assert list(rho.irreps).count(psi) == round(m)


def test_octahedral_faces_quotient_matches_escnn():
    cfg = INDEX["octa_faces_k5"]
    z = np.load(DATA / cfg["file"])
    rho = Octahedral().quotient_representation((False, 4))
    r = cfg["representations"][0]
    assert rho.name == r["name"] == "quotient[(False, 4)]"
    assert [list(p.id) for p in rho.irreps] == r["irreps"]
    for g in cfg["generators"]:
        np.testing.assert_allclose(rho(z[f"action_gen{g['j']}"]), z[f"rep0_gen{g['j']}"],
                                   atol=1e-9)


def test_quotient_escnn_subgroups():
    """escnn's (True, 1) of O and I is the C2 of Rx(180°) (adj⁻¹ ẑ, adj = 120° about (1,1,−1))."""
    for G in (Octahedral(), Icosahedral()):
        H = G._subgroup_elements((True, 1))
        np.testing.assert_allclose(H[1], np.diag([1.0, -1, -1]), atol=1e-12)
    H = Octahedral()._subgroup_elements((False, 3))
    assert any(np.abs(h - np.array([[0.0, 0, 1], [1, 0, 0], [0, 1, 0]])).max() < 1e-12 for h in H)


@pytest.mark.parametrize("G", FINITE + CONTINUOUS, ids=repr)
def test_standard_representation(G):
    rho = G.standard_representation
    assert rho.name == "standard" and rho.size == 3
    X = G.elements() if G.is_finite else G.sample(20, np.random.default_rng(0))
    X = np.concatenate([X, G.testing_elements()])
    np.testing.assert_allclose(rho.evaluate(X), X, atol=1e-12)


def test_standard_so3_is_escnn():
    z = np.load(DATA / "so3_std_k3.npz")
    rho = SO3().standard_representation
    P = np.array([[0.0, 0, 1], [1, 0, 0], [0, 1, 0]])
    assert list(rho.irreps) == [SO3().irrep(1)] and np.array_equal(rho.change_of_basis, P)
    np.testing.assert_array_equal(z["rep1_Q"], P)
    assert list(O3().standard_representation.irreps) == [O3().irrep(1, 1)]
    assert list(Octahedral().standard_representation.irreps) == [Octahedral().irrep(1)]
    assert list(FullOctahedral().standard_representation.irreps) == \
        [FullOctahedral().irrep((1,), (1,), 0)]


def test_determinism_bit_identical():
    for G, sid in [(Octahedral(), (False, 4)), (Icosahedral(), (False, 3)),
                   (FullOctahedral(), (2, (False, 3)))]:
        a = reps._quotient.__wrapped__(G, sid).change_of_basis
        b = reps._quotient.__wrapped__(G, sid).change_of_basis
        assert np.array_equal(a, b)
        c = reps.regular_representation.__wrapped__(G).change_of_basis
        assert np.array_equal(c, reps.regular_representation.__wrapped__(G).change_of_basis)
    E = Icosahedral().elements()
    i1, Q1 = reps.decompose(Icosahedral(), E)
    i2, Q2 = reps.decompose(Icosahedral(), E.copy())
    assert i1 == i2 and np.array_equal(Q1, Q2)


def test_errors():
    with pytest.raises(ValueError, match="continuous"):
        SO3().regular_representation
    with pytest.raises(ValueError, match="continuous"):
        RotationsZ(-1).quotient_representation(2)
    with pytest.raises(ValueError, match="subgroup_id"):
        Octahedral().quotient_representation((False, 5))
    with pytest.raises(ValueError, match="subgroup_id"):
        RotationsZ(6).quotient_representation(4)
    with pytest.raises(ValueError, match="subgroup_id"):
        FullOctahedral().quotient_representation((False, 4))
    with pytest.raises(ValueError, match="not a representation|could not be decomposed"):
        reps.decompose(RotationsZ(4), 0.5 * np.ones((4, 2, 2)))
    with pytest.raises(ValueError, match="cupysteer.r3"):
        reps.regular_representation("O")


def test_pickle_and_field_type():
    from cupysteer.field_type import FieldType
    for rho in (Octahedral().regular_representation,
                Octahedral().quotient_representation((False, 4)),
                SO3().standard_representation, FullCylindrical(-1).standard_representation,
                O3().irrep(1, 1).representation):
        r2 = pickle.loads(pickle.dumps(rho))
        assert r2 == rho and hash(r2) == hash(rho)
    G = Octahedral()
    ft = FieldType(G, [G.regular_representation, G.irrep(2), G.standard_representation])
    assert ft.size == 24 + 2 + 3
