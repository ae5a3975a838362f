"""Restriction and disentangling: cupysteer.restriction (core) and cupysteer.torch.nn's
RestrictionModule / DisentangleModule.

* equal to e2cnn 0.2.3 on tests/data/restriction (made by scripts/make_restriction_fixtures.py
  in e2cnn's environment): restricted representations (irreps, change of basis, ρ_H(h) on the
  subgroup's testing elements, parent elements), e2cnn.group.disentangle's permutation and
  representations, DisentangleModule's output;
* properties: a restricted map transforms by the subgroup (transform(y, out, h) =
  transform(x, in, ι(h))), a G-model → restriction → H-model is H-equivariant; the
  disentangling matrix is orthogonal, intertwines ρ_in and ρ_out and (to_irreps) gives irreps;
* copies, pickles, state dicts (e2cnn's derived keys dropped), torch.compile, clear errors.
"""
import copy
import json
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import cupysteer as cs  # noqa: E402
from cupysteer import r3  # noqa: E402
from cupysteer.compat import e2cnn as e  # noqa: E402
from cupysteer.restriction import FieldDisentangling, FieldRestriction, disentangle  # noqa: E402
from cupysteer.torch import SteerableConv2d  # noqa: E402
from cupysteer.torch import nn as cnn  # noqa: E402

from _paths import DATA  # noqa: E402

FIX = DATA / "restriction"
META = json.loads((FIX / "cases.json").read_text())
ARRAYS = np.load(FIX / "arrays.npz")


def group(spec):
    kind, N, f = spec
    if kind == "rot":
        return cs.SO2(f) if N == -1 else cs.CyclicGroup(N)
    return cs.O2(f) if N == -1 else cs.DihedralGroup(N)


def _id(v):
    return tuple(v) if isinstance(v, list) else v


def representation(G, spec):
    if spec == "regular":
        return G.regular_representation
    if spec == "trivial":
        return G.trivial_representation
    if spec[0] == "irrep":
        return G.irrep(*spec[1:]).representation
    if spec[0] == "quotient":
        return G.quotient_representation(_id(spec[1]))
    return cs.directsum([representation(G, s) for s in spec[1]])


def field_type(case):
    G = group(case["gspace"])
    return cs.FieldType(G, [representation(G, r) for r in case["reps"]])


def element(e):
    return tuple(e) if isinstance(e, list) else e


def _same_rep(ours, theirs):
    assert [p.name for p in ours.irreps] == theirs["irreps"]
    np.testing.assert_allclose(ours.change_of_basis, theirs["change_of_basis"], atol=1e-10)


CASES = list(enumerate(META["cases"]))
IDS = [f"{c['gspace'][0]}{c['gspace'][1]}-{c['id']}" for _, c in CASES]


@pytest.mark.parametrize("i,case", CASES, ids=IDS)
def test_restriction_equals_e2cnn(i, case):
    t = field_type(case)
    r = FieldRestriction(t, _id(case["id"]))
    for ours, theirs in zip(r.out_type.representations, case["restricted"], strict=True):
        _same_rep(ours, theirs)
    hs = [element(h) for h in case["elements"]]
    np.testing.assert_allclose(r.out_type.representation.evaluate(hs), ARRAYS[f"{i}.rho"],
                               atol=1e-10)
    parents = r.parent_elements(hs)
    G = t.group
    np.testing.assert_allclose(G.action_matrices(parents),
                               G.action_matrices([element(g) for g in case["parent_elements"]]),
                               atol=1e-10)
    np.testing.assert_allclose(t.representation.evaluate(parents), ARRAYS[f"{i}.rho"],
                               atol=1e-10)


@pytest.mark.parametrize("i,case", CASES, ids=IDS)
def test_disentangle_equals_e2cnn(i, case):
    t = field_type(case)
    for key, ftype, fields in (("unrestricted", t, case["disentangle"]),
                               ("restricted", t.restrict(_id(case["id"])),
                                case["disentangle_restricted"])):
        for rep, theirs in zip(ftype.representations, fields, strict=True):
            order, parts = disentangle(rep)
            np.testing.assert_array_equal(np.eye(rep.size)[order], theirs["permutation"])
            for ours, their in zip(parts, theirs["reps"], strict=True):
                _same_rep(ours, their)
        x = ARRAYS[f"{i}.{key}.disentangle_input"]
        y = cnn.DisentangleModule(ftype)(torch.as_tensor(x))
        np.testing.assert_allclose(y.numpy(), ARRAYS[f"{i}.{key}.disentangle_output"],
                                   atol=1e-6)


