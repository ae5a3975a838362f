"""kernels/expand_v2.cu under AddressSanitizer + UndefinedBehaviorSanitizer and under
ThreadSanitizer (the harness's worker with the sanitizer runtime preloaded; any report fails
the launch), on the v2 paths: point tiles with the adjoint's second pass, weight passes and
row chunks, column tiles, paired (vec = 2) basis loads, warp shuffles, half outputs, a whole
network. Positive control: UBSan reports the paired loads when the alignment the launch
configuration proves is absent (vec = 2 forced on odd offsets).
"""
from __future__ import annotations

import dataclasses
import sys
import time

import numpy as np
import pytest
from test_kernels_sanitizers import _skip_reason

import cupysteer as cs
from cupysteer import r3
from cupysteer.backends.kernel_source import forward_args_v2, name_expression
from cupysteer.backends.launch_v2 import launch_config_v2
from cupysteer.backends.packing import pack_plans

from _helpers import ft, group, irrep, reference_adjoint, reference_forward, rel_err
from cuda_emulation import harness as H

SANITIZERS = ("address", "thread")


@pytest.fixture(scope="module", autouse=True)
def sanitized_builds():
    todo = [(True, s, 2) for s in SANITIZERS if _skip_reason(s) is None]
    t0 = time.perf_counter()
    builds = H.prebuild(todo) if todo else []
    print(f"\n[sanitizers v2] builds ({time.perf_counter() - t0:.1f} s): "
          + ", ".join(f"{b.so.name}: {'cached' if not b.seconds else f'{b.seconds:.1f} s'}"
                      for b in builds), file=sys.stderr)


def cases():
    C4 = group("C4")
    R, T, I1 = C4.regular_representation, C4.trivial_representation, irrep(C4, 1)
    Oct = r3.Octahedral()
    return [  # (layers, dtype, expander keywords, what the configuration must show)
        ([cs.LayerBasis(ft(C4, R, I1), ft(C4, I1, R), 5),
          cs.LayerBasis(ft(C4, R), ft(C4, I1, T), 3), cs.LayerBasis(ft(C4, T, R), ft(C4, R), 1)],
         np.float32, dict(sms=100_000), lambda f, a: a.tiles > 1),
        ([cs.LayerBasis(ft(C4, R, I1), ft(C4, R), 4)], np.float64, {},
         lambda f, a: f.vec == 2),
        ([cs.LayerBasis(cs.FieldType(Oct, [Oct.regular_representation]),
                        cs.FieldType(Oct, [Oct.regular_representation]), 3)], np.float64,
         dict(shared_limit=(240 + 24 * 8 + 24 * 24) * 8 - 64),  # row chunks in both kernels
         lambda f, a: a.rows < 24 and f.rows < 24),
        # irreps only: expand_forward_direct_v2 (window zeroed, barrier, weights in place)
        ([cs.LayerBasis(ft(C4, T, I1, irrep(C4, 2)), ft(C4, I1, T), 5)], np.float32, {},
         lambda f, a: f.kernel == "direct"),
    ]


def _run(sanitizer, layers, dtype, kw, expect):
    ex = H.CpuExpander([L.plan for L in layers], dtype, method="fused", sanitizer=sanitizer,
                       half_module=True, threads=kw.pop("threads", 64), **kw)
    p = ex.packed
    rng = np.random.default_rng(0)
    W = rng.standard_normal((2, p.dim)).astype(dtype)
    out = ex.expand(W)
    fcfg = ex.last_config
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert rel_err(out, reference_forward(layers, W)) < tol
    G = rng.standard_normal(out.shape).astype(dtype)
    assert rel_err(ex.adjoint(G), reference_adjoint(layers, G)) < tol
    assert expect(fcfg, ex.last_config), (fcfg, ex.last_config)
    if dtype == np.float32:
        np.testing.assert_array_equal(ex.expand(W, out_dtype="float16"), out.astype(np.float16))
        ex.expand(W, out_dtype="bfloat16")


@pytest.mark.parametrize("sanitizer", SANITIZERS)
def test_v2_kernels_clean_under_sanitizer(sanitizer):
    reason = _skip_reason(sanitizer)
    if reason:
        pytest.skip(reason)
    t0 = time.perf_counter()
    for i, (layers, dtype, kw, expect) in enumerate(cases()):
        if sanitizer == "thread" and i == 1:  # TSan checks barriers: the other two cover them
            continue
        _run(sanitizer, layers, dtype, dict(kw), expect)
    print(f"\n[sanitizers v2] {sanitizer}: clean, {time.perf_counter() - t0:.1f} s",
          file=sys.stderr)


def test_ubsan_reports_unproven_paired_loads():
    """Positive control: an odd number of points (k = 3) makes the pairs' addresses odd; the
    launch configuration says vec = 1, and forcing vec = 2 is reported by UBSan's alignment
    check (so the clean vec = 2 run above means the proof held)."""
    reason = _skip_reason("address")
    if reason:
        pytest.skip(reason)
    C4 = group("C4")
    L = cs.LayerBasis(ft(C4, C4.regular_representation), ft(C4, C4.regular_representation), 3)
    p = pack_plans([L.plan])
    cfg = launch_config_v2(p, "forward", 1, 8)
    assert cfg.vec == 1
    ex = H.CpuExpander(L.plan, np.float64, method="fused", sanitizer="address",
                       half_module=True, threads=32)
    t = ex.tables
    mod = H.expand_module(True, "address", 2)
    kern = mod.get_function(name_expression("forward", np.float64, version=2))

    def launch(c):
        out = np.empty(p.filter_size)
        kern(c.grid, (32, 1, 1), forward_args_v2(
            np.ones(p.dim), p.dim, t["basis"], t["cob"], t["fieldpairs"], t["blocks"],
            t["positions"], t["entries"], t["entry_ptr"], out, p.filter_size, c),
            shared_mem=c.shared_mem)
        return out

    clean = launch(cfg)
    assert rel_err(clean, L.expand(np.ones(L.dim)).ravel()) < 1e-12
    with pytest.raises(H.SanitizerError, match="misaligned"):
        launch(dataclasses.replace(cfg, vec=2))
