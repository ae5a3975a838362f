"""The command line under bad input (issue 16): exact, atomic output paths; --tol, --weights,
ASCII digits; progress only on a terminal; ``bench --quick``; ``demo`` with the layer options;
picture caps. Every refusal is one line on stderr with exit status 2, naming the option."""
from __future__ import annotations

import io
import os
import sys

import numpy as np
import pytest

from cupysteer import gallery
from cupysteer.cli import _common, main
from cupysteer.io import load_bank, save_bank

SMALL = ["--group", "C4", "--size", "3"]


def run(capsys, *argv):
    try:
        rc = main(list(argv))
    except SystemExit as exc:  # argparse's own refusals
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def refused(capsys, option, *argv):
    rc, out, err = run(capsys, *argv)
    assert rc == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and option in err and "Traceback" not in err
    return err


# ---- output paths -------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["bank", "bank.data", "bank.NPZ", "b.npz"])
def test_output_is_written_to_exactly_the_path_given(tmp_path, capsys, name):
    path = tmp_path / name
    rc, _, err = run(capsys, "basis", *SMALL, "-o", str(path), "-q")
    assert rc == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    assert str(load_bank(path)["group"]) == "C4"


@pytest.mark.parametrize("option", ["-o", "--png", "--filters-png"])
def test_a_directory_as_output_is_refused_naming_the_option(tmp_path, capsys, option):
    extra = ["--weights", "he"] if option == "--filters-png" else []
    for target in (str(tmp_path), str(tmp_path) + os.sep):
        refused(capsys, option, "basis", *SMALL, *extra, option, target)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option", ["-o", "--png"])
def test_missing_directory_is_refused_before_any_work(tmp_path, capsys, option):
    err = refused(capsys, option, "basis", *SMALL, option, str(tmp_path / "no" / "x"))
    assert "does not exist" in err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_as_output_is_refused(tmp_path, capsys):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    refused(capsys, "-o", "basis", *SMALL, "-o", str(fifo))


def test_two_options_naming_one_file_are_refused(tmp_path, capsys):
    p = str(tmp_path / "x")
    refused(capsys, "--png", "basis", *SMALL, "-o", p, "--png", p)