def _types():
    D4, C8 = cs.DihedralGroup(4), cs.CyclicGroup(8)
    t4 = cs.FieldType(D4, [D4.regular_representation, D4.irrep(1, 1).representation,
                           D4.irrep(1, 2).representation])
    t8 = cs.FieldType(C8, [C8.regular_representation, C8.irrep(2).representation,
                           C8.irrep(3).representation])
    return ([(t4, id_) for id_ in [(0, 2), (None, 4), (0, 1), (1, 1), (None, 1)]]
            + [(t8, id_) for id_ in (4, 2)])


@pytest.mark.parametrize("t,id_", _types())
def test_restricted_maps_transform_by_the_subgroup(float64, t, id_):
    m = cnn.RestrictionModule(t, id_)
    x = torch.randn(2, t.size, 6, 6)
    y = m(x)
    assert y is x and m.out_type == t.restrict(id_)
    H = m.out_type.group
    checked = 0
    for h, _ in cnn.grid_elements(H, (6, 6)):
        g = m.restriction.parent_elements([h])[0]
        torch.testing.assert_close(cnn.transform(y, m.out_type, h), cnn.transform(x, t, g),
                                   rtol=0, atol=1e-12)
        checked += 1
    assert checked >= 1


def test_g_model_restricted_to_h_model_is_h_equivariant(float64):
    """conv (D4) → restriction to C4 → conv (C4, with C4-only fields) is C4-equivariant (and
    not D4-equivariant: the C4 layer breaks the reflections)."""
    D4 = cs.DihedralGroup(4)
    t0 = cs.FieldType(D4, [D4.trivial_representation])
    t1 = cs.FieldType(D4, [D4.regular_representation] * 2)
    restrict = cnn.RestrictionModule(t1, (None, 4))
    C4 = restrict.out_type.group
    t2 = cs.FieldType(C4, [C4.regular_representation, C4.irrep(1).representation])
    model = torch.nn.Sequential(SteerableConv2d(t0, t1, 3, padding=1), restrict,
                                SteerableConv2d(restrict.out_type, t2, 3, padding=1)).eval()
    errors = cnn.check_equivariance(model, t0.restrict((None, 4)), t2, atol=1e-10)
    assert len(errors) == 4


@pytest.mark.parametrize("t,id_", _types())
@pytest.mark.parametrize("to_irreps", [False, True])
def test_disentangling_is_orthogonal_and_intertwines(t, id_, to_irreps):
    for ftype in (t, t.restrict(id_)):
        d = FieldDisentangling(ftype, to_irreps)
        M = d.matrix
        np.testing.assert_allclose(M @ M.T, np.eye(ftype.size), atol=1e-12)
        G = ftype.group
        els = list(G.elements()) if G.is_finite else list(G.testing_elements())
        rin = ftype.representation.evaluate(els)
        rout = d.out_type.representation.evaluate(els)
        np.testing.assert_allclose(M @ rin, rout @ M, atol=1e-10)
        assert d.out_type.size == ftype.size and d.field_map[-1] == len(ftype) - 1
        if to_irreps:
            assert d.permutation is None
            assert all(len(r.irreps) == 1 and np.allclose(r.change_of_basis, np.eye(r.size))
                       for r in d.out_type.representations)
        else:
            np.testing.assert_array_equal(M, np.eye(ftype.size)[d.permutation])


@pytest.mark.parametrize("to_irreps", [False, True])
def test_disentangle_module_is_equivariant(float64, to_irreps):
    D4 = cs.DihedralGroup(4)
    t = cs.FieldType(D4, [D4.regular_representation, D4.irrep(1, 1).representation,
                          cs.directsum([D4.irrep(1, 2), D4.trivial_irrep])]).restrict((0, 1))
    m = cnn.DisentangleModule(t, to_irreps=to_irreps)
    assert len(m.out_type) > len(t)
    cnn.check_equivariance(m, t, m.out_type, atol=1e-10)


