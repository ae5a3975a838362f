"""Groups acting on R³ (cupysteer.r3.groups) and their irreps, against escnn 1.0.11 fixtures."""
import json
import math
import pickle

import numpy as np
import pytest

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
    axis_angle_matrix,
)

from _paths import DATA  # noqa: E402

DATA = DATA / "escnn3d"
INDEX = json.loads((DATA / "index.json").read_text())

FINITE = [Octahedral(), FullOctahedral(), Icosahedral(), FullIcosahedral(), RotationsZ(1),
          RotationsZ(2), RotationsZ(5), DihedralZ(2), DihedralZ(3), DihedralZ(4, 0.0),
          Conical(3), Conical(4, 0.3), Cylindrical(2), Cylindrical(3), FullCylindrical(3),
          FullCylindrical(4, 0.0), Mirror(), Mirror(0.4), Inversion(), Trivial3()]
CONTINUOUS = [SO3(3), O3(3), RotationsZ(-1, 3), DihedralZ(-1, 3), DihedralZ(-1, 0.2, 3),
              Conical(-1, 3), Conical(-1, 0.7, 3), Cylindrical(-1, 3), FullCylindrical(-1, 3),
              FullCylindrical(-1, 1.1, 3)]
ALL = FINITE + CONTINUOUS


def _elements(G, n=24, seed=0):
    if G.is_finite:
        return G.elements()
    return np.concatenate([G.sample(n, np.random.default_rng(seed)), G.testing_elements()])


@pytest.mark.parametrize("G", ALL, ids=repr)
def test_irreps_are_orthogonal_homomorphisms(G):
    X = _elements(G)
    rng = np.random.default_rng(1)
    if G.is_finite and G.order <= 48:
        i, j = np.divmod(np.arange(len(X) ** 2), len(X))
    else:
        i, j = rng.integers(0, len(X), 400), rng.integers(0, len(X), 400)
    for psi in G.irreps():
        A = psi.evaluate(X)
        assert A.shape == (len(X), psi.dim, psi.dim)
        np.testing.assert_allclose(np.swapaxes(A, 1, 2) @ A,
                                   np.broadcast_to(np.eye(psi.dim), A.shape), atol=1e-12)
        np.testing.assert_allclose(psi.evaluate(X[i] @ X[j]), A[i] @ A[j], atol=1e-12)
        np.testing.assert_allclose(psi(np.eye(3)), np.eye(psi.dim), atol=1e-13)
        assert psi.evaluate_split(X[:3], None).shape == (len(X[:3]), psi.dim, psi.dim)
        assert psi.character(X[0]) == pytest.approx(np.trace(A[0]))


@pytest.mark.parametrize("G", FINITE, ids=repr)
def test_finite_group_structure_and_characters(G):
    E = G.elements()
    assert E.shape == (G.order, 3, 3)
    # distinct, closed under products, containing the identity
    idx = element_indices(E, np.einsum("iab,jbc->ijac", E, E).reshape(-1, 3, 3))
    assert (idx >= 0).all() and len(np.unique(element_indices(E, E))) == G.order
    assert (element_indices(E, np.eye(3)[None]) >= 0).all()
    irreps = G.irreps()
    chars = np.stack([np.trace(p.evaluate(E), axis1=1, axis2=2) for p in irreps])
    gram = chars @ chars.T / G.order
    sos = np.array([p.sum_of_squares_constituents for p in irreps])
    np.testing.assert_allclose(gram, np.diag(sos), atol=1e-10)
    assert sum(p.dim ** 2 / p.sum_of_squares_constituents for p in irreps) == G.order
    assert irreps[0].is_trivial and not any(p.is_trivial for p in irreps[1:])
    # generators generate the group
    gens = G.generators()
    frontier = [np.eye(3)]
    found = element_indices(E, np.eye(3)[None]).tolist()
    while frontier:
        new = []
        for g in frontier:
            for k in element_indices(E, gens @ g):
                if k not in found:
                    found.append(int(k))
                    new.append(E[k])
        frontier = new
    assert len(found) == G.order


