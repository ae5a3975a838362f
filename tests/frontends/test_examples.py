"""Smoke tests of examples/ in their quick modes (each a few seconds on 2 CPU cores).

The examples run in this process (imported from their files) so that torch/JAX are imported
once; each writes into a temporary folder.
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from _paths import REPO  # noqa: E402

EXAMPLES = REPO / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"cupysteer_example_{name}",
                                                  EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_filter_bank(tmp_path, capsys):
    out = load("filter_bank").main(["--quick", "--outdir", str(tmp_path)])
    assert set(out) == {"c4_regular", "d4_mixed"}
    for name, r in out.items():
        assert r["error"] < 1e-5
        for suffix in (".npz", "_basis.png", "_filters.png"):
            assert (tmp_path / f"{name}{suffix}").stat().st_size > 0
        with np.load(tmp_path / f"{name}.npz", allow_pickle=False) as d:
            np.testing.assert_array_equal(d["filters"], r["filters"])
    printed = capsys.readouterr().out
    assert "rot90(K[i, j]) − K[i+1, j+1]| = " in printed


def test_torch_rotated_digits(tmp_path, capsys):
    pytest.importorskip("torch", reason="examples/torch_rotated_digits.py needs PyTorch")
    pytest.importorskip("sklearn", reason="examples/torch_rotated_digits.py needs scikit-learn")
    pytest.importorskip("cupysteer.torch", reason="cupysteer.torch is not importable")
    results = load("torch_rotated_digits").main(["--quick", "--outdir", str(tmp_path)])
    (n_s, acc_s, err_s, _), (n_p, acc_p, err_p, _) = results.values()
    assert err_s < 1e-4  # invariant to 90° rotations by construction
    assert err_p > 1e-4  # the plain CNN is not
    assert 0.5 < n_s / n_p < 2  # comparable parameter counts
    assert 0 <= acc_s <= 1 and 0 <= acc_p <= 1
    assert (tmp_path / "digits_filters.png").read_bytes()[:4] == b"\x89PNG"
    out = capsys.readouterr().out
    assert "rotated-test accuracy" in out and "logit invariance error" in out


def test_jax_functional(capsys):
    pytest.importorskip("jax", reason="examples/jax_functional.py needs JAX")
    pytest.importorskip("sklearn", reason="examples/jax_functional.py needs scikit-learn")
    pytest.importorskip("cupysteer.jax", reason="cupysteer.jax is not importable")
    acc, err = load("jax_functional").main(["--quick"])
    assert err < 1e-4 and 0 <= acc <= 1
    assert "invariance error" in capsys.readouterr().out


def test_torch_rotated_volumes(tmp_path, capsys):
    pytest.importorskip("torch", reason="examples/torch_rotated_volumes.py needs PyTorch")
    pytest.importorskip("cupysteer.torch", reason="cupysteer.torch is not importable")
    mod = load("torch_rotated_volumes")
    v = np.random.default_rng(0).normal(size=(2, 1, 6, 6, 6))
    for g in mod.r3.Octahedral().elements():  # exact voxel permutations, g⁻¹ = gᵀ
        np.testing.assert_array_equal(mod.rotate(mod.rotate(v, g), g.T), v)
    results = mod.main(["--quick", "--outdir", str(tmp_path)])
    assert set(results) == {"steerable O CNN", "plain CNN"}
    keys = {"parameters", "canonical_accuracy", "rotated_accuracy", "invariance_error",
            "logit_scale", "seconds"}
    for r in results.values():
        assert set(r) == keys
        assert 0 <= r["canonical_accuracy"] <= 1 and 0 <= r["rotated_accuracy"] <= 1
    s, p = results["steerable O CNN"], results["plain CNN"]
    # invariant under the 24 cube rotations by construction: float32 round-off
    assert s["invariance_error"] < 1e-4 * max(1.0, s["logit_scale"])
    assert 0.5 < s["parameters"] / p["parameters"] < 2  # comparable parameter counts
    out = capsys.readouterr().out
    assert "test accuracy canonical" in out and "invariance error under the 24 rotations" in out


def test_point_cloud_classifier(capsys):
    pytest.importorskip("torch", reason="examples/point_cloud_classifier.py needs PyTorch")
    pytest.importorskip("cupysteer.torch", reason="cupysteer.torch is not importable")
    acc, err = load("point_cloud_classifier").main(["--quick"])
    assert err < 1e-4  # exactly invariant to 45° rotations (float32 round-off only)
    assert 0 <= acc <= 1
    out = capsys.readouterr().out
    assert "test accuracy" in out and "invariance error" in out
