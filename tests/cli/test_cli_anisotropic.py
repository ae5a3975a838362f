"""``--kernel-size 5,3`` / ``--spacing 1,2`` on the layer commands: the .npz round trip, the
check on exactly the grid symmetries, and one-line errors naming the argument."""
from __future__ import annotations

import json

import numpy as np
import pytest

import cupysteer as cs
from cupysteer import gallery
from cupysteer.cli import main
from cupysteer.fields_spec import parse_field_type
from cupysteer.io import load_bank, save_bank


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


LAYER2 = ["--group", "D4", "--in", "trivial", "--out", "regular", "--kernel-size", "5,3",
          "--spacing", "1,2", "-q"]
LAYER3 = ["--group", "O", "--in", "trivial", "--out", "regular", "--size", "3,5,5",
          "--spacing", "3,1,1", "-q"]


def test_basis_bank_round_trip(tmp_path, capsys):
    path = tmp_path / "bank.npz"
    rc, _, err = run(capsys, "basis", *LAYER2, "--weights", "he", "-o", str(path))
    assert rc == 0, err
    bank = load_bank(path)
    G = cs.DihedralGroup(4)
    basis = cs.LayerBasis(parse_field_type(G, "trivial"), parse_field_type(G, "regular"),
                          (5, 3), spacing=(1.0, 2.0))
    np.testing.assert_array_equal(bank["spacing"], [1.0, 2.0])
    np.testing.assert_array_equal(bank["filter_shape"], [5, 3])
    assert int(bank["kernel_size"]) == -1 and int(bank["dilation"]) == 1
    np.testing.assert_array_equal(bank["points"], basis.points)
    np.testing.assert_array_equal(bank["settings_rings"], basis.settings.rings)
    assert bank["filters"].shape == (8, 1, 5, 3)
    np.testing.assert_allclose(bank["filters"], basis.expand(bank["weights"]), rtol=0,
                               atol=1e-6)
    # a bank written before spacing existed loads with unit steps
    old = {k: v for k, v in bank.items() if k != "spacing"}
    save_bank(tmp_path / "old.npz", old)
    np.testing.assert_array_equal(load_bank(tmp_path / "old.npz")["spacing"], [1.0, 1.0])
    # a unit grid stores unit spacing and its k
    rc, _, err = run(capsys, "basis", "--group", "C4", "--size", "3", "-q", "-o",
                     str(tmp_path / "unit.npz"))
    unit = load_bank(tmp_path / "unit.npz")
    assert rc == 0 and int(unit["kernel_size"]) == 3
    np.testing.assert_array_equal(unit["spacing"], [1.0, 1.0])


@pytest.mark.parametrize("layer,grid", [(LAYER2, 4), (LAYER3, 8)])
def test_check_uses_exactly_the_grid_symmetries(capsys, layer, grid):
    rc, out, err = run(capsys, "check", *layer, "--dtype", "float64", "--json")
    assert rc == 0, err
    report = json.loads(out)
    assert len(report["grid"]) == grid and report["passed"]
    assert max(r["error"] for r in report["grid"]) <= 1e-10
    assert "spacing" in report["layer"]
    # the other elements are checked on the basis rebuilt at the moved points
    assert report["sampled"] and all(r["ok"] for r in report["sampled"])


@pytest.mark.parametrize("argv,argument", [
    (["--group", "C4", "--spacing", "1,2,3"], "--spacing"),
    (["--group", "C4", "--spacing", "0"], "--spacing"),
    (["--group", "C4", "--spacing", "1,x"], "--spacing"),
    (["--group", "C4", "--size", "5,5,3"], "--size"),
    (["--group", "O", "--size", "5,0,5"], "--size"),
])
def test_errors_name_the_argument(capsys, argv, argument):
    rc, _, err = run(capsys, "info", *argv, "-q")
    assert rc == 2 and f"argument {argument}" in err and len(err.strip().splitlines()) == 1


def test_size_syntax_error_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["info", "--size", "5;3"])
    assert exc.value.code == 2
    assert "one per filter axis" in capsys.readouterr().err


def test_info_reports_spacing_and_physical_rings(capsys):
    rc, out, err = run(capsys, "info", *LAYER3, "--json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["spacing"] == [3.0, 1.0, 1.0] and d["filter_shape"] == [3, 5, 5]
    # the largest ball inside the 6×4×4 box has radius 2: rings 0, 1, 2
    assert d["settings"]["rings"] == [0.0, 1.0, 2.0]
    rc, out, _ = run(capsys, "info", "--group", "C4", "--size", "3", "-q", "--json")
    assert rc == 0 and json.loads(out)["spacing"] is None


def test_pictures_of_a_non_cubic_volume_show_its_three_central_planes(tmp_path, capsys):
    out, png = tmp_path / "v.npz", tmp_path / "v.png"
    rc, _, err = run(capsys, "basis", *LAYER3, "-o", str(out), "--png", str(png))
    assert rc == 0, err
    assert out.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rc, _, err = run(capsys, "basis", *LAYER2, "--png", str(tmp_path / "r.png"))
    assert rc == 0 and (tmp_path / "r.png").stat().st_size > 0  # a rectangle draws


def test_central_slices_of_a_non_cubic_volume_are_its_coordinate_planes():
    """(kz, ky, kx) = (3, 5, 7): the z = 0 plane is ky×kx, the y = 0 and x = 0 planes kz×kx and
    kz×ky, padded with the gap value below the shorter ones."""
    vol = np.arange(3 * 5 * 7, dtype=float).reshape(3, 5, 7)
    S = gallery.central_slices(vol)
    assert S.shape == (5, 7 + 7 + 5 + 2)
    np.testing.assert_array_equal(S[:, :7], vol[1])
    np.testing.assert_array_equal(S[:3, 8:15], vol[:, 2, :])
    np.testing.assert_array_equal(S[:3, 16:], vol[:, :, 3])
    assert np.isnan(S[3:, 8:]).all() and np.isnan(S[:, [7, 15]]).all()


def test_check_on_tiny_steps_reports_all_grid_elements(capsys):
    """--spacing 2e-7,2e-7: the 8 elements of D4 (an absolute tolerance found none)."""
    rc, out, err = run(capsys, "check", "--group", "D4", "--in", "trivial", "--out",
                       "regular", "--size", "5", "--spacing", "2e-7,2e-7", "-q", "--dtype",
                       "float64", "--json")
    assert rc == 0, err
    report = json.loads(out)
    assert len(report["grid"]) == 8 and report["passed"]
    assert max(r["error"] for r in report["grid"]) <= 1e-10
