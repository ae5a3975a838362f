"""The ``cupysteer`` command: basis/info/check/bench/demo, .npz contents, errors (exit 2)."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import fields

import numpy as np
import pytest

import cupysteer as cs
from cupysteer.backends.numpy_backend import NumpyExpander
from cupysteer.cli import main
from cupysteer.fields_spec import parse_field_type
from cupysteer.plan import ExpansionPlan

LAYER = ["--group", "C8", "--in", "regular", "--out", "regular,irrep:1", "--size", "5"]


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _no_matplotlib(monkeypatch):
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib → ImportError


# ---- basis ----------------------------------------------------------------------------------
def test_basis_npz_is_plain_and_complete(tmp_path, capsys):
    path = tmp_path / "bank.npz"
    rc, out, err = run(capsys, "basis", *LAYER, "--weights", "he", "--seed", "3",
                       "--dtype", "float64", "-o", str(path))
    assert rc == 0, err
    assert "wrote" in err and "180" not in out  # progress goes to stderr
    G = cs.CyclicGroup(8)
    basis = cs.LayerBasis(parse_field_type(G, "regular"),
                          parse_field_type(G, "regular,irrep:1"), 5)
    with np.load(path, allow_pickle=False) as d:
        a = {k: d[k] for k in d.files}
    assert str(a["format"]) == "cupysteer.basis/1"
    assert (str(a["group"]), str(a["in_fields"]), str(a["out_fields"])) == (
        "C8", "regular", "regular,irrep:1")
    assert int(a["dim"]) == basis.dim and int(a["kernel_size"]) == 5
    np.testing.assert_array_equal(a["points"], basis.points)
    np.testing.assert_array_equal(a["settings_rings"], basis.settings.rings)
    np.testing.assert_array_equal(a["settings_sigma"], basis.settings.sigma)
    # the irreps-level basis, one entry per irreps pair
    assert len(a["pair_in_irrep"]) == len(basis.irreps_pairs)
    for t, (pin, pout) in enumerate(basis.irreps_pairs):
        pb = basis.pair_basis(pin, pout)
        assert a["pair_in_irrep"][t] == pin.name and a["pair_out_irrep"][t] == pout.name
        np.testing.assert_array_equal(a[f"pair{t}_values"],
                                      pb.values.reshape(pb.values.shape[:3] + (5, 5)))
        np.testing.assert_array_equal(a[f"pair{t}_frequency"], pb.frequency)
        np.testing.assert_array_equal(a[f"pair{t}_radius"],
                                      np.asarray(basis.settings.rings)[pb.ring])
    # weights and filters
    w = basis.init_weights(np.random.default_rng(3), dtype=np.float64)
    np.testing.assert_array_equal(a["weights"], w)
    np.testing.assert_allclose(a["filters"], basis.expand(w), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(a["bias_expansion"], basis.bias_expansion())
    np.testing.assert_array_equal(a["he_std"], basis.he_std())
    # the plan arrays alone rebuild the expansion
    plan = ExpansionPlan(**{f.name: (tuple(a[f"plan_{f.name}"]) if f.name == "filter_shape"
                                     else a[f"plan_{f.name}"].item()
                                     if a[f"plan_{f.name}"].ndim == 0 else a[f"plan_{f.name}"])
                            for f in fields(ExpansionPlan)})
    np.testing.assert_allclose(NumpyExpander(plan, np.float64).expand(w), a["filters"],
                               atol=1e-12)
    assert a["element_frequency"].shape == (basis.dim,)
    assert a["element_in_irrep_name"].dtype.kind == "U"


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_basis_weights_from_file(tmp_path, capsys, suffix):
    G = cs.DihedralGroup(4)
    t = parse_field_type(G, "regular")
    basis = cs.LayerBasis(t, t, 3)
    w = np.random.default_rng(0).standard_normal(basis.dim)
    wfile = tmp_path / f"w{suffix}"
    (np.save if suffix == ".npy" else lambda p, x: np.savez(p, weights=x))(wfile, w)
    out = tmp_path / "b.npz"
    rc, _, err = run(capsys, "basis", "--group", "D4", "--in", "regular", "--size", "3",
                     "--weights", str(wfile), "--dtype", "float64", "-o", str(out), "-q")
    assert rc == 0 and err == ""
    with np.load(out, allow_pickle=False) as d:
        np.testing.assert_allclose(d["filters"], basis.expand(w), atol=1e-12)


def test_random_weights_are_seeded(tmp_path, capsys):
    paths = [tmp_path / f"{i}.npz" for i in range(3)]
    for p, seed in zip(paths, (1, 1, 2)):
        assert run(capsys, "basis", "--group", "C4", "--size", "3", "--weights", "random",
                   "--seed", str(seed), "-o", str(p), "-q")[0] == 0
    w = [np.load(p)["weights"] for p in paths]
    assert np.array_equal(w[0], w[1]) and not np.array_equal(w[0], w[2])
    assert w[0].dtype == np.float32


def test_png_with_matplotlib(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png, fpng = tmp_path / "g.png", tmp_path / "f.png"
    rc, _, err = run(capsys, "basis", "--group", "C4", "--in", "trivial", "--out", "regular",
                     "--size", "5", "--weights", "he", "--png", str(png), "--filters-png",
                     str(fpng))
    assert rc == 0, err
    for p in (png, fpng):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "without titles" not in err


def test_png_without_matplotlib_degrades(tmp_path, capsys, monkeypatch):
    _no_matplotlib(monkeypatch)
    png = tmp_path / "g.png"
    rc, _, err = run(capsys, "basis", "--group", "C4", "--in", "trivial", "--out", "regular",
                     "--size", "5", "--png", str(png))
    assert rc == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "pip install matplotlib" in err


# ---- errors: exit 2, one line naming the argument ---------------------------------------------
@pytest.mark.parametrize("argv, argument", [
    (["basis", "--group", "C0"], "--group"),
    (["info", "--group", "Z8"], "--group"),
    (["basis", "--group", "D4", "--in", "irrep:1"], "--in"),
    (["check", "--group", "C8", "--out", "regular,bogus"], "--out"),
    (["info", "--size", "0"], "--size"),
    (["info", "--size", "x"], "--size"),
    (["info", "--dilation", "0"], "--dilation"),
    (["info", "--rings", "0,a"], "--rings"),
    (["info", "--rings", "0,9"], "--rings"),
    (["info", "--sigma", "-1"], "--sigma"),
    (["info", "--cutoff", "0"], "--cutoff"),
    (["info", "--max-offset", "-1"], "--max-offset"),
    (["basis", "--weights", "nope.txt"], "--weights"),
    (["basis", "--weights", "missing.npy"], "--weights"),
    (["basis", "--filters-png", "f.png"], "--filters-png"),
    (["basis", "--max-columns", "0"], "--max-columns"),
    (["check", "--samples", "-1"], "--samples"),
    (["bench", "--repeat", "0"], "--repeat"),
    (["bench", "--dtype", "float16"], "--dtype"),
    (["demo", "--N", "0"], "--N"),
    (["frobnicate"], "COMMAND"),
])
def test_bad_input_exits_2_with_one_line(capsys, argv, argument):
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's own errors
        rc = exc.code
    _, err = capsys.readouterr()
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert argument in lines[0] and "error" in lines[0]


def test_wrong_weight_shape(tmp_path, capsys):
    f = tmp_path / "w.npy"
    np.save(f, np.zeros(3))
    rc, _, err = run(capsys, "basis", "--group", "C4", "--size", "3", "--weights", str(f))
    assert rc == 2 and "--weights" in err and "expected shape" in err


def test_unwritable_output(tmp_path, capsys):
    rc, _, err = run(capsys, "basis", "--group", "C4", "--size", "3",
                     "-o", str(tmp_path / "no" / "such" / "dir" / "b.npz"))
    assert rc == 2 and "--output" in err


# ---- info, check, bench, demo ---------------------------------------------------------------
def test_info(capsys):
    rc, out, _ = run(capsys, "info", *LAYER, "-q")
    assert rc == 0
    assert "180 weights" in out or "weights" in out
    assert "irreps-level basis" in out and "padded" in out and "rings" in out
    rc, out, _ = run(capsys, "info", *LAYER, "--json", "-q")
    d = json.loads(out)
    G = cs.CyclicGroup(8)
    basis = cs.LayerBasis(parse_field_type(G, "regular"),
                          parse_field_type(G, "regular,irrep:1"), 5)
    assert d["dim"] == basis.dim and d["stored_bytes"] == basis.stored_bytes
    assert d["padded_bytes"] == basis.padded_bytes
    assert d["settings"]["rings"] == list(basis.settings.rings)
    assert sum(p["blocks"] for p in d["irreps_pairs"]) == basis.plan.num_blocks
    assert sum(b["weights"] for b in d["weight_blocks"]) == basis.dim


def test_check_finite_group(capsys):
    rc, out, _ = run(capsys, "check", *LAYER, "-q")
    assert rc == 0, out
    assert "tolerance 1e-09" in out and out.strip().endswith("tolerance 1e-09")
    assert "4 elements map the 5×5 grid" in out  # rotations by 0, 90, 180, 270 degrees
    assert "4 other elements (all;" in out and "no interpolation" in out
    assert "PASS" in out


def test_check_json_and_continuous_group(capsys):
    rc, out, _ = run(capsys, "check", "--group", "O2:3", "--in", "irrep:1,1", "--out",
                     "trivial,irrep:1,2", "--size", "5", "--samples", "3", "--json", "-q")
    d = json.loads(out)
    assert rc == 0 and d["passed"]
    assert len(d["grid"]) == 8  # 4 rotations and the 4 reflections with axes k·45°
    assert len(d["sampled"]) == 3 and "rebuilt" in d["sampled_method"]
    assert max(e["error"] for e in d["grid"] + d["sampled"]) < 1e-9


def test_check_dihedral_other_axis(capsys):
    rc, out, _ = run(capsys, "check", "--group", "D8:axis=0.0", "--in", "regular", "--out",
                     "irrep:1,1,trivial", "--size", "3", "--json", "-q")
    d = json.loads(out)
    assert rc == 0 and len(d["grid"]) == 8 and len(d["sampled"]) == 8


def test_check_fails_with_exit_1(capsys):
    rc, out, _ = run(capsys, "check", *LAYER, "--tol", "0", "--weights", "random", "-q")
    assert rc == 1 and "FAIL" in out


def test_bench(capsys):
    rc, out, _ = run(capsys, "bench", "--group", "C4", "--in", "2*regular", "--size", "3",
                     "--repeat", "2", "-q")
    assert rc == 0
    assert "numpy  expand" in out and "numpy  adjoint" in out
    assert "CuPy" in out or "cupy" in out
    rc, out, _ = run(capsys, "bench", "--group", "C4", "--size", "3", "--repeat", "1",
                     "--batch", "3", "--json", "-q")
    d = json.loads(out)
    assert {(t["backend"], t["op"]) for t in d["timings"]} >= {("numpy", "expand"),
                                                               ("numpy", "adjoint")}


def test_demo(capsys):
    rc, out, _ = run(capsys, "demo", "--N", "4", "--fields", "1", "--size", "3")
    assert rc == 0 and "regular representation" in out and "equivariance" in out


def test_python_m_and_help():
    r = subprocess.run([sys.executable, "-m", "cupysteer", "basis", "--help"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0
    assert "examples:" in r.stdout and "--png" in r.stdout and "allow_pickle=False" in r.stdout
    r = subprocess.run([sys.executable, "-m", "cupysteer", "info", "--group", "C8",
                        "--in", "bogus"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "--in" in r.stderr and "accepted" in r.stderr


def test_bench_times_cupy_when_available(capsys, monkeypatch):
    """The CuPy rows appear when the backend reports a device (faked here: the fake module
    hands back NumPy arrays, so only the command's plumbing is exercised)."""
    import types

    from cupysteer.backends import cupy_backend
    stream = types.SimpleNamespace(synchronize=lambda: None)
    fake = types.SimpleNamespace(asarray=np.asarray, cuda=types.SimpleNamespace(
        get_current_stream=lambda: stream))
    monkeypatch.setattr(cupy_backend, "is_available", lambda: True)
    monkeypatch.setattr(cupy_backend, "import_cupy", lambda: fake)
    rc, out, _ = run(capsys, "bench", "--group", "C4", "--size", "3", "--repeat", "1", "-q")
    assert rc == 0 and "cupy   expand" in out and "cupy   adjoint" in out
    assert "not available" not in out
