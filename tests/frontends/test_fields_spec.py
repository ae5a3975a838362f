"""The one parser of group and field spellings (cupysteer.fields_spec)."""
from __future__ import annotations

import math

import pytest

import cupysteer as cs
from cupysteer.fields_spec import (
    FIELD_SPELLINGS,
    GROUP_SPELLINGS,
    format_field_type,
    format_group,
    parse_field,
    parse_field_type,
    parse_fields,
    parse_group,
)


@pytest.mark.parametrize("spec, expected", [
    ("C8", cs.CyclicGroup(8)),
    ("c3", cs.CyclicGroup(3)),
    ("D4", cs.DihedralGroup(4)),
    ("D4:axis=0.0", cs.DihedralGroup(4, axis=0.0)),
    ("D6:axis=0.5", cs.DihedralGroup(6, axis=0.5)),
    ("SO2", cs.SO2()),
    ("SO2:6", cs.SO2(6)),
    ("SO(2):3", cs.SO2(3)),
    ("O2:4", cs.O2(4)),
    ("O2:4:axis=0.0", cs.O2(4, axis=0.0)),
    ("flip", cs.FlipGroup()),
    ("flip:axis=0.0", cs.FlipGroup(0.0)),
    ("trivial", cs.trivial_group()),
    (" C8 ", cs.CyclicGroup(8)),
])
def test_groups(spec, expected):
    G = parse_group(spec)
    assert G == expected and type(G) is type(expected)
    assert G.reflection_axis == expected.reflection_axis
    if isinstance(G, (cs.SO2, cs.O2)):
        assert G.maximum_frequency == expected.maximum_frequency
    again = parse_group(format_group(G))
    assert again == G and again.reflection_axis == G.reflection_axis


@pytest.mark.parametrize("spec", ["C0", "X8", "D", "D4:foo", "D4:axis=nan", "SO2:x",
                                  "SO2:axis=1", "C8:axis=0", "flip:1:2", "trivial:2", "", "  ",
                                  "D4:axis=0:axis=1", None, 8])
def test_bad_groups_list_the_spellings(spec):
    with pytest.raises(ValueError) as e:
        parse_group(spec)
    assert GROUP_SPELLINGS in str(e.value)


def test_group_passes_through():
    G = cs.DihedralGroup(3)
    assert parse_group(G) is G


@pytest.mark.parametrize("group, spec, names", [
    ("C8", "regular", ["regular"]),
    ("C8", "regular,irrep:1", ["regular", "irrep_1"]),
    ("C8", "regular*2, 3*trivial", ["regular"] * 2 + ["irrep_0"] * 3),
    ("C8", "quotient:2", ["quotient[2]"]),
    ("C4", "(irrep:1)*2", ["irrep_1", "irrep_1"]),
    ("D4", "regular,irrep:1,1,trivial", ["regular", "irrep_1,1", "irrep_0,0"]),
    ("D4", "irrep:(1,1)", ["irrep_1,1"]),
    ("D4", "4*irrep:1,1", ["irrep_1,1"] * 4),
    ("D4", "irrep:1,1*2,irrep:0,2", ["irrep_1,1", "irrep_1,1", "irrep_0,2"]),
    ("D4", "quotient:None,2,quotient:1,2,quotient:0,1",
     ["quotient[(None, 2)]", "quotient[(1, 2)]", "quotient[(0, 1)]"]),
    ("SO2:4", "irrep:3,irrep:0", ["irrep_3", "irrep_0"]),
    ("O2:3", "irrep:1,2,quotient:None,-1", ["irrep_1,2", "quotient[(None, -1)]"]),
    ("flip", "irrep:1,quotient:1,regular", ["irrep_1", "quotient[1]", "regular"]),
    ("trivial", "regular,trivial", ["regular", "irrep_0"]),
])
def test_fields(group, spec, names):
    G = parse_group(group)
    t = parse_field_type(group, spec)
    assert [r.name for r in t] == names
    assert t.group == G
    # the formatted spelling reads back to the same field type
    assert parse_field_type(G, format_field_type(t)) == t


def test_fields_are_the_library_representations():
    G = cs.DihedralGroup(4)
    assert parse_field(G, "regular") == G.regular_representation
    assert parse_field(G, "trivial") == G.trivial_representation
    assert parse_field(G, "irrep:1,1") == G.irrep(1, 1).representation
    assert parse_field(G, "quotient:None,2") == G.quotient_representation((None, 2))
    assert parse_field(G, "quotient:1,2") == G.quotient_representation((1, 2))
    assert parse_fields(G, ["regular", G.irrep(0, 0).representation]) == [
        G.regular_representation, G.trivial_representation]


def test_format_runs():
    G = cs.CyclicGroup(8)
    t = parse_field_type(G, "regular,regular,irrep:1,regular")
    assert format_field_type(t) == "2*regular,irrep:1,regular"
    assert format_group(cs.DihedralGroup(4, axis=0.0)) == "D4:axis=0.0"
    assert format_group(cs.O2(2)) == "O2:2"
    assert format_group(cs.FlipGroup(math.pi / 2)) == "flip"


@pytest.mark.parametrize("group, spec, why", [
    ("C8", "regulr", ""),
    ("C8", "irrep:5", "unknown irrep id"),
    ("C8", "irrep:1,1", "C8 irreps are irrep:k"),
    ("D4", "irrep:1", "irrep:j,k"),
    ("D4", "irrep:0,1", "2-dim irreps are (1, k)"),
    ("D4", "quotient:2", "quotient:None,M"),
    ("D4", "quotient:x,2", "must be an integer"),
    ("C8", "quotient:3", "dividing N=8"),
    ("SO2", "regular", "no regular representation"),
    ("O2", "quotient:0.5,1", "O(2)/SO(2)"),
    ("C8", "regular*0", ">= 1"),
    ("C8", "", "empty"),
    ("C8", "regular,,trivial", "empty"),
    ("C8", "irrep:one", "integer"),
])
def test_bad_fields_list_the_spellings(group, spec, why):
    with pytest.raises(ValueError) as e:
        parse_fields(parse_group(group), spec)
    msg = str(e.value)
    assert FIELD_SPELLINGS in msg and why in msg
    assert "\n" not in msg
