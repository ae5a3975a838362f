"""benchmarks/bench_gpu.py without a GPU: it imports, builds its layers, describes their launch
configuration and memory, its e2cnn-style PyTorch expansion matches the NumPy reference (on
the CPU), and without a device it stops with a clear message instead of a traceback."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import cupysteer as cs
from cupysteer.backends import cupy_backend

from _helpers import rel_err
from _paths import REPO  # noqa: E402

BENCH = REPO / "benchmarks" / "bench_gpu.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_layers_and_description(bench):
    sets = bench.build_layers(quick=True)
    assert "C8 regular x16 5x5" in sets and any("network" in k for k in sets)
    for name, layers in sets.items():
        d = bench.describe(layers)
        assert d["dim"] == sum(L.dim for L in layers)
        assert d["forward_launch"]["shared_mem"] <= 48 * 1024
        if "regular" in name or "network" in name:  # the storage target is for regular fields
            assert 5 * d["plan_device_bytes"] < d["padded_basis_bytes"]


def test_layers_only_cli(bench, capsys):
    assert bench.main(["--layers-only", "--quick"]) == 0
    assert "C16 regular x8 7x7" in capsys.readouterr().out


def test_no_gpu_message(bench, capsys):
    if cupy_backend.is_available():
        pytest.skip("a GPU is present")
    assert bench.main(["--quick"]) == 3
    assert "no usable CUDA device" in capsys.readouterr().err


def test_e2cnn_style_expansion_matches_numpy(bench):
    torch = pytest.importorskip("torch")
    G = cs.CyclicGroup(4)
    R, T, I1 = G.regular_representation, G.trivial_representation, G.irreps()[1].representation
    L = cs.LayerBasis(cs.FieldType(G, [R, T, R, I1]), cs.FieldType(G, [I1, R, T, R]), 5)
    e = bench.E2cnnStyle(L, torch.device("cpu"), torch.float64)
    w = np.random.default_rng(0).standard_normal(L.dim)
    got = e(torch.tensor(w)).numpy()
    assert got.shape == L.shape
    assert rel_err(got, L.expand(w)) < 1e-12
    # and its autograd backward is the adjoint
    wt = torch.tensor(w, requires_grad=True)
    Gr = np.random.default_rng(1).standard_normal(L.shape)
    e(wt).backward(torch.tensor(Gr))
    assert rel_err(wt.grad.numpy(), L.adjoint(Gr)) < 1e-12
