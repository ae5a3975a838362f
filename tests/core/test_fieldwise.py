"""cupysteer.fieldwise: the field-wise structure of a field type (NumPy, both spaces).

Pointwise-ness and triviality are checked against the representation matrices, not names;
the invariances documented for norms and the invariant subspace are verified on the group's
elements."""
import copy
import pickle

import numpy as np
import pytest

import cupysteer as cs
from cupysteer import r3
from cupysteer.fieldwise import FieldGroup, FieldStructure, check_elements


def _c4_type():
    G = cs.CyclicGroup(4)
    return cs.FieldType(G, [G.regular_representation, G.irrep(1), G.trivial_representation,
                            G.quotient_representation(2), G.regular_representation])


def _pointwise_and_trivial(G, reps):
    s = FieldStructure(cs.FieldType(G, reps))
    return s.pointwise.tolist(), s.trivial.tolist()


def test_classification_planar_finite():
    G = cs.DihedralGroup(4)
    reps = [G.trivial_representation, G.irrep(1, 0), G.irrep(1, 1), G.regular_representation,
            G.quotient_representation((None, 2)), G.quotient_representation((0, 1))]
    pw, triv = _pointwise_and_trivial(G, reps)
    # the sign irrep (1, 0) is ±1: not a permutation
    assert pw == [True, False, False, True, True, True]
    assert triv == [True, False, False, False, False, False]


def test_classification_continuous_and_r3():
    S = cs.SO2(3)
    assert _pointwise_and_trivial(S, [S.trivial_representation, S.irrep(1)]) == (
        [True, False], [True, False])
    O = cs.O2(3)
    assert _pointwise_and_trivial(O, [O.quotient_representation((None, -1)), O.irrep(1, 0)]) \
        == ([True, False], [False, False])
    G = r3.Octahedral()
    reps = [G.trivial_representation, G.regular_representation, G.standard_representation]
    assert _pointwise_and_trivial(G, reps) == ([True, True, False], [True, False, False])
    S3 = r3.SO3(2)
    assert _pointwise_and_trivial(S3, [S3.trivial_representation, S3.irrep(1)]) == (
        [True, False], [True, False])


def test_names_are_not_trusted():
    """The regular representation's irreps with the identity as change of basis, named
    'regular', is not a permutation representation; a regular one renamed still is."""
    G = cs.CyclicGroup(4)
    reg = G.regular_representation
    fake = cs.Representation(G, reg.irreps, name="regular")
    renamed = cs.Representation(G, reg.irreps, reg.change_of_basis, name="irrep_sum")
    assert _pointwise_and_trivial(G, [fake, renamed]) == ([False, True], [False, False])


def test_check_elements():
    assert len(check_elements(cs.DihedralGroup(3))[0]) == 6
    assert len(check_elements(r3.Octahedral())[0]) == 24
    batches = check_elements(cs.SO2(2))
    assert len(batches) == 2 and len(batches[1]) == 16


def test_channel_maps_and_groups():
    s = FieldStructure(_c4_type())
    assert s.n_fields == 5 and s.size == 13
    assert s.channel_field.tolist() == [0] * 4 + [1] * 2 + [2] + [3] * 2 + [4] * 4
    assert s.channels(3).tolist() == [7, 8]
    reg, irr, triv, quot = (g.key for g in s.by_representation)
    assert [g.fields.tolist() for g in s.by_representation] == [[0, 4], [1], [2], [3]]
    assert reg == cs.CyclicGroup(4).regular_representation
    assert s.by_representation[0].channels.tolist() == [[0, 1, 2, 3], [9, 10, 11, 12]]
    assert not s.by_representation[0].contiguous and s.by_representation[1].contiguous
    assert [g.key for g in s.by_size] == [1, 2, 4]
    assert [g.fields.tolist() for g in s.by_size] == [[2], [1, 3], [0, 4]]
    assert s.size_order.tolist() == [2, 1, 3, 0, 4]
    assert s.by_size[1].size == 2 and isinstance(s.by_size[0], FieldGroup)


