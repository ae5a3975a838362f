"""Adversarial probes across the public API, the cache, the CLI and the torch layers
(issue 16): each case is a bad input and the error it must get — the right exception type and
a message naming the argument. Table-driven, milliseconds each; the README's "Robustness and
security" table lists them. (Deeper probes of one area: core/test_hardening.py,
core/test_cache_hostile.py, cli/test_cli_robustness.py, frontends/test_dlpack.py.)"""
from __future__ import annotations

import tempfile

import numpy as np
import pytest

import cupysteer as cs
from cupysteer import fields_spec, gallery, r3
from cupysteer.cli import main
from cupysteer.equivariance import equivariance_errors
from cupysteer.io import load_bank

G4 = cs.CyclicGroup(4)
D4 = cs.DihedralGroup(4)
REG = G4.regular_representation
T4 = cs.FieldType(G4, [REG])


def _basis():
    return cs.LayerBasis(T4, T4, 3)


# (id, callable, exception type(s), regex the message must match)
API = [
    # ---- groups ----------------------------------------------------------------------------
    ("C_N None", lambda: cs.CyclicGroup(None), ValueError, "N must be an integer"),
    ("C_N str", lambda: cs.CyclicGroup("8"), ValueError, "N must be an integer"),
    ("C_N float", lambda: cs.CyclicGroup(8.0), ValueError, "N must be an integer"),
    ("C_N bool", lambda: cs.CyclicGroup(True), ValueError, "N must be an integer"),
    ("C_N 0", lambda: cs.CyclicGroup(0), ValueError, "N must be an integer >= 1"),
    ("C_N -3", lambda: cs.CyclicGroup(-3), ValueError, "N must be an integer >= 1"),
    ("D_N axis nan", lambda: cs.DihedralGroup(4, float("nan")), ValueError, "axis"),
    ("D_N axis str", lambda: cs.DihedralGroup(4, "x"), ValueError, "axis"),
    ("D_N axis None", lambda: cs.DihedralGroup(4, None), ValueError, "axis"),
    ("SO2 mf None", lambda: cs.SO2(None), ValueError, "maximum_frequency"),
    ("SO2 mf -1", lambda: cs.SO2(-1), ValueError, "maximum_frequency"),
    ("O2 mf 2.0", lambda: cs.O2(2.0), ValueError, "maximum_frequency"),
    ("SO3 mf 65", lambda: r3.SO3(65), ValueError, "maximum_frequency"),
    ("SO3 mf str", lambda: r3.SO3("2"), ValueError, "maximum_frequency"),
    ("RotationsZ 0", lambda: r3.RotationsZ(0), ValueError, "N must be"),
    ("RotationsZ None", lambda: r3.RotationsZ(None), ValueError, "N must be"),
    # ---- irreps, subgroups, quotients -----------------------------------------------------
    ("irrep out of range", lambda: G4.irrep(3), ValueError, "unknown irrep id"),
    ("irrep str", lambda: G4.irrep("1"), ValueError, "unknown irrep id"),
    ("irrep None", lambda: G4.irrep(None), ValueError, "unknown irrep id"),
    ("irrep float", lambda: G4.irrep(1.0), ValueError, "unknown irrep id"),
    ("irrep bool", lambda: G4.irrep(True), ValueError, "unknown irrep id"),
    ("D_N 2-dim as (0, k)", lambda: D4.irrep(0, 1), ValueError, r"use \(1, 1\)"),
    ("D_N irrep one id", lambda: D4.irrep(1), ValueError, "unknown irrep id"),
    ("SO3 irrep -1", lambda: r3.SO3().irrep(-1), ValueError, "unknown irrep id"),
    ("O irrep 9", lambda: r3.Octahedral().irrep(9), ValueError, "unknown irrep id"),
    ("O irrep True", lambda: r3.Octahedral().irrep(True), ValueError, "not bools"),
    ("Oh irrep bool inside", lambda: r3.FullOctahedral().irrep((True,), (1,), 0), ValueError,
     "not bools"),
    ("quotient non-divisor", lambda: G4.quotient_representation(3), ValueError, "subgroup_id"),
    ("quotient str", lambda: G4.quotient_representation("2"), ValueError, "subgroup_id"),
    ("quotient None", lambda: G4.quotient_representation(None), ValueError, "subgroup_id"),
    ("quotient D_N bad a", lambda: D4.quotient_representation((9, 2)), ValueError,
     "subgroup_id"),
    ("quotient list id r3", lambda: r3.Octahedral().quotient_representation({1: 2}),
     ValueError, "subgroup_id"),
    ("regular of SO2", lambda: cs.SO2().regular_representation, ValueError, "continuous"),
    ("regular of SO3", lambda: r3.SO3().regular_representation, ValueError, "continuous"),
    ("element of C4 str", lambda: REG("1"), ValueError, "element of C4"),
    ("element of D4 int", lambda: D4.regular_representation(1), ValueError, "flip, rotation"),
    ("element of D4 flip 2", lambda: D4.regular_representation((2, 0)), ValueError,
     "flip of a D_N element"),
    ("element of SO3 not orthogonal", lambda: r3.SO3().irrep(1)(np.ones((3, 3))), ValueError,
     "not orthogonal"),
    ("element of SO3 nan", lambda: r3.SO3().irrep(1)(np.full((3, 3), np.nan)), ValueError,
     "NaN"),
    ("element of O not in O", lambda: r3.Octahedral().irrep(1)(
        cs.r3.SO3().sample(1, np.random.default_rng(0))[0]), ValueError, "is not in"),
    # ---- representations and field types ------------------------------------------------------
    ("Q not orthogonal", lambda: cs.Representation(G4, [G4.irrep(0)] * 2, np.ones((2, 2))),
     ValueError, "orthogonal"),
    ("Q complex", lambda: cs.Representation(G4, [G4.irrep(0)], np.ones((1, 1), complex)),
     ValueError, "real orthogonal"),
    ("Q str", lambda: cs.Representation(G4, [G4.irrep(0)], "x"), ValueError,
     "change_of_basis"),
    ("Q wrong shape", lambda: cs.Representation(G4, [G4.irrep(0)], np.eye(2)), ValueError,
     r"shape \(1, 1\)"),
    ("irreps of another group", lambda: cs.Representation(G4, [D4.irrep(0, 0)]), ValueError,
     "belongs to"),
    ("irreps empty", lambda: cs.Representation(G4, []), ValueError, "at least one irrep"),
    ("irreps None", lambda: cs.Representation(G4, None), ValueError, "irreps"),
    ("field type group junk", lambda: cs.FieldType("C4", [REG]), ValueError, "group"),
    ("field type None", lambda: cs.FieldType(G4, None), ValueError, "representations"),
    ("field type str", lambda: cs.FieldType(G4, "regular"), ValueError, "representations"),
    ("field type mixed", lambda: cs.FieldType(G4, [REG, D4.regular_representation]),
     ValueError, "one group"),
    ("field type empty", lambda: cs.FieldType(G4, []), ValueError, "at least one field"),
    ("field type + other", lambda: T4 + cs.FieldType(D4, [D4.regular_representation]),
     ValueError, "same group"),
    ("directsum None", lambda: cs.directsum(None), ValueError, "reps"),
    ("directsum mixed", lambda: cs.directsum([REG, D4.regular_representation]), ValueError,
     "one group"),
    ("directsum junk", lambda: cs.directsum([REG, 3]), ValueError, "reps"),
    # ---- layer bases ----------------------------------------------------------------------------
    ("in_type junk", lambda: cs.LayerBasis("x", T4, 3), ValueError, "in_type"),
    ("out_type None", lambda: cs.LayerBasis(T4, None, 3), ValueError, "out_type"),
    ("types of two groups", lambda: cs.LayerBasis(T4, cs.FieldType(D4, [D4.trivial_representation]),
                                                  3), ValueError, "share one group"),
    ("kernel_size 0", lambda: cs.LayerBasis(T4, T4, 0), ValueError, "kernel_size"),
    ("kernel_size None", lambda: cs.LayerBasis(T4, T4, None), ValueError, "kernel_size"),
    ("kernel_size 3.5", lambda: cs.LayerBasis(T4, T4, 3.5), ValueError, "kernel_size"),
    ("kernel_size np.float", lambda: cs.LayerBasis(T4, T4, np.float64(3)), ValueError,
     "kernel_size"),
    ("dilation 0", lambda: cs.LayerBasis(T4, T4, 3, dilation=0), ValueError, "dilation"),
    ("rings beyond", lambda: cs.LayerBasis(T4, T4, 3, rings=[5.0]), ValueError, "rings"),
    ("rings negative", lambda: cs.LayerBasis(T4, T4, 3, rings=[-1.0]), ValueError, "rings"),
    ("rings empty", lambda: cs.LayerBasis(T4, T4, 3, rings=[]), ValueError, "rings"),
    ("rings str", lambda: cs.LayerBasis(T4, T4, 3, rings="1"), ValueError, "rings"),
    ("rings dict", lambda: cs.LayerBasis(T4, T4, 3, rings={0: 1}), ValueError, "rings"),
    ("sigma 0", lambda: cs.LayerBasis(T4, T4, 3, sigma=0.0), ValueError, "sigma"),
    ("sigma -1", lambda: cs.LayerBasis(T4, T4, 3, sigma=-1.0), ValueError, "sigma"),
    ("sigma inf", lambda: cs.LayerBasis(T4, T4, 3, sigma=np.inf), ValueError, "sigma"),
    ("sigma underflow", lambda: cs.LayerBasis(T4, T4, 3, sigma=1e-180), ValueError,
     "underflows"),
    ("sigma count", lambda: cs.LayerBasis(T4, T4, 3, sigma=[0.5] * 5), ValueError,
     "one value per ring"),
    ("sigma None in list", lambda: cs.LayerBasis(T4, T4, 3, sigma=[None, 0.5]), ValueError,
     "sigma"),
    ("cutoff int", lambda: cs.LayerBasis(T4, T4, 3, frequencies_cutoff=3), ValueError,
     "frequencies_cutoff"),
    ("cutoff str", lambda: cs.LayerBasis(T4, T4, 3, frequencies_cutoff="3"), ValueError,
     "frequencies_cutoff"),
    ("cutoff nan", lambda: cs.LayerBasis(T4, T4, 3, frequencies_cutoff=float("nan")),
     ValueError, "frequencies_cutoff"),
    ("cutoff callable junk", lambda: cs.LayerBasis(T4, T4, 3,
                                                   frequencies_cutoff=lambda r: "x"),
     ValueError, "frequencies_cutoff"),
    ("max offset -1", lambda: cs.LayerBasis(T4, T4, 3, maximum_offset=-1), ValueError,
     "maximum_offset"),
    ("points 1-D", lambda: cs.LayerBasis(T4, T4, 3, points=np.zeros(4)), ValueError, "points"),
    ("points nan", lambda: cs.LayerBasis(T4, T4, 3, points=[[np.nan, 0]]), ValueError,
     "points"),
    ("points 3-D for a planar group", lambda: cs.LayerBasis(T4, T4, 3, points=np.ones((4, 3))),
     ValueError, "points"),
    ("points complex", lambda: cs.LayerBasis(T4, T4, 3, points=np.ones((4, 2), complex)),
     ValueError, "points must be real"),
    ("points empty", lambda: cs.LayerBasis(T4, T4, 3, points=np.zeros((0, 2))), ValueError,
     "points"),
    ("points torch-like", lambda: cs.LayerBasis(T4, T4, 3, points=type("T", (), {})()),
     (ValueError, TypeError), "points"),
    ("cache junk", lambda: cs.LayerBasis(T4, T4, 3, cache="dir"), ValueError, "cache"),
    ("cache True", lambda: cs.LayerBasis(T4, T4, 3, cache=True), ValueError, "cache"),
    # ---- expansion ------------------------------------------------------------------------------
    ("weights wrong length", lambda: _basis().expand(np.zeros(3)), ValueError, "weights"),
    ("weights 3-D", lambda: _basis().expand(np.zeros((1, 1, _basis().dim))), ValueError,
     "weights"),
    ("weights complex", lambda: _basis().expand(np.zeros(_basis().dim, complex)), ValueError,
     "weights must be real"),
    ("weights str", lambda: _basis().expand(np.array(["a"] * _basis().dim)), ValueError,
     "weights"),
    ("weights None", lambda: _basis().expand(None), (ValueError, TypeError), "weights"),
    ("weights nan", lambda: _basis().expand(np.full(_basis().dim, np.nan)), ValueError,
     "NaN"),
    ("filter_grad wrong shape", lambda: _basis().adjoint(np.zeros((4, 4, 3))), ValueError,
     "filter_grad"),
    ("bias wrong length", lambda: _basis().expand_bias(np.zeros(7)), ValueError, "bias"),
    ("bias complex", lambda: _basis().expand_bias(np.zeros(1, complex)), ValueError, "bias"),
    ("filt mismatched", lambda: equivariance_errors(_basis(), np.zeros((2, 2, 3, 3))),
     ValueError, "filt"),
    ("filt nan", lambda: equivariance_errors(_basis(), np.full(_basis().shape, np.nan)),
     ValueError, "filt"),
    # ---- spellings -----------------------------------------------------------------------
    ("group spelling unicode digit", lambda: fields_spec.parse_group("C٨"), ValueError,
     "unknown group"),
    ("group spelling fullwidth", lambda: fields_spec.parse_group("D４"), ValueError,
     "unknown group"),
    ("group spelling None", lambda: fields_spec.parse_group(None), ValueError, "unknown group"),
    ("group spelling empty", lambda: fields_spec.parse_group(" "), ValueError, "unknown group"),
    ("group spelling C0", lambda: fields_spec.parse_group("C0"), ValueError, "N must be"),
    ("group axis inf", lambda: fields_spec.parse_group("D4:axis=inf"), ValueError, "axis"),
    ("field spelling unicode", lambda: fields_spec.parse_field_type(G4, "irrep:١"), ValueError,
     "unknown field"),
    ("field repeat unicode", lambda: fields_spec.parse_field_type(G4, "٢*regular"), ValueError,
     "unknown field"),
    ("field repeat 0", lambda: fields_spec.parse_field_type(G4, "0*regular"), ValueError,
     "repetition count"),
    ("field list None", lambda: fields_spec.parse_field_type(G4, None), ValueError,
     "unknown field"),
    ("field list junk item", lambda: fields_spec.parse_field_type(G4, ["regular", 3]),
     ValueError, "unknown field"),
    ("field r3 literal junk", lambda: fields_spec.parse_field_type(r3.Octahedral(),
                                                                   "quotient:(__import__)"),
     ValueError, "unknown field|literal"),
    ("field r3 huge literal", lambda: fields_spec.parse_field_type(r3.Octahedral(),
                                                                   "irrep:" + "(" * 500),
     ValueError, "unknown field|literal"),
    # ---- pictures, banks ------------------------------------------------------------------
    ("filters image 3-D", lambda: gallery.filters_image(np.zeros((2, 2, 3))), ValueError,
     "filters must have shape"),
    ("png rgb wrong shape", lambda: gallery.write_png("/nonexistent/x.png", np.zeros((2, 2))),
     ValueError, "rgb"),
    ("picture too large", lambda: gallery.filters_image(np.zeros((1, 30000, 40, 40))),
     ValueError, "cells"),
    ("bank not a bank", lambda: load_bank(_foreign_npz()), ValueError, "no cupysteer filter bank"),
]


