"""kernels/point_conv.cu compiles for the GPU with no warning and within its resource budget,
without a GPU.

* NVRTC (public ``cuda.bindings.nvrtc``): :func:`point_source` with ``POINT_OPTIONS`` and
  every name expression of :func:`point_name_expressions` (exactly what
  ``PointLaunch._module`` hands to ``cupy.RawModule``), plus the options RawModule adds
  (``-ftz=true``, ``--device-as-default-execution-space``, ``-arch=sm_XX``, the CUDA include
  folder), to cubin for sm_75, sm_80 and sm_90; ptxas warnings (spills) are errors.
* The ptxas report: no stack frame, no spills, at most 64 registers, no static shared memory,
  and the launch configurations' dynamic shared memory within 48 KiB.
* nvcc ``-cubin --Werror all-warnings`` for sm_75/80/90 on a file instantiating every name
  expression (skipped, with the reason, when nvcc is not installed).
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from functools import lru_cache

import numpy as np
import pytest

from _nvrtc import compile_program, nvrtc_module, ptxas_report
from cupysteer.backends.kernel_source import kernel_dir
from cupysteer.backends.point_cupy import (
    BLOCK_COLUMNS,
    POINT_OPTIONS,
    THREADS,
    _ctype,
    point_defines,
    point_name_expressions,
    point_source,
    segment_config,
)

from cuda_emulation.harness import cuda_include_dirs

ARCHS = (75, 80, 90)
REGISTER_BUDGET = 64
#: the *_2d kernels (basis evaluated in the kernel): __launch_bounds__(128, 4), and a stack
#: frame for the local array of sin / cos's slow argument reduction (no spills)
REGISTER_BUDGET_2D, STACK_BUDGET_2D = 128, 64


def budget(name: str) -> tuple[int, int]:
    """(registers, stack bytes) allowed to a kernel (name expression or mangled symbol)."""
    return (REGISTER_BUDGET_2D, STACK_BUDGET_2D) if "_2d" in name else (REGISTER_BUDGET, 0)


def _options(arch: int) -> list[str]:
    dirs = cuda_include_dirs()
    inc = [f"-I{dirs[0]}"] if dirs else []
    return [*POINT_OPTIONS, *inc, "-ftz=true", f"-arch=sm_{arch}",
            "--device-as-default-execution-space", "-Xptxas=-v", "-Xptxas=--warn-on-spills",
            "-Xptxas=--warning-as-error"]


@lru_cache(maxsize=None)
def nvrtc_compile(arch: int):
    """(log, {name expression: lowered name}, cubin) of one NVRTC compile."""
    log, lowered, cubin = compile_program(nvrtc_module(), point_source(), "point_conv.cu",
                                          point_name_expressions(), _options(arch))
    if lowered is None:
        pytest.fail(f"NVRTC failed for sm_{arch}:\n{log}")
    return log, lowered, cubin


def test_source_has_generated_column_defines():
    src = point_source()
    assert src.startswith(point_defines())
    for i, name in enumerate(BLOCK_COLUMNS):
        assert f"#define PB_{name.upper()} {i}\n" in src
    assert '#include "' not in src  # common.cuh inlined: NVRTC needs no include path
    assert len(point_name_expressions()) == 10


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: f"sm_{a}")
def test_nvrtc_compiles_every_instantiation(arch):
    log, lowered, cubin = nvrtc_compile(arch)
    warnings = [line for line in log.splitlines() if re.search("warning", line, re.I)]
    assert not warnings, "NVRTC warnings (treated as errors):\n" + "\n".join(warnings)
    assert set(lowered) == set(point_name_expressions())
    assert cubin[:4] == b"\x7fELF"
    for name, sym in lowered.items():
        assert sym.encode() in cubin, (name, sym)


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: f"sm_{a}")
def test_register_spill_and_shared_budget(arch):
    log, lowered, _ = nvrtc_compile(arch)
    report = ptxas_report(log)
    bounds = {m[2]: int(m[1]) for m in re.finditer(
        r"__global__\s+void\s+__launch_bounds__\((\d+)[^)]*\)\s*(\w+)\s*\(", point_source())}
    assert set(bounds) == {"point_segments", "point_weight_partials", "point_weight_reduce",
                           "point_segments_2d", "point_weight_partials_2d"}
    assert THREADS <= min(bounds.values())
    rows = []
    for name, sym in lowered.items():
        r = report[sym]
        rows.append(f"sm_{arch} {name}: {r}")
        regs, stack = budget(name)
        assert r["regs"] <= regs and r["regs"] * THREADS <= 65536, (name, r)
        assert r["regs"] <= 65536 // (THREADS * (8 if regs == 64 else 4)), (name, r)
        assert r["stack"] <= stack and r["spill_stores"] == 0 and r["spill_loads"] == 0, (name, r)
        assert r["smem"] == 0, (name, r)  # only the dynamic lane partials
    print("\n" + "\n".join(rows), file=sys.stderr)


@pytest.mark.parametrize("width", [1, 3, 7, 64, 127, 128, 129, 1000])
@pytest.mark.parametrize("degree", [0, 1, 9, 100, 10 ** 6])
def test_segment_config_fits_the_launch_limits(width, degree):
    for item in (4, 8):
        cfg = segment_config(1000, width, degree, item)
        assert cfg.block == (THREADS, 1, 1) and THREADS % cfg.split == 0
        assert cfg.split & (cfg.split - 1) == 0  # a power of two
        assert cfg.split == 1 or cfg.split * width <= THREADS
        assert cfg.split <= max(1, degree // 8)
        assert cfg.shared_mem == (THREADS * item if cfg.split > 1 else 0) <= 48 * 1024
        assert cfg.grid[0] * cfg.nodes_per_block >= 1000
        assert (cfg.grid[0] - 1) * cfg.nodes_per_block < 1000
    assert segment_config(0, 4, 0, 4).grid == (1, 1, 1)  # a launch with nothing to do
    with pytest.raises(ValueError, match="2\\^31"):
        segment_config(2 ** 40, 1, 1, 4)


def instantiation_file() -> str:
    table = ",\n    ".join(f"(const void*)&{n}" for n in point_name_expressions())
    return (f'{point_defines()}#include "point_conv.cu"\n\n'
            f"const void* cupysteer_point_kernels[] = {{\n    {table}\n}};\n")


@pytest.mark.nvcc
@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: f"sm_{a}")
def test_nvcc_cubin_warnings_as_errors(arch, tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not found on PATH (CUDA toolkit not installed); the NVRTC tests above "
                    "still compile every instantiation")
    src = tmp_path / "point_all.cu"
    src.write_text(instantiation_file())
    cmd = [nvcc, "-cubin", f"-arch=sm_{arch}", "--Werror", "all-warnings", *POINT_OPTIONS,
           f"-I{kernel_dir()}", "-Xptxas", "-v", "-o", str(src.with_suffix(".cubin")), str(src)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stdout}\n{r.stderr}"
    assert "warning" not in (r.stdout + r.stderr).lower(), r.stderr
    report = ptxas_report(r.stdout + r.stderr)
    assert len(report) == len(point_name_expressions()), report
    for sym, res in report.items():
        assert res["spill_stores"] == 0 and res["spill_loads"] == 0, (sym, res)
        assert res["regs"] <= budget(sym)[0] and res["stack"] <= budget(sym)[1], (sym, res)


def test_dtype_names():
    assert _ctype(np.float32) == "float" and _ctype(np.float64) == "double"
    with pytest.raises(ValueError, match="float32 or float64"):
        _ctype(np.float16)