@pytest.mark.parametrize("G", ALL, ids=repr)
def test_constraint_elements_fix_only_trivial_vectors(G):
    C = G.constraint_elements()
    assert G.contains(C).all()
    for psi in G.irreps():
        A = psi.evaluate(C)
        stacked = np.concatenate([a - np.eye(psi.dim) for a in A])
        null = psi.dim - np.linalg.matrix_rank(stacked, tol=1e-8)
        assert null == (1 if psi.is_trivial else 0), psi


@pytest.mark.parametrize("G", ALL, ids=repr)
def test_testing_elements_and_sampling(G):
    T = G.testing_elements()
    assert G.contains(T).all() and np.abs(T[0] - np.eye(3)).max() < 1e-12
    S = G.sample(5, np.random.default_rng(3))
    assert S.shape == (5, 3, 3) and G.contains(S).all()
    np.testing.assert_array_equal(S, G.sample(5, np.random.default_rng(3)))


def test_testing_elements_contain_grid_elements():
    rz90 = axis_angle_matrix([0, 0, 1], math.pi / 2)
    assert any(np.abs(t - rz90).max() < 1e-12 for t in Octahedral().testing_elements())
    assert any(np.abs(t + np.eye(3)).max() < 1e-12 for t in FullOctahedral().testing_elements())
    assert any(np.abs(t - np.diag([-1.0, 1, 1])).max() < 1e-12 for t in Mirror().testing_elements())
    assert len(Icosahedral().testing_elements()) >= 4  # I, Rx/Ry/Rz(180°)


# ---- escnn element sets -----------------------------------------------------------------
def _pi_axes(G):
    """Angles (degrees, mod 180) of the in-plane π-rotation axes of a group."""
    out = []
    for m in G.elements():
        if np.linalg.det(m) > 0 and m[2, 2] < -0.5:
            w, v = np.linalg.eigh((m + m.T) / 2)
            a = v[:, np.argmax(w)]
            out.append(round(math.degrees(math.atan2(a[1], a[0])) % 180, 6) % 180)
    return sorted(out)


def test_escnn_element_sets_of_planar_groups():
    assert _pi_axes(DihedralZ(3)) == [30.0, 90.0, 150.0]
    assert _pi_axes(DihedralZ(3, 0.0)) == [0.0, 60.0, 120.0]
    assert _pi_axes(FullCylindrical(3).factor) == [45.0, 105.0, 165.0]
    assert _pi_axes(FullCylindrical(3, 0.0).factor) == [0.0, 60.0, 120.0]

    def has(G, m):
        return bool(G.contains(np.asarray(m, float)[None])[0])

    rz90, rx180 = axis_angle_matrix([0, 0, 1], math.pi / 2), np.diag([1.0, -1, -1])
    assert has(DihedralZ(4), rz90) and has(DihedralZ(4), rx180)
    assert has(DihedralZ(4), np.diag([-1.0, 1, -1]))
    assert has(DihedralZ(3), np.diag([-1.0, 1, -1])) and not has(DihedralZ(3), rx180)
    assert has(Cylindrical(4), rz90) and has(Cylindrical(4), -np.eye(3))
    assert has(Cylindrical(4), np.diag([1.0, 1, -1]))
    assert has(Conical(3), np.diag([-1.0, 1, 1])) and has(Mirror(), np.diag([-1.0, 1, 1]))
    # conicalOnR3/mirOnR3(axis): mirror plane spanned by z and the direction at angle −axis
    a = 0.4
    d = np.array([math.cos(-a), math.sin(-a), 0.0])
    M = Mirror(a).elements()[1]
    np.testing.assert_allclose(M @ d, d, atol=1e-15)
    assert has(Conical(5, a), M)
    for G in (DihedralZ(5, 0.3), Conical(5, 0.3), RotationsZ(5)):
        f, r, ok = G.to_planar(G.elements())
        assert ok.all()
        np.testing.assert_allclose(G.planar.action_matrices(list(G.planar.elements())),
                                   G.elements()[:, :2, :2], atol=1e-14)