def test_irrep_blocks():
    s = FieldStructure(_c4_type())
    b = s.irrep_blocks
    # regular C4 = irreps 0, 1 (2-dim), 2; then irrep 1; trivial; quotient[2] = irreps 0, 2
    assert b["field"].tolist() == [0, 0, 0, 1, 2, 3, 3, 4, 4, 4]
    assert b["size"].tolist() == [1, 2, 1, 2, 1, 1, 1, 1, 2, 1]
    assert b["trivial"].tolist() == [True, False, False, False, True, True, False, True,
                                     False, False]
    assert s.trivial_coordinates.tolist() == [0, 6, 7, 9]
    assert s.coordinate_block.tolist() == [0, 1, 1, 2, 3, 3, 4, 5, 6, 7, 8, 8, 9]


@pytest.mark.parametrize("name", ["C4", "D4", "Octahedral"])
def test_documented_invariants(name):
    """For every g: each irrep block norm of Qᵀx, each field norm and the trivial irreps
    coordinates are unchanged by ρ(g); the invariant basis B satisfies ρ(g)B = B, BᵀB = I.
    The norm of a part of a field's channels is not invariant (the counterexample)."""
    if name == "Octahedral":
        G = r3.Octahedral()
        t = cs.FieldType(G, [G.regular_representation, G.standard_representation,
                             G.trivial_representation])
    else:
        G = cs.CyclicGroup(4) if name == "C4" else cs.DihedralGroup(4)
        t = cs.FieldType(G, [G.regular_representation, G.irrep(1) if name == "C4"
                             else G.irrep(1, 1), G.trivial_representation])
    s = FieldStructure(t)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(t.size)
    Q, B = s.change_of_basis, s.invariant_basis
    np.testing.assert_allclose(B.T @ B, np.eye(B.shape[1]), atol=1e-12)
    b = s.irrep_blocks

    def block_norms(v):
        y = Q.T @ v
        return np.array([np.linalg.norm(y[o:o + n]) for o, n in zip(b["offset"], b["size"])])

    def field_norms(v):
        return np.array([np.linalg.norm(v[s.channels(f)]) for f in range(s.n_fields)])

    moved_part = 0.0
    for rho in t.representation.evaluate(list(G.elements())):
        gx = rho @ x
        np.testing.assert_allclose(block_norms(gx), block_norms(x), atol=1e-12)
        np.testing.assert_allclose(field_norms(gx), field_norms(x), atol=1e-12)
        np.testing.assert_allclose((Q.T @ gx)[s.trivial_coordinates],
                                   (Q.T @ x)[s.trivial_coordinates], atol=1e-12)
        np.testing.assert_allclose(rho @ B, B, atol=1e-12)
        part = s.channels(0)[:2]  # two channels of the regular field
        moved_part = max(moved_part, abs(np.linalg.norm(gx[part]) - np.linalg.norm(x[part])))
    assert moved_part > 1e-3


def test_immutable_and_picklable():
    s = FieldStructure(_c4_type())
    with pytest.raises(AttributeError, match="immutable"):
        s.pointwise = None
    for arr in (s.pointwise, s.trivial, s.channel_field, s.irrep_blocks,
                s.trivial_coordinates, s.invariant_basis, s.by_size[0].channels):
        assert not arr.flags.writeable
    for other in (pickle.loads(pickle.dumps(s)), copy.deepcopy(s)):
        assert other == s and hash(other) == hash(s)
        np.testing.assert_array_equal(other.pointwise, s.pointwise)
    G = r3.Octahedral()
    s3 = FieldStructure(cs.FieldType(G, [G.regular_representation]))
    assert pickle.loads(pickle.dumps(s3)) == s3 and s3 != s


def test_errors():
    with pytest.raises(TypeError, match="field_type must be a cupysteer FieldType"):
        FieldStructure([cs.CyclicGroup(4).regular_representation])
    s = FieldStructure(_c4_type())
    with pytest.raises(ValueError, match=r"MyOp needs pointwise fields .* field 1 \('irrep_1', "
                                         r"channels 4\.\.5\).*try X"):
        s.require_pointwise("MyOp", "try X")
    s.require_pointwise("MyOp", "try X", fields=[0, 2, 3])
    s.require_trivial("gates", [2])
    with pytest.raises(ValueError, match=r"gates must be trivial fields of size 1.*field 0"):
        s.require_trivial("gates", [0])