def test_compat_types_keep_their_gspace():
    gs = e.FlipRot2dOnR2(4)
    t = e.FieldType(gs, [gs.regular_repr, gs.irrep(1, 1)])
    r = cnn.RestrictionModule(t, (0, 1))
    assert isinstance(r.out_type, e.FieldType) and r.out_type.gspace.fibergroup == \
        cs.DihedralGroup(4).subgroup((0, 1)).group
    d = cnn.DisentangleModule(r.out_type)
    assert isinstance(d.out_type, e.FieldType) and len(d.out_type) == 3


def test_copies_pickles_state_dicts_and_compile(float64):
    D4 = cs.DihedralGroup(4)
    t = cs.FieldType(D4, [D4.regular_representation, D4.irrep(1, 1).representation])
    r = cnn.RestrictionModule(t, (0, 1))
    model = torch.nn.Sequential(r, cnn.DisentangleModule(r.out_type))
    x = torch.randn(2, t.size, 5, 5)
    y = model(x)
    for other in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        torch.testing.assert_close(other(x), y, rtol=0, atol=0)
    assert model.state_dict() == {}  # nothing to save: all derived from the field types
    # e2cnn's derived buffers are accepted and dropped
    d = cnn.DisentangleModule(r.out_type, to_irreps=True)
    d.load_state_dict({"change_of_basis_D4:regular": torch.eye(8),
                       "fiber_indices_D4:regular": torch.arange(8)})
    torch.testing.assert_close(d(x), torch.einsum("ab,nbhw->nahw",
                                                  torch.tensor(d.disentangling.matrix), x))
    for obj in (r.restriction, d.disentangling):
        assert pickle.loads(pickle.dumps(obj)) == obj and hash(copy.deepcopy(obj)) == hash(obj)
    compiled = torch.compile(torch.nn.Sequential(r, d), backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(x), d(x), rtol=0, atol=1e-12)


def test_core_objects_are_immutable():
    G = cs.CyclicGroup(8)
    t = cs.FieldType(G, [G.regular_representation, G.irrep(2).representation])
    r, d = FieldRestriction(t, 4), FieldDisentangling(t.restrict(4))
    for obj in (r, d):
        with pytest.raises(AttributeError, match="immutable"):
            obj.out_type = t
    with pytest.raises(ValueError, match="read-only"):
        d.matrix[0, 0] = 2.0
    with pytest.raises(ValueError, match="read-only"):
        d.permutation[0] = 1


def test_clear_errors():
    G = cs.CyclicGroup(8)
    t = cs.FieldType(G, [G.regular_representation])
    with pytest.raises(ValueError, match="subgroup_id 3 is not a subgroup of C8; expected"):
        FieldRestriction(t, 3)
    with pytest.raises(TypeError, match="field_type must be a cupysteer FieldType"):
        FieldRestriction("regular", 4)
    with pytest.raises(TypeError, match="to_irreps must be a bool"):
        FieldDisentangling(t, "yes")
    with pytest.raises(TypeError, match="rep must be a cupysteer Representation"):
        disentangle(t)
    O = r3.Octahedral()
    with pytest.raises(NotImplementedError, match="cannot restrict .*planar groups"):
        cnn.RestrictionModule(cs.FieldType(O, [O.regular_representation]), 4)
    with pytest.raises(ValueError, match=r"input must have shape \[N, 8"):
        cnn.RestrictionModule(t, 4)(torch.zeros(1, 3, 4, 4))


@pytest.mark.parametrize("to_irreps", [False, True])
def test_gradcheck(float64, to_irreps):
    D4 = cs.DihedralGroup(4)
    t = cs.FieldType(D4, [D4.irrep(1, 1).representation, D4.regular_representation])
    m = cnn.DisentangleModule(t.restrict((0, 1)), to_irreps)
    x = torch.randn(1, t.size, 2, 2, requires_grad=True)
    assert torch.autograd.gradcheck(m, (x,))
    assert torch.autograd.gradcheck(cnn.RestrictionModule(t, (0, 1)), (x,))
