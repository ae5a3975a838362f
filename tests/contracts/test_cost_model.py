"""benchmarks/cost_model.py (issue 14's cost model), without a GPU: it predicts every layer of
bench_gpu.py for v1 and v2; its counts match hand-computed values on a one-block plan; the
ptxas report is parsed (from nvcc when installed, else from the recorded report); and the
charter's guard: the predicted time of v2 is at most v1's on every benchmark layer, forward
and adjoint."""
from __future__ import annotations

import shutil
import sys

import pytest

import cupysteer as cs
from cupysteer.backends.launch import launch_config
from cupysteer.backends.packing import pack_plans

from _paths import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import _cost_hw as hw  # noqa: E402
import _cost_ptxas as ptx  # noqa: E402
import _cost_v2 as cost_v2  # noqa: E402
import bench_gpu  # noqa: E402
import cost_model as cm  # noqa: E402

H200 = cm.DEVICES["h200"]


@pytest.fixture(scope="module")
def rows():
    return {r["name"]: r for r in cm.predict_all(H200)}


@pytest.fixture(scope="module")
def tiny():
    """One field pair (trivial → trivial of C2, 3×3): one irreps block of 4 elements, P = 9."""
    G = cs.CyclicGroup(2)
    t = cs.FieldType(G, [G.trivial_representation])
    L = cs.LayerBasis(t, t, 3)
    p = pack_plans([L.plan])
    assert (p.dim, p.max_points, len(p.basis), len(p.blocks)) == (4, 9, 36, 1)
    return L, p


def test_every_benchmark_layer_is_predicted(rows):
    names = [n for n, *_ in bench_gpu.LAYERS] + ["10-layer C8 network",
                                                 "largest layer of the network"]
    assert sorted(rows) == sorted(names)
    sets = bench_gpu.build_layers()
    for name, r in rows.items():
        assert r["floor_s"] >= H200.launch_s and r["bytes"] > 0
        for v in ("v1", "v2"):
            for kind in ("forward", "adjoint"):
                pr = r[f"{v}_{kind}"]
                assert H200.launch_s < pr["s"] < 1.0, (name, v, kind, pr)
                assert pr["blocks_per_sm"] >= 1 and pr["loads_per_output"] > 0
                assert pr["s"] >= max(pr[k] for k in ("cp_s", "lsu_s", "issue_s", "l2_s",
                                                      "hbm_s"))
        if name in sets:  # the grids are the launch configurations' (v2: sm_90 opt-in)
            p = pack_plans([L.plan for L in sets[name]])
            for kind in ("forward", "adjoint"):
                assert tuple(r[f"v1_{kind}"]["grid"]) == launch_config(p, kind, 1, 4).grid
                assert tuple(r[f"v2_{kind}"]["grid"]) == \
                    cm.VERSIONS["v2"].config(p, kind, 1, 4, H200).grid
            assert r["bytes"] == cm.hbm_bytes(p)
        assert r["padded"]["forward_s"] > 0
    assert "network_over_largest" in rows["10-layer C8 network"]["v2_targets"]


def test_bytes_are_the_plan_sizes(tiny):
    _, p = tiny
    # weights + basis + Q + filter (float32), then the int64 tables (12 + 7 columns, 4 slots)
    assert cm.hbm_bytes(p) == 4 * (4 + 36 + 1 + 9) + 8 * (12 + 7 + 4)


def test_v1_counts_on_one_block(tiny):
    _, p = tiny
    cfg, paths, tot, extra = cm.VERSIONS["v1"].walk(p, "forward")
    assert len(paths) == 1 and extra == {"hbm_bytes": 0, "launches": 0, "serial_bytes": 0}
    n, P, T = 4, 9, 128
    assert tot["fma"] == n * P  # every filter value: 4 elements
    # loads: the block-table row (7 per thread), w[wi[e]], wi[e], B[e] per cell and element,
    # one shared load per output (Q_out = I)
    assert tot["loads"] == 7 * T + 3 * n * P + P
    # wavefronts: 4 warps × 7 table loads; per element 2 uniform loads + the basis row
    # B[9e : 9e + 9] (36e..36e+35 bytes: one 128-byte line for e < 3, two for e = 3);
    # the 9 outputs: one line
    assert tot["gwave"] == 4 * 7 + 2 * n + (1 + 1 + 1 + 2) + 1
    _, _, adj, _ = cm.VERSIONS["v1"].walk(p, "adjoint")
    assert adj["fma"] == n * P
    # G's 9 points: one line; lanes = the 4 weights, 9 trips each, their basis rows
    # (bytes 0, 36, 72, 108) in one line: 1/4 wavefront per lane load, plus per warp a
    # 1-step search and the 7-field table row; the write: positions, slots, weights (3 lines)
    assert adj["gwave"] == 1 + (n * P / 4 + 1 + 7) + 3
    # G (9), basis + shared G~ per trip (2 · 36), search + table per weight (4 · 8),
    # positions + accumulator per weight (2 · 4)
    assert adj["loads"] == P + 2 * n * P + n * 8 + 2 * n