@pytest.mark.parametrize("name", ["basis.png", "basis", "basis.pic"])
def test_png_is_written_to_exactly_the_path_given(tmp_path, capsys, name):
    pytest.importorskip("matplotlib", reason="the titled gallery needs matplotlib")
    path = tmp_path / name
    rc, _, err = run(capsys, "basis", *SMALL, "--png", str(path), "-q")
    assert rc == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_failed_overwrite_leaves_the_old_bank_loadable(tmp_path, capsys, monkeypatch):
    path = tmp_path / "bank.npz"
    assert run(capsys, "basis", *SMALL, "-o", str(path), "-q")[0] == 0
    before = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", broken_savez)
    err = refused(capsys, "-o", "basis", *SMALL, "--size", "5", "-o", str(path), "-q")
    assert "disk full" in err
    assert path.read_bytes() == before and str(load_bank(path)["format"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bank.npz"]  # no temporary left


def test_save_bank_keeps_the_mode_of_the_file_it_replaces(tmp_path):
    path = tmp_path / "b"
    save_bank(path, {"x": np.zeros(2)})
    os.chmod(path, 0o600)
    save_bank(path, {"x": np.ones(2)})
    assert os.stat(path).st_mode & 0o777 == 0o600
    np.testing.assert_array_equal(np.load(path)["x"], np.ones(2))


# ---- numbers ----------------------------------------------------------------------------------
@pytest.mark.parametrize("tol", ["nan", "inf", "-inf", "-1", "-1e-300"])
def test_check_tol_must_be_finite_and_non_negative(capsys, tol):
    refused(capsys, "--tol", "check", *SMALL, f"--tol={tol}")


def test_check_tol_zero_is_accepted(capsys):
    rc, out, _ = run(capsys, "check", *SMALL, "--tol", "0", "--weights", "random", "-q")
    assert rc in (0, 1) and ("PASS" in out or "FAIL" in out)


@pytest.mark.parametrize("option, value", [
    ("--size", "٥"), ("--size", "５"), ("--size", "1_0"), ("--dilation", "²"),
    ("--seed", "٣"), ("--rings", "٠,١"), ("--sigma", "０.5"), ("--cutoff", "٣.0"),
    ("--group", "C٨"), ("--group", "D４"), ("--group", "SO2:٣"), ("--in", "irrep:١"),
    ("--in", "٢*regular"), ("--in", "regular*٢"), ("--group", "C８z"),
])
def test_only_ascii_digits_are_numbers(capsys, option, value):
    argv = ["info", *SMALL, option, value]
    if option == "--seed":
        argv = ["check", *SMALL, option, value]
    refused(capsys, option.split("/")[0] if option != "--group" else "--group", *argv)


def test_o2_quotient_angle_in_ascii_digits(capsys):
    refused(capsys, "--in", "info", "--group", "O2", "--size", "3", "--in", "quotient:٠,1")


def _write(tmp_path, name, array):
    path = tmp_path / name
    np.save(path, array, allow_pickle=False)
    return str(path)


def test_weights_file_follows_the_api_integer_rule(tmp_path, capsys):
    rc, out, err = run(capsys, "info", *SMALL, "--json")
    dim = __import__("json").loads(out)["dim"]
    ok = _write(tmp_path, "ints.npy", np.arange(dim, dtype=np.int64))
    assert run(capsys, "check", *SMALL, "--weights", ok, "-q")[0] == 0
    ok = _write(tmp_path, "bools.npy", np.ones(dim, bool))
    assert run(capsys, "check", *SMALL, "--weights", ok, "-q")[0] == 0
    big = _write(tmp_path, "big.npy", np.full(dim, 2 ** 60, np.int64))
    err = refused(capsys, "--weights", "check", *SMALL, "--weights", big)
    assert "2**53" in err
    cplx = _write(tmp_path, "c.npy", np.ones(dim, complex))
    refused(capsys, "--weights", "check", *SMALL, "--weights", cplx)
    f16 = _write(tmp_path, "h.npy", np.ones(dim, np.float16))
    refused(capsys, "--weights", "check", *SMALL, "--weights", f16)
    be = _write(tmp_path, "be.npy", np.arange(dim, dtype=">f8"))
    assert run(capsys, "check", *SMALL, "--weights", be, "-q")[0] == 0


# ---- progress --------------------------------------------------------------------------------
class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_only_on_a_terminal(monkeypatch):
    class Args:
        quiet = False
    pipe = io.StringIO()
    assert _common.progress_bar(Args, 3, "x", stream=pipe) is None
    term = _Terminal()
    bar = _common.progress_bar(Args, 3, "sampling", stream=term)
    for _ in range(3):
        bar.update(1)
    bar.close()
    assert "sampling" in term.getvalue()
    Args.quiet = True
    assert _common.progress_bar(Args, 3, "x", stream=_Terminal()) is None


def test_progress_without_tqdm_is_a_plain_counter(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)

    class Args:
        quiet = False
    term = _Terminal()
    bar = _common.progress_bar(Args, 2, "timing", stream=term)
    bar.update(1, "numpy expand")
    bar.update(1)
    bar.close()
    assert "timing: 2/2" in term.getvalue()


def test_commands_are_quiet_when_not_a_terminal(capsys):
    rc, out, err = run(capsys, "check", *SMALL)
    assert rc == 0 and "sampling irreps pairs" not in err and "\r" not in err


# ---- bench --quick, demo ------------------------------------------------------------------------
def test_bench_quick(capsys):
    rc, out, _ = run(capsys, "bench", "--quick", *SMALL, "-q")
    assert rc == 0 and "2 repeats" in out and "first build" in out


@pytest.mark.parametrize("argv", [
    ["demo", "--group", "D4", "--in", "regular", "--size", "3"],
    ["demo", "--group", "C4", "--in", "irrep:1", "--out", "trivial", "--size", "3",
     "--weights", "random", "--dtype", "float32"],
    ["demo", "--group", "O", "--in", "trivial", "--out", "std", "--size", "3"],
    ["demo", "--N", "3", "--dihedral", "--fields", "1", "--size", "3"],
    ["demo", "--group", "SO2:1000000000", "--in", "trivial", "--size", "3"],
])
def test_demo_takes_the_layer_options(capsys, argv):
    rc, out, err = run(capsys, *argv)
    assert rc == 0, err
    assert "equivariance on the" in out and "layer" in out


@pytest.mark.parametrize("argv, option", [
    (["demo", "--size", "0"], "--size"), (["demo", "--group", "X9"], "--group"),
    (["demo", "--fields", "0"], "--fields"), (["demo", "--in", "bogus"], "--in"),
    (["demo", "--rings", "a"], "--rings"),
])
def test_demo_refuses_like_the_other_commands(capsys, argv, option):
    refused(capsys, option, *argv)


# ---- pictures ---------------------------------------------------------------------------------
def test_picture_scale_is_lowered_then_refused():
    assert gallery.fit_scale(100, 100, 8) == 8
    s = gallery.fit_scale(4000, 4000, 8)
    assert 1 <= s < 8 and (4000 * s) ** 2 <= gallery.MAX_PIXELS
    with pytest.raises(ValueError, match=r"\d+×\d+ cells .*max_columns"):
        gallery.fit_scale(10 ** 5, 10 ** 4, 1)
    assert gallery.fit_inches_per_pixel(10, 10, 0.085, 100) == 0.085
    px = gallery.fit_inches_per_pixel(4000, 4000, 0.085, 100)
    assert (4000 * px * 100) ** 2 <= gallery.MAX_PIXELS * 1.0001


def test_filters_png_with_many_channels_is_cropped(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # the NumPy-only picture
    path = tmp_path / "f.png"
    rc, _, err = run(capsys, "basis", "--group", "C2", "--in", "40*regular", "--out",
                     "20*regular", "--size", "3", "--weights", "random", "--filters-png",
                     str(path))
    assert rc == 0, err
    w, h = int.from_bytes(path.read_bytes()[16:20], "big"), \
        int.from_bytes(path.read_bytes()[20:24], "big")
    cell = 3 * 8 + 8  # k pixels + 1-pixel gap, scaled by 8
    assert w <= 32 * cell + 8 and h <= 16 * cell + 8


def test_new_bank_files_follow_the_umask(tmp_path):
    """An atomically written new file gets the permissions open() would give it (not a fixed
    0o644 that a umask of 077 would not allow)."""
    import os

    from cupysteer.io import atomic_write
    old = os.umask(0o077)
    try:
        path = atomic_write(tmp_path / "bank.npz", lambda f: f.write(b"x"))
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == 0o600
