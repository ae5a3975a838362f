"""kernels/expand_v2.cu compiles for the GPU with no warning and within its resource budget,
without a GPU (the same checks as test_kernels_compile.py does for expand.cu):

* NVRTC (``cuda.bindings.nvrtc``) with CuPy RawModule's options and ptxas's report for
  sm_75, sm_80 and sm_90 (the half-output module, a superset of the instantiations; the
  plain module for sm_90), warnings and spills as errors;
* ptxas: no stack frame, no spills, no static shared memory, registers within
  ``__launch_bounds__(128, 6)`` (≤ 85: six CUDA blocks of 128 threads per SM);
* launch_config_v2 on the benchmark layers (planar and 3D) for each architecture's opt-in
  limit (sm_75 64 KiB, sm_80 163 KiB, sm_90 227 KiB): within it, and the forward's footprint
  walked from the kernel's shared layout within the launch's bytes;
* nvcc ``-cubin --Werror all-warnings`` (sm_80 and sm_90) when the CUDA toolkit is installed.

Compiles are cached on disk by content (source, options, name expressions, compiler version)
in the emulation toolchain's cache folder, so a rerun of an unchanged source costs nothing.
"""
from __future__ import annotations

import hashlib
import pickle
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from test_kernels_compile import (
    rawmodule_options,
    representative_3d_layers,
    representative_layers,
)

from _nvrtc import check as _check
from _nvrtc import compile_program, ptxas_report
from _nvrtc import nvrtc_module as _nvrtc
from cupysteer.backends.kernel_source import (
    COMPILE_OPTIONS,
    HALF_OPTIONS,
    all_name_expressions,
    entry_defines,
    kernel_dir,
    kernel_source,
    name_expression,
    table_defines,
)
from cupysteer.backends.launch_v2 import launch_config_v2
from cupysteer.backends.packing import BLK, FP, pack_plans

from cuda_emulation.harness import cache_dir

ARCHS = (75, 80, 90)
OPTIN = {75: 64 * 1024, 80: 163 * 1024, 90: 227 * 1024}
REGISTER_BUDGET = 85  # __launch_bounds__(128, 6): 65536 registers / (6 blocks × 128 threads)
COMPILES = [("half", 75), ("half", 80), ("half", 90), ("plain", 90)]
OPTION_SETS = {"plain": (COMPILE_OPTIONS, False), "half": (HALF_OPTIONS, True)}


def _cached(tag: str, parts: list, compute):
    key = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]
    path = cache_dir() / f"{tag}-{key}.pkl"
    if path.is_file():
        return pickle.loads(path.read_bytes())
    value = compute()
    tmp = path.with_suffix(f".{id(value)}.tmp")
    tmp.write_bytes(pickle.dumps(value))
    tmp.replace(path)
    return value


def nvrtc_compile(option_set: str, arch: int):
    """(log, {name expression: lowered name}, cubin) of one NVRTC compile of expand_v2.cu."""
    nvrtc = _nvrtc()
    options, half = OPTION_SETS[option_set]
    names = all_name_expressions(half, version=2)
    opts = rawmodule_options(options, arch)
    src = kernel_source("expand_v2.cu")

    def run():
        return compile_program(nvrtc, src, "expand_v2.cu", names, opts)

    version = ".".join(map(str, _check(nvrtc, nvrtc.nvrtcVersion())))
    log, lowered, cubin = _cached("nvrtc-v2", [src, *opts, *names, version], run)
    if lowered is None:
        pytest.fail(f"NVRTC failed for sm_{arch} ({option_set}):\n{log}")
    return log, lowered, cubin


@pytest.mark.parametrize("option_set,arch", COMPILES, ids=lambda v: str(v))
def test_nvrtc_compiles_without_warnings_or_spills(option_set, arch):
    log, lowered, cubin = nvrtc_compile(option_set, arch)
    warnings = [line for line in log.splitlines() if re.search("warning", line, re.I)]
    assert not warnings, "NVRTC warnings (treated as errors):\n" + "\n".join(warnings)
    half = OPTION_SETS[option_set][1]
    assert set(lowered) == set(all_name_expressions(half, version=2))
    assert cubin[:4] == b"\x7fELF"
    report = ptxas_report(log)
    rows = []
    for name, sym in lowered.items():
        assert sym.encode() in cubin, (name, sym)
        r = report[sym]
        rows.append(f"sm_{arch} {name}: {r}")
        assert r["stack"] == 0 and r["spill_stores"] == 0 and r["spill_loads"] == 0, (name, r)
        assert r["regs"] <= REGISTER_BUDGET, (name, r)
        if "_direct_" in name:  # __launch_bounds__(128, 8): eight CUDA blocks per SM
            assert r["regs"] <= 64, (name, r)
        assert r["smem"] == 0, (name, r)  # all shared memory is dynamic (launch_config_v2)
    print("\n" + "\n".join(rows), file=sys.stderr)


