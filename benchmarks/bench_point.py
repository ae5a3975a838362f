"""Point convolution: cupysteer vs escnn 1.0.11 (R2PointConv / R3PointConv), CPU, same run.

    .venv/bin/python benchmarks/bench_point.py [--cases c8:100000,octa:100000]
        [--escnn-python PY | --no-escnn] [--modes fwd,fwdbwd]

``--cases`` lists CASE:EDGES (c8: C8 regular×8 → regular×8 on R²; octa: octahedral regular×2 →
regular×2 on R³). escnn needs ~120 KiB per edge for c8 (measured: 11.5 GiB at 100000 edges,
forward) and ~8.4 MiB per edge for octa (8.4 GiB at 1000 edges, so ~840 GiB at 100000), so
run escnn at 100000 edges for c8 only with ≥ 16 GiB free, octa at ~1000 edges, and cupysteer
alone at 100000 (``--no-escnn``); BENCHMARKS.md records which.

Every (implementation, case, mode) runs in its own process (benchmarks/_point_driver.py;
escnn in its own virtual environment, see benchmarks/escnn_env.sh plus torch-geometric 2.8.1):
seconds per call (best of 3, one thread) and the peak RSS increase of the first call. Prints
one row per measurement and the ratios escnn / cupysteer (time and memory). cupysteer's
memory is bounded by its edge chunk (16384 edges); escnn's grows linearly with the edges
(it samples the whole (E, C_out, C_in, basis) tensor per representation pair).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _run(python, impl, case, edges, mode):
    out = subprocess.run([python, str(HERE / "_point_driver.py"), impl, case, str(edges), mode],
                         capture_output=True, text=True, timeout=3600)
    if out.returncode:
        return dict(impl=impl, error=out.stderr.strip().splitlines()[-1:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default="c8:100000,octa:100000")
    p.add_argument("--escnn-python", default="/tmp/escnn-venv/bin/python")
    p.add_argument("--no-escnn", action="store_true", help="time cupysteer only")
    p.add_argument("--modes", default="fwd,fwdbwd")
    a = p.parse_args(argv)
    for spec in a.cases.split(","):
        case, edges = spec.split(":")
        for mode in a.modes.split(","):
            ours = _run(sys.executable, "cupysteer", case, edges, mode)
            print(json.dumps(ours), flush=True)
            if a.no_escnn:
                continue
            base = _run(a.escnn_python, "escnn", case, edges, mode)
            print(json.dumps(base), flush=True)
            if "error" in ours or "error" in base:
                continue
            print(f"{case} {mode} E={edges}: time escnn/cupysteer = "
                  f"{base['seconds'] / ours['seconds']:.1f}x, peak memory escnn/cupysteer = "
                  f"{base['peak_mib'] / max(ours['peak_mib'], 1):.1f}x  (cupysteer "
                  f"{ours['seconds']:.2f} s {ours['peak_mib']:.0f} MiB; escnn "
                  f"{base['seconds']:.2f} s {base['peak_mib']:.0f} MiB)", flush=True)


if __name__ == "__main__":
    main()
