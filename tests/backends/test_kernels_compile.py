"""Every kernel and template instantiation of kernels/expand.cu compiles for the GPU, with no
warning, within its resource budget — without a GPU.

* NVRTC (pip wheel ``nvidia-cuda-nvrtc``, pinned to the 13.0 toolkit generation, through the
  public ``cuda.bindings.nvrtc`` API): the source text, options and name expressions of
  ``cupysteer.backends.kernel_source`` (exactly what the CuPy backend hands to
  ``cupy.RawModule``), plus the options RawModule adds itself (``-ftz=true``,
  ``--device-as-default-execution-space``, ``-arch=sm_XX``, the CUDA include folder), compiled
  to cubin for sm_75 (the oldest architecture NVRTC 13 supports), sm_80 and sm_90.
* The ptxas report (``-Xptxas=-v``) of those compiles: no stack frame, no spills, registers
  within what ``__launch_bounds__`` allows and within a budget of 64, no static shared memory,
  and the dynamic shared memory of launch_config within 48 KiB for representative planar and
  real R³ layers, each CUDA block's footprint (walked from the kernels' layout) within it.
* nvcc (when the CUDA toolkit is installed): ``-cubin --Werror all-warnings`` for sm_80 and
  sm_90 on a file that instantiates every name expression.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from functools import lru_cache

import numpy as np
import pytest

import cupysteer as cs
from _nvrtc import compile_program, ptxas_report
from _nvrtc import nvrtc_module as _nvrtc
from cupysteer import r3
from cupysteer.backends.kernel_source import (
    COMPILE_OPTIONS,
    HALF_OPTIONS,
    all_name_expressions,
    kernel_dir,
    kernel_source,
    name_expression,
    table_defines,
)
from cupysteer.backends.launch import SHARED_MEMORY_LIMIT, THREADS, launch_config
from cupysteer.backends.packing import BLK, FP, pack_plans

from cuda_emulation.harness import cuda_include_dirs

ARCHS = (75, 80, 90)  # 75: the oldest architecture NVRTC 13 accepts
REGISTER_BUDGET = 64
OPTION_SETS = {"plain": (COMPILE_OPTIONS, False), "half": (HALF_OPTIONS, True)}


def cuda_include() -> str:
    """The folder with cuda_fp16.h / cuda_bf16.h that RawModule would pass with -I (here: the
    nvidia-cuda-runtime wheel of the test extra, else a local toolkit)."""
    dirs = cuda_include_dirs()
    if not dirs:
        pytest.skip("cuda_fp16.h not found: pip install nvidia-cuda-runtime==13.0.* "
                    "nvidia-cuda-crt==13.0.* nvidia-cuda-cccl==13.0.* (the test extra)")
    return dirs[0]


def rawmodule_options(options, arch: int) -> list[str]:
    """The options ``cupy.RawModule(code, options=options)`` compiles with (CuPy 14: the user
    options, the CUDA include folder, -ftz=true, -arch=sm_XX,
    --device-as-default-execution-space), plus the ptxas report, spills as warnings and
    warnings as errors."""
    return [*options, f"-I{cuda_include()}", "-ftz=true", f"-arch=sm_{arch}",
            "--device-as-default-execution-space", "-Xptxas=-v", "-Xptxas=--warn-on-spills",
            "-Xptxas=--warning-as-error"]


@lru_cache(maxsize=None)
def nvrtc_compile(option_set: str, arch: int):
    """(log, {name expression: lowered name}, cubin bytes, seconds) of one NVRTC compile."""
    nvrtc = _nvrtc()
    options, half = OPTION_SETS[option_set]
    t0 = time.perf_counter()
    log, lowered, cubin = compile_program(nvrtc, kernel_source("expand.cu"), "expand.cu",
                                          all_name_expressions(half),
                                          rawmodule_options(options, arch))
    if lowered is None:
        pytest.fail(f"NVRTC failed for sm_{arch} ({option_set}):\n{log}")
    return log, lowered, cubin, time.perf_counter() - t0


@pytest.fixture(scope="module", autouse=True)
def compile_all():
    """The six compiles (two option sets × three architectures), timed once for the module."""
    _nvrtc()
    t0 = time.perf_counter()
    for s in OPTION_SETS:
        for a in ARCHS:
            nvrtc_compile(s, a)
    print(f"\n[nvrtc] 6 compiles in {time.perf_counter() - t0:.1f} s", file=sys.stderr)


_WARNING = re.compile(r"warning", re.I)


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: f"sm_{a}")
@pytest.mark.parametrize("option_set", list(OPTION_SETS))
def test_nvrtc_compiles_every_instantiation(option_set, arch):
    log, lowered, cubin, _ = nvrtc_compile(option_set, arch)
    warnings = [line for line in log.splitlines() if _WARNING.search(line)]
    assert not warnings, "NVRTC warnings (treated as errors):\n" + "\n".join(warnings)
    assert set(lowered) == set(all_name_expressions(OPTION_SETS[option_set][1]))
    for name, sym in lowered.items():
        assert sym.startswith("_Z") and sym.encode() in cubin, (name, sym)
    assert cubin[:4] == b"\x7fELF"
    # the module CupyExpander builds has every kernel it asks for
    for dt in (np.float32, np.float64):
        for kind in ("forward", "adjoint"):
            assert name_expression(kind, dt) in lowered
    if OPTION_SETS[option_set][1]:
        for out in ("__half", "__nv_bfloat16"):
            assert name_expression("forward", np.float32, out) in lowered


def test_name_expressions():
    assert all_name_expressions(False) == [
        "expand_forward<float, float, float>", "expand_adjoint<float, float>",
        "expand_forward<double, double, double>", "expand_adjoint<double, double>"]
    assert set(all_name_expressions(True)) - set(all_name_expressions(False)) == {
        "expand_forward<float, float, __half>", "expand_forward<float, float, __nv_bfloat16>"}
    with pytest.raises(ValueError, match="output type"):
        name_expression("forward", np.float64, "__half")
    with pytest.raises(ValueError, match="dtype"):
        name_expression("forward", np.float16)
    with pytest.raises(ValueError, match="kind"):
        name_expression("backward", np.float32)


# ---- resources -----------------------------------------------------------------------------------

def launch_bounds() -> dict:
    """{kernel template name: max threads per block} from the source's __launch_bounds__."""
    src = kernel_source("expand.cu")
    return {m[2]: int(m[1]) for m in re.finditer(
        r"__global__\s+void\s+__launch_bounds__\((\d+)[^)]*\)\s*(\w+)\s*\(", src)}


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: f"sm_{a}")
def test_register_and_spill_budget(arch):
    log, lowered, _, _ = nvrtc_compile("half", arch)
    report = ptxas_report(log)
    bounds = launch_bounds()
    assert set(bounds) == {"expand_forward", "expand_adjoint"}
    assert THREADS <= min(bounds.values()), "launch_config's block exceeds __launch_bounds__"
    rows = []
    for name, sym in lowered.items():
        r = report[sym]
        rows.append(f"sm_{arch} {name}: {r}")
        lb = bounds[name.split("<")[0]]
        allowed = min(255, 65536 // lb)  # 64K registers per SM shared by one block of lb threads
        assert r["regs"] <= allowed, (name, r, allowed)
        assert r["regs"] <= REGISTER_BUDGET, (name, r)
        assert r["regs"] * THREADS <= 65536
        assert r["stack"] == 0 and r["spill_stores"] == 0 and r["spill_loads"] == 0, (name, r)
        assert r["smem"] == 0, (name, r)  # all shared memory is dynamic (launch_config)
    print("\n" + "\n".join(rows), file=sys.stderr)


def representative_layers():
    """The issue's benchmark layers (C8 regular×64 7×7 the widest) plus a dense SO(2) one."""

    def layer(G, reps, k):
        ft = cs.FieldType(G, reps)
        return cs.LayerBasis(ft, ft, k)

    C8, C16, D4, SO2 = cs.CyclicGroup(8), cs.CyclicGroup(16), cs.DihedralGroup(4), cs.SO2(3)
    so2 = [psi.representation for psi in SO2.irreps()][:4]
    return {
        "C8 regular x16 5x5": layer(C8, [C8.regular_representation] * 16, 5),
        "C16 regular x8 7x7": layer(C16, [C16.regular_representation] * 8, 7),
        "D4 regular x24 5x5": layer(D4, [D4.regular_representation] * 24, 5),
        "SO2 irreps 0-3 x8 7x7": layer(SO2, so2 * 8, 7),
        "C8 regular x64 7x7": layer(C8, [C8.regular_representation] * 64, 7),
    }


def representative_3d_layers():
    """Real R³ layers (cupysteer.r3): the fields that need launch_config's tiled layouts (the
    octahedral / icosahedral regular fields, 24, 48 and 60 channels with a dense Q) and the
    dense SO(3) irreps layers whose one-tile-per-field-pair layout fills the 48 KiB to the
    last few hundred bytes (irreps 0-3, k = 5, float32: 49000 B forward, 49028 B adjoint)."""

    def layer(G, reps, k, reps_in=None):
        return cs.LayerBasis(cs.FieldType(G, reps_in or reps), cs.FieldType(G, reps), k)

    Oct, Ico, S, Oh, Ih = r3.Octahedral(), r3.Icosahedral(), r3.SO3(3), r3.FullOctahedral(), \
        r3.FullIcosahedral()
    so3 = [S.irrep(j).representation for j in range(4)]
    return {
        "O regular 5x5x5": layer(Oct, [Oct.regular_representation], 5),
        "I regular 5x5x5": layer(Ico, [Ico.regular_representation], 5),
        "SO3 irreps 0-3 x2 7x7x7": layer(S, so3 * 2, 7),
        "SO3 irreps 0-3 5x5x5": layer(S, so3, 5),
        "Oh regular 3x3x3": layer(Oh, [Oh.regular_representation], 3),
        "Ih regular 3x3x3": layer(Ih, [Ih.regular_representation], 3),
    }


def kernel_shared_bytes(p, kind: str, cfg, item: int) -> int:
    """The most dynamic shared memory any CUDA block of the launch addresses, walked block by
    block from the kernels' own layout in kernels/expand.cu (independent of launch_config's
    per-point accounting): forward, T (so × nd × nx) then, when Q_in ≠ I, one chunk of K̃
    (nr × si × nx) right after it; adjoint, max_weights accumulators, then K
    (nr × si × tile) and T (nr × si × nx), nr the rows of G̃ the block's chunk spans. All
    arrays are of the accumulation type, so there is no alignment padding between them."""
    fp, blk = p.fieldpairs, p.blocks
    peak = 0
    for f in fp:
        P, so, si = int(f[FP.points]), int(f[FP.out_size]), int(f[FP.in_size])
        b0, b1 = int(f[FP.block_begin]), int(f[FP.block_end])
        for y in range(cfg.grid[1]):
            if kind == "forward":
                x0, d0 = (y // cfg.col_tiles) * cfg.tile, (y % cfg.col_tiles) * cfg.cols
                if x0 >= P or d0 >= si:
                    continue
                nx, nd = min(cfg.tile, P - x0), min(cfg.cols, si - d0)
                cells = so * nd * nx
                if f[FP.in_cob] >= 0:  # Q_in ≠ I: the K̃ chunk after T
                    cells += max(min(cfg.rows, so - r0) for r0 in range(0, so, cfg.rows)) \
                        * si * nx
            else:
                if b0 == b1:
                    continue
                r0 = (y // cfg.passes) * cfg.rows
                if r0 >= so:
                    continue
                rows = blk[b0:b1, BLK.row]
                if cfg.rows >= so:
                    cb0, cb1 = b0, b1
                else:
                    cb0 = b0 + int(np.searchsorted(rows, r0, side="left"))
                    cb1 = b0 + int(np.searchsorted(rows, r0 + cfg.rows, side="left"))
                if cb0 == cb1:
                    continue
                ws = blk[cb0, BLK.weight_offset]
                we = blk[cb1 - 1, BLK.weight_offset] + blk[cb1 - 1, BLK.count]
                if ws + (y % cfg.passes) * cfg.max_weights >= we:
                    continue
                nr = so if cfg.rows >= so else int(
                    (blk[cb0:cb1, BLK.row] + blk[cb0:cb1, BLK.d_out]).max() - blk[cb0, BLK.row])
                nx = min(cfg.tile, P)
                cells = cfg.max_weights + nr * si * cfg.tile + nr * si * nx
            peak = max(peak, cells * item)
    return peak


def test_shared_memory_budget():
    """launch_config's dynamic shared memory plus the kernels' static shared memory stays
    within the 48 KiB a launch may use without opting in, for every kind, dtype and batch."""
    layers = representative_layers()
    static = max(r["smem"] for a in ARCHS for r in ptxas_report(nvrtc_compile("half", a)[0])
                 .values())
    packs = {name: pack_plans([L.plan]) for name, L in layers.items()}
    packs["all five (one launch)"] = pack_plans([L.plan for L in layers.values()])
    rows = []
    for name, p in packs.items():
        for dtype in (np.float32, np.float64):
            for kind in ("forward", "adjoint"):
                for batch in (1, 64):
                    cfg = launch_config(p, kind, batch, np.dtype(dtype).itemsize)
                    assert cfg.shared_mem + static <= SHARED_MEMORY_LIMIT == 48 * 1024
                    assert 1 <= cfg.tile <= p.max_points
                    assert cfg.block == (THREADS, 1, 1)
                    if kind == "forward":  # one CUDA block per tile; the adjoint loops
                        assert cfg.grid[1] * cfg.tile >= p.max_points
                        assert (cfg.grid[1] - 1) * cfg.tile < p.max_points
                    else:
                        assert cfg.grid[1] == 1
                    assert cfg.grid[2] == batch and cfg.grid[2] <= 65535
                    assert cfg.grid[1] <= 65535
                    assert kernel_shared_bytes(p, kind, cfg, np.dtype(dtype).itemsize) \
                        <= cfg.shared_mem
                    if batch == 1:
                        rows.append(f"{name} {np.dtype(dtype).name} {kind}: tile {cfg.tile}, "
                                    f"{cfg.shared_mem} B, grid {cfg.grid}")
    print("\n" + "\n".join(rows), file=sys.stderr)
    # a batch beyond CUDA's grid.z limit is refused before any launch
    p = packs["C8 regular x16 5x5"]
    assert launch_config(p, "forward", 65535, 4).grid[2] == 65535
    for kind in ("forward", "adjoint"):
        with pytest.raises(ValueError, match="65535"):
            launch_config(p, kind, 65536, 4)


def test_shared_memory_budget_3d_layers():
    """The same budget for real R³ layers, whose fields launch_config tiles (row chunks,
    column tiles, adjoint weight passes): every launch fits the 48 KiB (with the kernels'
    static shared memory), covers all points, rows and columns, and every CUDA block's
    shared-memory footprint (walked from the kernels' layout) fits the launch's
    shared_mem."""
    static = max(r["smem"] for a in ARCHS for r in ptxas_report(nvrtc_compile("half", a)[0])
                 .values())
    rows = []
    for name, L in representative_3d_layers().items():
        p = pack_plans([L.plan])
        for dtype in (np.float32, np.float64):
            item = np.dtype(dtype).itemsize
            for kind in ("forward", "adjoint"):
                for batch in (1, 64):
                    cfg = launch_config(p, kind, batch, item)
                    assert cfg.shared_mem + static <= SHARED_MEMORY_LIMIT == 48 * 1024, \
                        (name, kind, cfg)
                    assert 1 <= cfg.tile <= p.max_points
                    assert cfg.block == (THREADS, 1, 1)
                    assert cfg.grid[0] == p.num_fieldpairs
                    assert cfg.grid[2] == batch and 1 <= cfg.grid[1] <= 65535
                    assert 1 <= cfg.rows
                    if kind == "forward":  # tiles of points × tiles of output columns
                        assert 1 <= cfg.cols <= p.max_in_size
                        assert cfg.col_tiles * cfg.cols >= p.max_in_size
                        assert (cfg.col_tiles - 1) * cfg.cols < p.max_in_size
                        assert cfg.grid[1] % cfg.col_tiles == 0
                        tiles = cfg.grid[1] // cfg.col_tiles
                        assert tiles * cfg.tile >= p.max_points
                        assert (tiles - 1) * cfg.tile < p.max_points
                    else:  # chunks of rows × weight passes; the points loop in the block
                        chunks = -(-p.max_out_size // cfg.rows)
                        assert cfg.grid[1] == chunks * cfg.passes
                        assert 1 <= cfg.max_weights and cfg.passes >= 1
                    used = kernel_shared_bytes(p, kind, cfg, item)
                    assert 0 < used <= cfg.shared_mem, (name, kind, cfg, used)
                    if batch == 1:
                        rows.append(f"{name} {np.dtype(dtype).name} {kind}: tile {cfg.tile}, "
                                    f"rows {cfg.rows}, cols {cfg.cols}×{cfg.col_tiles}, "
                                    f"passes {cfg.passes}, {cfg.shared_mem} B "
                                    f"({SHARED_MEMORY_LIMIT - cfg.shared_mem} B spare, "
                                    f"kernel uses {used} B), grid {cfg.grid}")
    print("\n" + "\n".join(rows), file=sys.stderr)


# ---- nvcc ----------------------------------------------------------------------------------------

def instantiation_file(half: bool) -> str:
    """The generated column defines (``table_defines()``, what ``kernel_source`` prepends),
    ``#include "expand.cu"`` (compiled with -I the kernel folder) and a host table taking
    the address of every name expression, which makes nvcc emit each instantiation (the CuPy
    path does this through name_expressions)."""
    names = all_name_expressions(half)
    table = ",\n    ".join(f"(const void*)&{n}" for n in names)
    return (f'{table_defines()}#include "expand.cu"\n\n// instantiate every name expression\n'
            f"const void* cupysteer_kernels[] = {{\n    {table}\n}};\n")


@pytest.mark.nvcc
@pytest.mark.parametrize("arch", (80, 90), ids=lambda a: f"sm_{a}")
def test_nvcc_cubin_warnings_as_errors(arch, tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not found on PATH (CUDA toolkit not installed)")
    for half, options in ((True, HALF_OPTIONS), (False, COMPILE_OPTIONS)):
        src = tmp_path / f"expand_all_{'half' if half else 'plain'}.cu"
        src.write_text(instantiation_file(half))
        cmd = [nvcc, "-cubin", f"-arch=sm_{arch}", "--Werror", "all-warnings", *options,
               f"-I{kernel_dir()}", "-Xptxas", "-v", "-o", str(src.with_suffix(".cubin")),
               str(src)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stdout}\n{r.stderr}"
        assert "warning" not in (r.stdout + r.stderr).lower(), r.stderr
        report = ptxas_report(r.stdout + r.stderr)
        assert len(report) == len(all_name_expressions(half)), report
        for sym, res in report.items():
            assert res["spill_stores"] == 0 and res["spill_loads"] == 0, (sym, res)
            assert res["regs"] <= REGISTER_BUDGET, (sym, res)