def _foreign_npz():
    f = tempfile.NamedTemporaryFile(suffix=".npz", delete=False)
    np.savez(f, format=np.array("other/1"))
    f.close()
    return f.name


@pytest.mark.parametrize("call, exc, pattern", [c[1:] for c in API], ids=[c[0] for c in API])
def test_api_probe(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


CLI = [
    (["info", "--group", "C8", "--size", "0"], "--size"),
    (["info", "--group", "C8", "--size", "x"], "--size"),
    (["info", "--group", "C8", "--dilation", "0"], "--dilation"),
    (["info", "--group", "C8", "--rings", "a,b"], "--rings"),
    (["info", "--group", "C8", "--rings", ","], "--rings"),
    (["info", "--group", "C8", "--rings", "9"], "--rings"),
    (["info", "--group", "C8", "--sigma", "0"], "--sigma"),
    (["info", "--group", "C8", "--sigma", "1e-200"], "--sigma"),
    (["info", "--group", "C8", "--sigma", "nan"], "--sigma"),
    (["info", "--group", "C8", "--cutoff", "1,2"], "--cutoff"),
    (["info", "--group", "C8", "--cutoff", "inf"], "--cutoff"),
    (["info", "--group", "C8", "--max-offset", "-1"], "--max-offset"),
    (["info", "--group", "X"], "--group"),
    (["info", "--group", ""], "--group"),
    (["info", "--group", "C8", "--in", ""], "--in"),
    (["info", "--group", "C8", "--in", "irrep:9"], "--in"),
    (["info", "--group", "SO2", "--in", "regular"], "--in"),
    (["info", "--group", "O", "--in", "irrep:7"], "--in"),
    (["check", "--group", "C4", "--size", "3", "--samples", "-1"], "--samples"),
    (["check", "--group", "C4", "--size", "3", "--tol", "-0.5"], "--tol"),
    (["check", "--group", "C4", "--size", "3", "--weights", "nofile.npy"], "--weights"),
    (["check", "--group", "C4", "--size", "3", "--weights", "x.txt"], "--weights"),
    (["basis", "--group", "C4", "--size", "3", "--max-columns", "0"], "--max-columns"),
    (["basis", "--group", "C4", "--size", "3", "--filters-png", "f.png"], "--filters-png"),
    (["bench", "--group", "C4", "--size", "3", "--batch", "0"], "--batch"),
    (["bench", "--group", "C4", "--size", "3", "--repeat", "0"], "--repeat"),
    (["demo", "--N", "-1"], "--N"),
    (["info", "--group", "C4", "--size", "30001"], "kernel_size"),
]


@pytest.mark.parametrize("argv, option", CLI, ids=[" ".join(c[0]) for c in CLI])
def test_cli_probe(capsys, monkeypatch, argv, option):
    monkeypatch.setenv("CUPYSTEER_MEMORY_LIMIT", "1G")
    try:
        rc = main(argv)
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    assert rc == 2 and option in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def _layer_probes():
    torch = pytest.importorskip("torch")
    from cupysteer.torch import SteerableConv2d
    return torch, SteerableConv2d


LAYERS = [
    ("in_type junk", lambda C: C("x", T4, 3), "in_type"),
    ("kernel_size 0", lambda C: C(T4, T4, 0), "kernel_size"),
    ("kernel_size str", lambda C: C(T4, T4, "3"), "kernel_size"),
    ("sigma underflow", lambda C: C(T4, T4, 3, sigma=1e-200), "sigma"),
    ("rings str", lambda C: C(T4, T4, 3, rings="1"), "rings"),
    ("3-D type in a 2-D layer", lambda C: C(cs.FieldType(r3.Octahedral(),
                                                         [r3.Octahedral().trivial_representation]),
                                            cs.FieldType(r3.Octahedral(),
                                                         [r3.Octahedral().trivial_representation]),
                                            3), "R³|3"),
]


@pytest.mark.parametrize("make, pattern", [c[1:] for c in LAYERS], ids=[c[0] for c in LAYERS])
def test_layer_probe(make, pattern):
    torch, conv = _layer_probes()
    with pytest.raises((ValueError, TypeError), match=pattern):
        make(conv)


def test_layer_forward_with_the_wrong_channels():
    torch, conv = _layer_probes()
    layer = conv(T4, T4, 3)
    with pytest.raises((ValueError, RuntimeError), match="channel|4"):
        layer(torch.zeros(1, 5, 8, 8))