def test_names_kinds_orders():
    assert [G.name for G in (SO3(), O3(), Octahedral(), FullOctahedral(), Icosahedral(),
                             FullIcosahedral())] == ["SO(3)", "O(3)", "Octahedral",
                                                     "FullOctahedral", "Icosahedral",
                                                     "FullIcosahedral"]
    assert [G.name for G in (RotationsZ(4), RotationsZ(-1), DihedralZ(4), Conical(-1),
                             Mirror(), Inversion(), Trivial3(), Cylindrical(-1), Cylindrical(2),
                             Cylindrical(3), FullCylindrical(-1), FullCylindrical(3))] == \
        ["C4", "SO(2)", "D4", "O(2)", "C2", "C2", "C1", "Cylindrical", "Klein4",
         "CylindricalDiscrete", "FullCylindrical", "FullCylindricalDiscrete"]
    assert [G.order for G in (SO3(), Octahedral(), FullIcosahedral(), FullCylindrical(4))] == \
        [-1, 24, 120, 16]
    assert {G.kind for G in FINITE + CONTINUOUS} == {
        "SO3", "O3", "O", "Oh", "I", "Ih", "CN", "DN", "conical", "cyl", "fullcyl", "mirror",
        "inv", "trivial"}
    assert all(G.space.dimension == 3 for G in ALL)
    assert FullOctahedral().irrep((1,), (-1,), 0).name == "irrep_[(1,),(-1,)](0)"
    assert FullCylindrical(4).irrep((0,), (1, 1)).id == ((0,), (1, 1), 0)
    assert O3().irrep(1, 0).name == "irrep_1,0" and Octahedral().irrep(-1).name == "irrep_-1"
    assert RotationsZ(-1).irrep(2).type == "C"
    assert RotationsZ(-1).irrep(2).sum_of_squares_constituents == 2
    assert Cylindrical(5).irrep((1,), (2,), 0).type == "C" and DihedralZ(5).irrep(1, 2).type == "R"


# ---- fixtures -------------------------------------------------------------------------------
_FACTORY = {"so3": lambda s: SO3(s[1]), "o3": lambda s: O3(s[1]), "octa": lambda s: Octahedral(),
            "ico": lambda s: Icosahedral(), "rot2d": lambda s: RotationsZ(s[1], s[2]),
            "inv": lambda s: Inversion()}


@pytest.mark.parametrize("cfg", INDEX["configs"], ids=lambda c: c["name"])
def test_irreps_match_escnn_fixtures(cfg):
    G = _FACTORY[cfg["gspace"]["spec"][0]](cfg["gspace"]["spec"])
    assert G.name == cfg["gspace"]["group"] and G.order == cfg["gspace"]["order"]
    z = np.load(DATA / cfg["file"])
    gens = [z[f"action_gen{g['j']}"] for g in cfg["generators"]]
    assert G.contains(np.stack(gens)).all()
    for q in cfg["irreps"]:
        psi = G.irrep(*q["irrep_id"])
        assert (psi.name, psi.dim, psi.type) == (q["name"], q["size"], q["type"])
        for j, g in enumerate(gens):
            np.testing.assert_allclose(psi(g), z[f"irrep{q['id']}_gen{j}"], atol=1e-12, rtol=0)
    if "elements_action" in z.files:
        np.testing.assert_allclose(G.elements(), z["elements_action"], atol=1e-15, rtol=0)
        named = [(g["name"], z[f"action_gen{g['j']}"]) for g in cfg["generators"]]
        escnn_gens = [m for n, m in named if n.startswith("group_generator_")]
        np.testing.assert_allclose(G.generators(), np.stack(escnn_gens), atol=1e-15)