class _V2Fallback(cost_v2.V2):
    """v2 walked with the fallback launch (what the model uses without launch_v2.py)."""

    def config(self, packed, kind, batch=1, item=4, dev=None):
        return cost_v2.fallback_config(packed, kind, batch, item)


def test_v2_does_the_same_arithmetic(tiny):
    _, p = tiny
    for kind in ("forward", "adjoint"):
        _, _, t1, _ = cm.VERSIONS["v1"].walk(p, kind)
        _, _, t2, _ = cm.VERSIONS["v2"].walk(p, kind)
        cfg, _, t3, _ = _V2Fallback().walk(p, kind)
        assert t3["fma"] == t2["fma"] == t1["fma"] == 36, kind
        assert cfg.shared_mem <= H200.smem_per_block_optin


def test_recorded_ptxas_report():
    rep = hw.ptxas_report(ptx.RECORDED["v1"])
    assert len(rep) == 2 and all(r["spill_stores"] == 0 for r in rep.values())
    assert hw.registers(rep, "expand_forward", "f") == 48
    assert hw.registers(rep, "expand_adjoint", "f") == 48
    assert hw.registers(rep, "expand_forward", "d") is None
    regs, src = ptx.kernel_registers(cm.VERSIONS["v1"], "forward", use_nvcc=False)
    assert (regs, src) == (48, "recorded")
    # v2: the direct forward (irreps-only launches) fits eight CUDA blocks per SM
    rep2 = hw.ptxas_report(ptx.RECORDED["v2"])
    assert all(r["spill_stores"] == 0 for r in rep2.values())
    assert hw.registers(rep2, "expand_forward_direct_v2", "f") == 64
    assert hw.registers(rep2, "expand_forward_v2", "f") == 80
    assert ptx.kernel_registers(cm.VERSIONS["v2"], "direct", use_nvcc=False) == (64, "recorded")


def test_resident_blocks_and_packing():
    # 48 registers: 1536 per warp, 4 warps → 10 blocks by registers; 25088 + 1024 bytes of
    # shared memory → 233472 // 26112 = 8 blocks; 2048 / 128 = 16 by threads
    assert hw.resident_blocks(H200, 128, 48, 25088) == 8
    assert hw.resident_blocks(H200, 128, 64, 0) == 8  # 2048 registers per warp
    assert hw.resident_blocks(H200, 128, 48, 228 * 1024) == 0  # above the opt-in limit
    assert hw.makespan([1.0, 1.0, 1.0], 2) == 2.0
    assert hw.makespan([3.0, 1.0, 1.0, 1.0], 2) == 3.0


def test_nvcc_ptxas_report():
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc not found on PATH: the recorded report (test_recorded_ptxas_report) "
                    "is what the model uses here")
    for v in ("v1", "v2"):
        rep, src = ptx.version_report(cm.VERSIONS[v])
        if v == "v2" and src != "nvcc":
            pytest.skip(f"kernels/expand_v2.cu did not compile with nvcc here ({src})")
        assert src == "nvcc", v
        for kind in ("forward", "adjoint"):
            regs = hw.registers(rep, cm.VERSIONS[v].kernels[kind], "f")
            assert regs is not None and 16 <= regs <= 255, (v, kind, regs)


@pytest.mark.parametrize("kind", ("forward", "adjoint"))
def test_v2_predicted_no_slower_than_v1(rows, kind):
    """The charter's guard (issue 14): v2's predicted time ≤ v1's on every benchmark layer."""
    worse = {name: (round(1e6 * r[f"v1_{kind}"]["s"], 1), round(1e6 * r[f"v2_{kind}"]["s"], 1))
             for name, r in rows.items() if r[f"v2_{kind}"]["s"] > r[f"v1_{kind}"]["s"]}
    assert not worse, f"v2 predicted slower than v1 ({kind}, H200, µs v1 → v2): {worse}"


def test_cli_prints_the_table(rows, capsys, monkeypatch):
    # the walk is the same for every device; only the rows' source is replaced (time)
    monkeypatch.setattr(cm, "predict_all", lambda dev, quick=False: list(rows.values()))
    assert cm.main(["--device", "h100"]) == 0
    out = capsys.readouterr().out
    assert "H100" in out and "C8 regular x16 5x5" in out and "v2 fwd" in out


def test_bench_gpu_prints_predictions_beside_measurements(rows, capsys, monkeypatch):
    monkeypatch.setattr(cm, "predict_all", lambda dev, quick=False: list(rows.values()))
    measured = [{"name": "C8 regular x16 5x5", "fused_fwd_s": 20e-6, "fused_fwd_adj_s": 45e-6}]
    out = bench_gpu.print_predicted("NVIDIA H100 80GB HBM3", measured, False)
    text = capsys.readouterr().out
    assert "H100" in text and "20.0" in text and "45.0" in text
    assert out["C8 regular x16 5x5"]["v2_adjoint"] == rows["C8 regular x16 5x5"]["v2_adjoint"]["s"]
