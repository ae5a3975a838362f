"""The ``cupysteer`` command and the spellings of :mod:`cupysteer.fields_spec` for groups acting
on R³: group/field round trips, basis .npz content (k×k×k), info/check, the slice pictures and
the errors (exit 2, accepted spellings listed)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import cupysteer as cs
from cupysteer import gallery, r3
from cupysteer.cli import main
from cupysteer.fields_spec import (
    FIELD_SPELLINGS_3D,
    GROUP_SPELLINGS_3D,
    format_field_type,
    format_group,
    parse_field_type,
    parse_group,
)

GROUPS = {  # spelling -> the group it names
    "SO3": r3.SO3(2), "SO3:3": r3.SO3(3), "O3": r3.O3(2), "O": r3.Octahedral(),
    "Oh": r3.FullOctahedral(), "I": r3.Icosahedral(), "Ih": r3.FullIcosahedral(),
    "C8z": r3.RotationsZ(8), "SO2z:3": r3.RotationsZ(-1, 3), "D4z": r3.DihedralZ(4),
    "D3z:axis=0.0": r3.DihedralZ(3, 0.0), "O2z:3:axis=0.5": r3.DihedralZ(-1, 0.5, 3),
    "conical4": r3.Conical(4), "conicalO2": r3.Conical(-1), "cyl4": r3.Cylindrical(4),
    "cylSO2:3": r3.Cylindrical(-1, 3), "fullcyl3": r3.FullCylindrical(3),
    "fullcylO2:2:axis=0.0": r3.FullCylindrical(-1, 0.0, 2), "inv": r3.Inversion(),
    "mir": r3.Mirror(), "mir:axis=0.3": r3.Mirror(0.3), "trivial3": r3.Trivial3(),
}


@pytest.mark.parametrize("spec", list(GROUPS))
def test_group_spellings_round_trip(spec):
    G = parse_group(spec)
    assert G == GROUPS[spec] and type(G) is type(GROUPS[spec])
    assert getattr(G, "maximum_frequency", None) == getattr(GROUPS[spec], "maximum_frequency",
                                                            None)
    assert parse_group(format_group(G)) == G
    assert parse_group(spec.lower()) == G  # case-insensitive


FIELDS = [
    ("SO3", "trivial,irrep:1,2*irrep:2,std", 17),
    ("O3", "irrep:1,1,irrep:0,1,irrep:1,0,std", 10),
    ("O", "regular,quotient:(False,4),quotient:(False,3),irrep:-1,irrep:3,std", 45),
    ("Oh", "regular,irrep:1,-1,irrep:1,2,quotient:(2,(False,4))", 59),
    ("I", "regular,irrep:4,quotient:(False,5)", 76),
    ("C8z", "regular,irrep:3,quotient:2", 14),
    ("D4z", "regular,irrep:1,2,irrep:1,0,quotient:(None,2)", 14),
    ("cyl4", "regular,irrep:1,2", 9), ("fullcyl3", "irrep:1,1,1,regular", 14),
    ("inv", "irrep:1,regular", 3), ("mir", "irrep:1", 1), ("trivial3", "regular,trivial", 2),
]


@pytest.mark.parametrize("group,spec,size", FIELDS)
def test_field_spellings_round_trip(group, spec, size):
    G = parse_group(group)
    t = parse_field_type(G, spec)
    assert t.size == size and format_field_type(t) == spec
    assert parse_field_type(G, format_field_type(t)) == t


def test_field_spelling_variants():
    Oh = parse_group("Oh")
    assert parse_field_type(Oh, "irrep:((1,),(-1,),0)") == parse_field_type(Oh, "irrep:1,-1")
    assert parse_field_type(Oh, "irrep:1,-1").representations[0] == Oh.irrep((1,), (-1,), 0) \
        .representation
    O = parse_group("O")
    assert parse_field_type(O, "quotient:False,4") == parse_field_type(O, "quotient:(False, 4)")
    assert parse_field_type(O, "standard") == parse_field_type(O, "std")
    assert parse_field_type(O, "4*regular").size == 96


@pytest.mark.parametrize("group,spec,why", [
    ("SO3", "regular", "no regular"), ("O", "irrep:7", "irrep id"), ("Oh", "irrep:1", "irrep:a"),
    ("O", "quotient:(False,", "Python literals"), ("SO3", "bogus", ""), ("O3", "irrep:2,1", "")])
def test_bad_fields_list_the_3d_spellings(group, spec, why):
    with pytest.raises(ValueError) as e:
        parse_field_type(parse_group(group), spec)
    assert FIELD_SPELLINGS_3D in str(e.value) and why in str(e.value)


@pytest.mark.parametrize("spec,why", [("O4", ""), ("SO3:x", "maximum frequency"),
                                      ("C0z", "N must be"), ("D1z", "N must be"),
                                      ("mir:5", "axis"), ("Oh:3", "no options"), ("Iz", "")])
def test_bad_groups_list_the_3d_spellings(spec, why):
    with pytest.raises(ValueError) as e:
        parse_group(spec)
    assert GROUP_SPELLINGS_3D in str(e.value) and why in str(e.value)


# ---- the command -------------------------------------------------------------------------
def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_basis_octahedral_npz_and_png(tmp_path, capsys, monkeypatch):
    for name in [n for n in sys.modules if n == "matplotlib" or n.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # the NumPy-only pictures
    npz, png, fpng = tmp_path / "bank.npz", tmp_path / "slices.png", tmp_path / "f.png"
    rc, out, err = run(capsys, "basis", "--group", "O", "--in", "regular", "--out", "regular",
                       "--size", "3", "--weights", "he", "-o", str(npz), "--png", str(png),
                       "--filters-png", str(fpng))
    assert rc == 0, err
    assert "240 weights" in err and "3×3×3" in err
    G = r3.Octahedral()
    t = cs.FieldType(G, [G.regular_representation])
    basis = cs.LayerBasis(t, t, 3)
    with np.load(npz, allow_pickle=False) as d:
        a = {k: d[k] for k in d.files}
    assert (str(a["group"]), str(a["in_fields"]), str(a["out_fields"])) == ("O", "regular",
                                                                            "regular")
    assert int(a["dim"]) == 240 and int(a["kernel_size"]) == 3
    assert a["filter_shape"].tolist() == [3, 3, 3]
    np.testing.assert_array_equal(a["points"], basis.points)
    assert a["points"].shape == (27, 3)
    for ti, (pin, pout) in enumerate(basis.irreps_pairs):
        pb = basis.pair_basis(pin, pout)
        v = a[f"pair{ti}_values"]
        assert v.shape == (len(pb), pout.dim, pin.dim, 3, 3, 3)
        np.testing.assert_array_equal(v, pb.values.reshape(v.shape))
        assert str(a["pair_in_irrep"][ti]) == pin.name
    w = a["weights"]
    assert w.shape == (240,) and w.dtype == np.float32
    np.testing.assert_array_equal(w, basis.init_weights(np.random.default_rng(0)))
    assert a["filters"].shape == (24, 24, 3, 3, 3)
    np.testing.assert_allclose(a["filters"], basis.expand(w), atol=1e-6)
    np.testing.assert_allclose(a["bias_expansion"], basis.bias_expansion(), atol=1e-12)
    for key in ("plan_weight_index", "element_frequency", "he_std"):
        assert key in a
    for p in (png, fpng):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_central_slices_are_the_coordinate_planes():
    """The planes z = 0, y = 0, x = 0 of the (−z, −y, x) grid: a filter equal to x (resp. y,
    z) vanishes exactly on the third (second, first) slice."""
    pts = r3.grid_points(5).reshape(5, 5, 5, 3)
    vols = np.moveaxis(pts, -1, 0)  # (3: x, y, z, 5, 5, 5)
    S = gallery.central_slices(vols)
    assert S.shape == (3, 5, 17) and np.isnan(S[:, :, [5, 11]]).all()
    for i, zero_slice in ((0, 2), (1, 1), (2, 0)):
        parts = [S[i, :, 6 * j:6 * j + 5] for j in range(3)]
        assert np.all(parts[zero_slice] == 0)
        assert all(np.abs(p).max() > 0 for j, p in enumerate(parts) if j != zero_slice)
    # z = 0 slice: rows are −y (top row y = +2), columns x
    np.testing.assert_array_equal(S[1, :, 0], [2, 1, 0, -1, -2])
    np.testing.assert_array_equal(S[0, 0, :5], [-2, -1, 0, 1, 2])
    img = gallery.filters_image(np.zeros((2, 3, 5, 5, 5)), scale=1)
    assert img.shape == (2 * 6, 3 * 18 - 1, 3)


def test_basis_cells_3d():
    G = r3.SO3(2)
    t_in = parse_field_type(G, "irrep:1")
    t_out = parse_field_type(G, "trivial,irrep:2")
    rows = gallery.basis_cells(cs.LayerBasis(t_in, t_out, 5))
    assert [r["label"] for r in rows] == ["irrep_1 → irrep_0", "irrep_1 → irrep_2"]
    img = rows[0]["images"][0]
    assert img.shape == (5, 3 * 17 + 2) and rows[0]["titles"][0].startswith("l=1 ")
    assert np.isinf(img[:, 5]).all() and np.isnan(img[:, 17]).all()  # slice / component gaps


def test_info_json_and_text(capsys):
    layer = ["--group", "SO3", "--in", "irrep:1,irrep:2", "--out", "trivial,std", "--size", "5"]
    rc, out, err = run(capsys, "info", *layer, "--json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["group"] == "SO3:2" and d["filter"] == [4, 8, 5, 5, 5] and d["dim"] == 15
    assert d["settings"]["rings"] == [0.0, 1.0, 2.0] and d["num_bias"] == 1
    rc, out, err = run(capsys, "info", *layer)
    assert rc == 0 and "(C_out, C_in, k, k, k)" in out and "escnn" in out


def test_check_passes_on_cube_symmetries(capsys):
    rc, out, err = run(capsys, "check", "--group", "O3", "--in", "irrep:1,0,std", "--out",
                       "irrep:0,1,irrep:1,2", "--size", "3", "--samples", "2", "--json")
    assert rc == 0, err
    rep = json.loads(out)
    assert rep["passed"] and len(rep["grid"]) == 48 and len(rep["sampled"]) == 2
    labels = {g["action"] for g in rep["grid"]}
    assert {"inversion", "identity", "mirror, normal (1, 0, 0)"} <= labels
    assert "rotation by  90.00° about (0, 0, 1)" in labels
    rc, out, err = run(capsys, "check", "--group", "I", "--in", "trivial", "--out", "regular",
                       "--size", "3", "--samples", "3", "--dtype", "float32")
    assert rc == 0, err
    assert "PASS" in out and "3 other elements (sampled" in out and "#0 " in out


def test_bad_group_spelling_exits_2_with_the_list():
    r = subprocess.run([sys.executable, "-m", "cupysteer", "basis", "--group", "Octa",
                        "--in", "regular", "--size", "3"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stdout == ""
    assert "argument --group" in r.stderr and "unknown group 'Octa'" in r.stderr
    assert "trivial3" in r.stderr and "conical<N>" in r.stderr and len(r.stderr.splitlines()) == 1


@pytest.mark.parametrize("argv,argument,why", [
    (["--group", "SO3", "--in", "regular"], "--in", "no regular"),
    (["--group", "O", "--in", "regular", "--out", "irrep:9"], "--out", "irrep id"),
    (["--group", "O", "--in", "regular", "--max-offset", "2"], "--max-offset", "planar"),
    (["--group", "SO3", "--in", "irrep:1", "--cutoff", "-5"], "--cutoff", "policy"),
    (["--group", "SO3", "--in", "irrep:1", "--rings", "0,9"], "--rings", "rings"),
])
def test_bad_3d_arguments_exit_2(capsys, argv, argument, why):
    rc, out, err = run(capsys, "info", *argv, "--size", "3")
    assert rc == 2 and out == ""
    assert f"argument {argument}" in err and why in err


def test_cutoff_policies_and_help(capsys):
    base = ["info", "--group", "SO3", "--in", "irrep:1", "--size", "5", "--json"]
    dims = {}
    for c in ("-1", "-2", "-3", "1.5"):
        rc, out, err = run(capsys, *base, "--cutoff", c)
        assert rc == 0, err
        dims[c] = json.loads(out)["dim"]
    rc, out, err = run(capsys, *base)
    assert json.loads(out)["dim"] == dims["-1"]
    with pytest.raises(SystemExit):
        main(["basis", "--help"])
    out = capsys.readouterr().out
    assert "SO3" in out and "trivial3" in out and "--group O" in out