def test_so3_o3_irreps_are_wigner():
    from cupysteer.r3.so3 import wigner_D
    R = SO3().sample(7, np.random.default_rng(5))
    for l in range(4):
        np.testing.assert_allclose(SO3().irrep(l).evaluate(R), wigner_D(l, R), atol=1e-13)
        for j in (0, 1):
            np.testing.assert_allclose(O3().irrep(j, l).evaluate(-R), (-1) ** j * wigner_D(l, R),
                                       atol=1e-13)
    P = np.array([[0.0, 0, 1], [1, 0, 0], [0, 1, 0]])
    np.testing.assert_allclose(SO3().irrep(1).evaluate(R), P.T @ R @ P, atol=1e-13)


# ---- errors, pickling, equality -------------------------------------------------------------
@pytest.mark.parametrize("G, bad", [(SO3(), (-1,)), (SO3(), (1, 2)), (O3(), (2, 1)),
                                    (Octahedral(), (4,)), (Icosahedral(), (-1,)),
                                    (RotationsZ(4), (3,)), (DihedralZ(4), (0, 1)),
                                    (FullOctahedral(), ((2,), (0,), 0)),
                                    (FullOctahedral(), ((0,), (7,), 0)), (Mirror(), (2,))],
                         ids=repr)
def test_bad_irrep_ids(G, bad):
    with pytest.raises(ValueError, match="irrep id"):
        G.irrep(*bad)


def test_non_members_and_bad_elements():
    rz45 = axis_angle_matrix([0, 0, 1], math.pi / 4)
    with pytest.raises(ValueError, match="is not in Octahedral"):
        Octahedral().irrep(1)(rz45)
    with pytest.raises(ValueError, match="not in"):
        SO3().irrep(1)(-np.eye(3))
    with pytest.raises(ValueError, match="not orthogonal"):
        O3().irrep(0, 1)(2 * np.eye(3))
    with pytest.raises(ValueError, match="shape"):
        SO3().split_batch(np.eye(4))
    with pytest.raises(ValueError, match="continuous"):
        SO3().elements()
    for bad in (dict(N=0), dict(N=1.5), dict(N=True)):
        with pytest.raises(ValueError, match="N must be"):
            RotationsZ(**bad)
    with pytest.raises(ValueError, match="Mirror"):
        Conical(1)
    with pytest.raises(ValueError, match="Inversion"):
        Cylindrical(1)
    with pytest.raises(ValueError, match="axis"):
        DihedralZ(3, axis="x")
    with pytest.raises(ValueError, match="maximum_frequency"):
        SO3(-1)
    mats, r = Octahedral().split_batch(list(Octahedral().elements()[:3]))
    assert mats.shape == (3, 3, 3) and r is None


@pytest.mark.parametrize("G", ALL, ids=repr)
def test_pickle_equality_hash(G):
    H = pickle.loads(pickle.dumps(G))
    assert H == G and hash(H) == hash(G) and repr(H) == repr(G)
    psi = G.irreps()[-1]
    phi = pickle.loads(pickle.dumps(psi))
    assert phi == psi and hash(phi) == hash(psi) and phi.name == psi.name
    with pytest.raises(AttributeError):
        G.maximum_frequency = 7


def test_equality_semantics():
    assert SO3(2) == SO3(5) and DihedralZ(4) != Conical(4) and Mirror() != Inversion()
    assert DihedralZ(4, 0.0) != DihedralZ(4) and RotationsZ(4) == RotationsZ(4, 3)
    assert len(SO3(5).irreps()) == 6 and len(O3(1).irreps()) == 4


def test_error_hints_for_tuple_ids_and_batched_calls():
    import numpy as np

    from cupysteer import r3
    G = r3.O3()
    with pytest.raises(ValueError, match=r"did you mean irrep\(\*\(1, 1\)\)"):
        G.irrep((1, 1))
    rho = G.irrep(1, 1).representation
    with pytest.raises(ValueError, match=r"use \.evaluate\(batch\)"):
        rho(np.stack([np.eye(3)] * 2))
    np.testing.assert_allclose(rho.evaluate(np.stack([np.eye(3), -np.eye(3)])),
                               [np.eye(3), -np.eye(3)], atol=1e-14)
