"""Cost model of the fused CUDA kernels (issue 14): predicted H100/H200 times of v1 and v2.

    python3 benchmarks/cost_model.py [--json] [--device h200|h100]

No GPU is needed (nothing here is measured): every CUDA block of every launch of the layers of
``bench_gpu.py`` (float32, batch 1) is replayed on the real packed plan and launch configuration
(walkers: ``_cost_v1`` = kernels/expand.cu, ``_cost_v2`` = kernels/expand_v2.cu), counting
global/shared wavefronts, warp instructions, FMAs, streamed bytes and a critical path per block
(``_cost_walk``); resident blocks per SM come from the ptxas report of ``nvcc -arch=sm_90``
(a recorded report when nvcc is absent) and the shared memory of the launch, and the kernel
time is ``max(critical paths packed onto SMs × resident blocks, wavefronts / L1 rate,
instructions / issue rate, L2 bytes / L2 BW, HBM bytes / HBM BW) + launch floor``
(``_cost_hw``). Beside it: the HBM floor ``max(launch, bytes / bandwidth)`` (bench_gpu.py's
``floor_s``), the padded cuBLAS path (``_cost_padded``) and the issue's targets. Predictions
cover the kernel (the launch included), not cupysteer's host time per call (issue 13).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for _p in (HERE, ROOT):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from _cost_hw import DEVICES, kernel_time, resident_blocks  # noqa: E402
from _cost_padded import padded_estimate  # noqa: E402
from _cost_ptxas import kernel_registers  # noqa: E402
from _cost_v1 import V1  # noqa: E402
from _cost_v2 import V2  # noqa: E402
from bench_gpu import build_layers  # noqa: E402

from cupysteer.backends.packing import pack_plans  # noqa: E402

__all__ = ["VERSIONS", "hbm_bytes", "predict_launch", "predict", "predict_all", "main"]

VERSIONS = {"v1": V1(), "v2": V2()}
#: issue 14's targets: padded / fused ≥ 1.5 (forward and forward+adjoint); fused ≤ 2× the HBM
#: floor for C8×64 and the network; whole network ≤ 1.5× its largest layer
TARGETS = {"vs_padded": 1.5, "vs_floor": 2.0, "network_vs_largest": 1.5}
FLOOR_LAYERS = ("C8 regular x64 7x7", "10-layer C8 network")


def hbm_bytes(p, batch: int = 1, item: int = 4) -> int:
    """Bytes a launch must move through HBM at least: weights (or their gradient), basis, Q's,
    filters (or their gradient) and the integer tables (bench_gpu.py's ``bytes_moved``)."""
    return int(item * (p.dim * batch + len(p.basis) + len(p.cob) + p.filter_size * batch)
               + p.fieldpairs.nbytes + p.blocks.nbytes + p.positions.nbytes)


def predict_launch(version, p, kind: str, dev, batch: int = 1) -> dict:
    """Prediction of one launch of ``version`` ('v1' / 'v2' walker) over packed plan ``p``."""
    w = VERSIONS[version] if isinstance(version, str) else version
    cfg, paths, totals, extra = w.walk(p, kind, batch, dev=dev)
    # the kernel the launch configuration picked (v2 forward: 'forward' or 'direct')
    regs, src = kernel_registers(w, getattr(cfg, "kernel", kind) if kind == "forward" else kind)
    res = resident_blocks(dev, cfg.block[0], regs, cfg.shared_mem)
    totals = dict(totals, hbm_bytes=hbm_bytes(p, batch) + extra["hbm_bytes"])
    t = kernel_time(dev, totals, paths, res)
    t["s"] += extra["launches"] * dev.launch_s + extra["serial_bytes"] / dev.hbm_Bps
    outputs = p.filter_size * batch if kind == "forward" else p.dim * batch
    return {"grid": list(cfg.grid), "threads": cfg.block[0], "shared_mem": cfg.shared_mem,
            "tile": cfg.tile, "registers": regs, "registers_from": src, "blocks_per_sm": res,
            "loads_per_output": totals["loads"] / outputs,
            "wavefronts_per_output": (totals["gwave"] + totals["swave"]) / outputs,
            "fma": totals["fma"], "max_block_cycles": max(paths, default=0.0),
            "mean_block_cycles": sum(paths) / max(len(paths), 1),
            "extra_hbm_bytes": extra["hbm_bytes"],
            "extra_launches": extra["launches"], **t}


def predict(name: str, layers, dev, batch: int = 1) -> dict:
    p = pack_plans([L.plan for L in layers])
    moved = hbm_bytes(p, batch)
    row = {"name": name, "layers": len(layers), "bytes": moved,
           "floor_s": max(dev.launch_s, moved / dev.hbm_Bps)}
    for v in VERSIONS:
        for kind in ("forward", "adjoint"):
            row[f"{v}_{kind}"] = predict_launch(v, p, kind, dev, batch)
    row["padded"] = padded_estimate(layers, dev, batch)
    _targets(row)
    return row


def _targets(row):
    pf, pa = row["padded"]["forward_s"], row["padded"]["adjoint_s"]
    for v in VERSIONS:
        f, a = row[f"{v}_forward"]["s"], row[f"{v}_adjoint"]["s"]
        t = {"padded_over_fwd": pf / f, "padded_over_fwd_adj": (pf + pa) / (f + a)}
        t["vs_padded_met"] = min(t["padded_over_fwd"], t["padded_over_fwd_adj"]) \
            >= TARGETS["vs_padded"]
        if row["name"] in FLOOR_LAYERS:
            t["fwd_over_floor"] = f / row["floor_s"]
            t["vs_floor_met"] = t["fwd_over_floor"] <= TARGETS["vs_floor"]
        row[f"{v}_targets"] = t


def predict_all(dev, quick: bool = False) -> list:
    """Rows for every layer of bench_gpu.py, the network, and the network's largest layer
    (whose ratio to the network is the whole-network target)."""
    sets = build_layers(quick)
    rows = [predict(name, layers, dev) for name, layers in sets.items()]
    net_layers = next(v for k, v in sets.items() if "network" in k)
    big = max(net_layers, key=lambda L: L.dim * int(np.prod(L.shape)))  # as bench_gpu.py
    largest = predict("largest layer of the network", [big], dev)
    net = next(r for r in rows if "network" in r["name"])
    for v in VERSIONS:
        ratio = net[f"{v}_forward"]["s"] / largest[f"{v}_forward"]["s"]
        net[f"{v}_targets"]["network_over_largest"] = ratio
        net[f"{v}_targets"]["network_vs_largest_met"] = ratio <= TARGETS["network_vs_largest"]
    return rows + [largest]


def _us(s):
    return f"{1e6 * s:.1f}"


def _mark(row, v):
    t = row[f"{v}_targets"]
    marks = ["pad " + ("met" if t["vs_padded_met"] else "MISSED")]
    if "vs_floor_met" in t:
        marks.append("floor " + ("met" if t["vs_floor_met"] else "MISSED"))
    if "network_vs_largest_met" in t:
        marks.append("net " + ("met" if t["network_vs_largest_met"] else "MISSED"))
    return ",".join(marks)


def table(rows, dev) -> str:
    """The markdown table printed by the command (and recorded in BENCHMARKS.md)."""
    head = ("| layer (float32, batch 1) | bytes | HBM floor µs | grid v1 / v2 (fwd) "
            "| blocks/SM v1 / v2 (fwd) | loads/out v1 / v2 (fwd) | v1 fwd µs | v1 adj µs "
            "| v2 fwd µs | v2 adj µs | padded fwd / adj µs | v1 targets | v2 targets |")
    lines = [head, "|" + " --- |" * 13]
    for r in rows:
        f1, a1, f2, a2 = (r[k] for k in ("v1_forward", "v1_adjoint", "v2_forward",
                                         "v2_adjoint"))
        lines.append(
            f"| {r['name']} | {r['bytes'] / 1e6:.1f} MB | {_us(r['floor_s'])} "
            f"| {f1['grid'][0] * f1['grid'][1]} / {f2['grid'][0] * f2['grid'][1]} "
            f"| {f1['blocks_per_sm']} / {f2['blocks_per_sm']} "
            f"| {f1['loads_per_output']:.1f} / {f2['loads_per_output']:.1f} "
            f"| {_us(f1['s'])} ({f1['bound']}) | {_us(a1['s'])} ({a1['bound']}) "
            f"| {_us(f2['s'])} ({f2['bound']}) | {_us(a2['s'])} ({a2['bound']}) "
            f"| {_us(r['padded']['forward_s'])} / {_us(r['padded']['adjoint_s'])} "
            f"| {_mark(r, 'v1')} | {_mark(r, 'v2')} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    ap.add_argument("--device", choices=sorted(DEVICES), default="h200")
    ap.add_argument("--quick", action="store_true", help="bench_gpu.py's quick layer set")
    args = ap.parse_args(argv)
    dev = DEVICES[args.device]
    rows = predict_all(dev, args.quick)
    if args.json:
        print(json.dumps({"device": dev.name, "v2_source": VERSIONS["v2"].provenance(),
                          "rows": rows}, indent=1, default=str))
        return 0
    print(f"cost model, {dev.name} ({dev.sms} SMs, {dev.clock_hz / 1e9:.2f} GHz, "
          f"{dev.hbm_Bps / 1e12:.2f} TB/s): predicted, nothing measured")
    print(f"v2: {VERSIONS['v2'].provenance()}")
    r0 = rows[0]
    print("registers per thread (forward / adjoint): " + "; ".join(
        f"{v} {r0[f'{v}_forward']['registers']} / {r0[f'{v}_adjoint']['registers']} "
        f"({r0[f'{v}_forward']['registers_from']})" for v in VERSIONS)
        + "".join(f"; {v} direct forward (irreps-only launches) "
                  f"{kernel_registers(w, 'direct')[0]}"
                  for v, w in VERSIONS.items() if "direct" in w.kernels))
    print(table(rows, dev))
    for kind in ("forward", "adjoint"):
        worse = [f"{r['name']} ({_us(r[f'v1_{kind}']['s'])} -> {_us(r[f'v2_{kind}']['s'])})"
                 for r in rows if r[f"v2_{kind}"]["s"] > r[f"v1_{kind}"]["s"]]
        print(f"v2 {kind} predicted slower than v1 on: {', '.join(worse) or 'no layer'}")
    print("bound: cp = critical paths on SMs × resident blocks, lsu = L1/shared wavefronts, "
          "issue = warp instructions, l2 / hbm = bandwidth; targets: padded/fused >= "
          f"{TARGETS['vs_padded']} (fwd and fwd+adj), fwd/floor <= {TARGETS['vs_floor']} "
          f"({', '.join(FLOOR_LAYERS)}), network/largest <= {TARGETS['network_vs_largest']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