def test_launch_bounds_and_name_expressions():
    src = kernel_source("expand_v2.cu")
    bounds = {m[3]: (int(m[1]), int(m[2])) for m in re.finditer(
        r"__global__\s+void\s+__launch_bounds__\((\d+),\s*(\d+)\)\s*(\w+)\s*\(", src)}
    assert bounds == {**{k: (128, 6) for k in ("expand_forward_v2", "expand_adjoint_v2",
                                                "expand_reduce_v2")},
                      "expand_forward_direct_v2": (128, 8)}  # irreps-only: <= 64 registers
    assert entry_defines() in src and src.startswith(table_defines())
    assert name_expression("forward", np.float32, "__half", 2) == \
        "expand_forward_v2<float, float, __half>"
    assert name_expression("reduce", np.float64, version=2) == "expand_reduce_v2<double>"
    assert name_expression("direct", np.float32, "__half", 2) == \
        "expand_forward_direct_v2<float, float, __half>"
    with pytest.raises(ValueError, match="version"):
        name_expression("forward", np.float32, version=3)


# ---- shared memory per device --------------------------------------------------------------------

def forward_footprint(p, cfg, item: int) -> int:
    """Bytes the forward kernel's layout uses in its largest CUDA block (Ws, T, K̃ chunk);
    none for expand_forward_direct_v2 (weights read in place, K̃ written to the filter)."""
    if cfg.kernel == "direct":
        return 0
    worst = 0
    fp = p.fieldpairs
    for f in fp:
        P, so, si = int(f[FP.points]), int(f[FP.out_size]), int(f[FP.in_size])
        nx, nd = min(cfg.tile, P), min(cfg.cols, si)
        kc = min(cfg.rows, so) * si * nx if f[FP.in_cob] >= 0 else 0
        worst = max(worst, (cfg.max_weights + so * nd * nx + kc) * item)
    return worst


def adjoint_footprint(p, cfg, item: int) -> int:
    """Bytes of the adjoint's layout (X, Y on the chunk's rows, the owner table)."""
    worst = 0
    blk = p.blocks
    for f in p.fieldpairs:
        b0, b1, so, si = (int(v) for v in f[[FP.block_begin, FP.block_end, FP.out_size,
                                             FP.in_size]])
        if b0 == b1:
            continue
        for r0 in range(0, so, cfg.rows):
            sel = blk[b0:b1][(blk[b0:b1, BLK.row] >= r0) & (blk[b0:b1, BLK.row] < r0 + cfg.rows)]
            if not len(sel):
                continue
            nr = int((sel[:, BLK.row] + sel[:, BLK.d_out]).max() - sel[:, BLK.row].min()) \
                if cfg.rows < so else so
            worst = max(worst, 2 * nr * si * cfg.tile * item + cfg.max_weights * 4)
    return worst


def test_shared_memory_per_architecture():
    layers = {**representative_layers(), **representative_3d_layers()}
    rows = []
    for arch, limit in OPTIN.items():
        for name, L in layers.items():
            p = pack_plans([L.plan])
            for item in (4, 8):
                for kind, walk in (("forward", forward_footprint),
                                   ("adjoint", adjoint_footprint)):
                    try:
                        cfg = launch_config_v2(p, kind, 1, item, shared_limit=limit)
                    except ValueError as exc:  # only where even the smallest tiles do not fit
                        assert "shared memory" in str(exc) and arch == 75, (name, exc)
                        continue
                    assert cfg.shared_mem <= limit, (arch, name, kind, cfg)
                    assert walk(p, cfg, item) <= cfg.shared_mem, (arch, name, kind, cfg)
                    if item == 4 and arch == 90:
                        rows.append(f"sm_90 {name} {kind}: grid {cfg.grid} "
                                    f"{cfg.shared_mem} B tile {cfg.tile}")
    print("\n" + "\n".join(rows), file=sys.stderr)


# ---- nvcc ----------------------------------------------------------------------------------------

@pytest.mark.nvcc
@pytest.mark.parametrize("arch,half", [(80, False), (90, True)], ids=["sm_80", "sm_90-half"])
def test_nvcc_cubin_warnings_as_errors(arch, half, tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not found on PATH (CUDA toolkit not installed)")
    names = all_name_expressions(half, version=2)
    table = ",\n    ".join(f"(const void*)&{n}" for n in names)
    text = (f'{table_defines()}{entry_defines()}#include "expand_v2.cu"\n\n'
            f"const void* cupysteer_kernels_v2[] = {{\n    {table}\n}};\n")
    options = HALF_OPTIONS if half else COMPILE_OPTIONS
    src = tmp_path / "expand_v2_all.cu"
    src.write_text(text)
    cmd = [nvcc, "-cubin", f"-arch=sm_{arch}", "--Werror", "all-warnings", *options,
           f"-I{kernel_dir()}", "-Xptxas", "-v", "-o", str(src.with_suffix(".cubin")), str(src)]
    version = subprocess.run([nvcc, "--version"], capture_output=True, text=True).stdout

    def run():
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        return r.returncode, r.stdout + r.stderr

    code, out = _cached("nvcc-v2", [text, *cmd[:-3], (kernel_dir() / "expand_v2.cu").read_text(),
                                    (kernel_dir() / "common.cuh").read_text(), version], run)
    assert code == 0, f"{' '.join(cmd)}\n{out}"
    assert "warning" not in out.lower(), out
    report = ptxas_report(out)
    assert len(report) == len(names), report
    for sym, res in report.items():
        assert res["spill_stores"] == 0 and res["spill_loads"] == 0, (sym, res)
        assert res["regs"] <= REGISTER_BUDGET, (sym, res)
