"""kernels/point_conv.cu under AddressSanitizer + UndefinedBehaviorSanitizer and under
ThreadSanitizer (the emulator's worker runs with the sanitizer runtime preloaded; any report
fails the launch).

Cases: random blocks with shared bases and weights, isolated nodes, a hub that makes the
segment kernels use several lanes per element (shared-memory partials and barriers), the
weight adjoint's two passes, the fused 2D basis (*_2d kernels), float32 and float64.
Positive control: the lane partials launched with too little dynamic shared memory must be
reported by ASan.
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from _helpers import rel_err
from cuda_emulation import harness as H
from cuda_emulation.point_harness import CpuPointLaunch, point_module
from cuda_emulation.point_problems import harmonic_problem, make_problem, reference

SANITIZERS = ("address", "thread")


def _skip_reason(sanitizer):
    if H.gxx() is None:
        return "g++ not found"
    lib = subprocess.run([H.gxx(), f"-print-file-name={H._RUNTIME[sanitizer]}"],
                         capture_output=True, text=True).stdout.strip()
    if not os.path.isabs(lib):
        return f"{H._RUNTIME[sanitizer]} not installed for g++"
    return None


def _hub(dtype):
    rng = np.random.default_rng(2)
    E = 200
    src = np.where(np.arange(E) < 120, 0, rng.integers(1, 4, E))
    dst = np.where(np.arange(E) % 4 == 0, rng.integers(0, 3, E), 3)
    return make_problem(3, n_blocks=4, c_out=5, c_in=4, n_src=5, n_tgt=5, src=src, dst=dst,
                        dtype=dtype, dims=(1, 2, 3))


def _check(p, sanitizer, dtype):
    L = CpuPointLaunch(p["table"], p["src"], p["dst"], p["n_src"], p["n_tgt"],
                       c_in=p["g"].shape[1], sanitizer=sanitizer)
    got = (L.contract(p["basis"], p["w"], p["g"]),
           L.adjoint_features(p["basis"], p["w"], p["gy"])[:, :reference(p)[1].shape[1]],
           L.adjoint_weights(p["basis"], p["gy"], p["g"], len(p["w"])))
    tol = 1e-12 if dtype == np.float64 else 5e-5
    for a, b in zip(got, reference(p)):
        assert rel_err(a, b) < tol
    return L


@pytest.mark.parametrize("sanitizer", SANITIZERS)
def test_point_kernels_clean_under_sanitizer(sanitizer):
    reason = _skip_reason(sanitizer)
    if reason:
        pytest.skip(reason)
    t0 = time.perf_counter()
    point_module(sanitizer)
    L = _check(_hub(np.float32), sanitizer, np.float32)
    assert L.config("forward", np.float32).split > 1  # the shared-memory path ran
    assert L.config("features", np.float32).split > 1
    _check(_hub(np.float64), sanitizer, np.float64)
    _check(make_problem(5, n_blocks=6, c_out=9, c_in=7, E=25), sanitizer, np.float64)
    _check(make_problem(6, E=0), sanitizer, np.float64)
    for dtype in (np.float32, np.float64):  # the fused 2D basis (the *_2d kernels)
        h = harmonic_problem(4, dtype, E=40, n_src=3, src=np.r_[np.zeros(30, int),
                                                                np.arange(10) % 3])
        L = CpuPointLaunch(h["table"], h["src"], h["dst"], h["n_src"], h["n_tgt"],
                           c_in=h["g"].shape[1], sanitizer=sanitizer)
        sample = h["h"].at(h["delta"])
        got = (L.contract(sample, h["w"], h["g"]), L.adjoint_weights(sample, h["gy"], h["g"]))
        B = h["h"].evaluate(h["delta"]).astype(dtype)
        p = dict(h, basis=B)
        for a, b in zip(got, (reference(p)[0], reference(p)[2])):
            assert rel_err(a, b) < (1e-12 if dtype == np.float64 else 5e-5)
    print(f"\n[point sanitizers] {sanitizer}: clean, {time.perf_counter() - t0:.1f} s",
          file=sys.stderr)


def test_asan_reports_too_little_shared_memory():
    """Positive control: the lanes' partials need blockDim.x accumulators; a launch given
    half of them writes past the buffer, which ASan must report."""
    reason = _skip_reason("address")
    if reason:
        pytest.skip(reason)
    p = _hub(np.float64)
    L = CpuPointLaunch(p["table"], p["src"], p["dst"], p["n_src"], p["n_tgt"],
                       c_in=p["g"].shape[1], sanitizer="address")
    config = L.config
    L.config = lambda kind, dt: dataclasses.replace(
        config(kind, dt), shared_mem=config(kind, dt).shared_mem // 2)
    with pytest.raises(H.SanitizerError, match="AddressSanitizer"):
        L.contract(p["basis"], p["w"], p["g"])
    del L.config  # the right size again, in a fresh worker: clean
    L.contract(p["basis"], p["w"], p["g"])
