"""Hardware side of the cost model (benchmarks/cost_model.py): devices, the ptxas report,
resident blocks per SM, and the kernel-time formula.

Kernel time of one launch (seconds)::

    t = max(t_cp, t_lsu, t_issue, t_l2, t_hbm) + t_launch
    t_cp    = makespan of the CUDA blocks' critical paths (cycles), dispatched in grid order onto
              SMs × resident-blocks slots (each block to the earliest free slot) / clock
    t_lsu   = (global + shared wavefronts) / (SMs × 1 wavefront per clock) / clock
              (Hopper's L1/shared data path moves one 128-byte wavefront per clock per SM)
    t_issue = warp instructions / (SMs × 4 schedulers × 1 per clock) / clock
    t_l2    = bytes streamed from L2 (distinct 32-byte sectors of streamed loads/stores) / L2 BW
    t_hbm   = bytes that must cross HBM (the plan, weights, filters, extra scratch) / HBM BW

Resident blocks per SM (sm_90) = min(2048 / threads, 32, 64K registers / (per-warp register
allocation, rounded to 256, × warps per block), 228 KB / (dynamic shared + 1 KB reserved)).
"""
from __future__ import annotations

import hashlib
import heapq
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Device", "DEVICES", "ptxas_report", "compile_report", "registers",
           "resident_blocks", "makespan", "kernel_time"]


@dataclass(frozen=True)
class Device:
    name: str
    sms: int
    clock_hz: float
    hbm_Bps: float  # measured device-to-device copy bandwidth (what bench_gpu.py's floor uses)
    l2_Bps: float
    launch_s: float  # launch floor of one kernel, back to back (CUDA events)
    smem_per_sm: int = 228 * 1024
    smem_per_block_optin: int = 227 * 1024
    regs_per_sm: int = 65536
    threads_per_sm: int = 2048
    blocks_per_sm: int = 32
    fp32_flops: float = 0.0  # non-tensor FP32 peak (padded GEMM estimate; TF32 off in CuPy)


DEVICES = {
    # H200: 132 SMs, ~4.3 TB/s measured copy bandwidth (gpu-review.md), 1.98 GHz boost
    "h200": Device("H200", 132, 1.98e9, 4.3e12, 5.5e12, 3e-6, fp32_flops=67e12),
    # H100 SXM: 132 SMs, 3.35 TB/s HBM3 (≈ 3.0 TB/s reached by copies; we use the spec)
    "h100": Device("H100 SXM", 132, 1.98e9, 3.35e12, 5.5e12, 3e-6, fp32_flops=67e12),
}

_ENTRY = re.compile(r"Compiling entry function '(\w+)' for 'sm_(\d+)'")
_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"Used (\d+) registers")
_SMEM = re.compile(r"(\d+) bytes smem")


def ptxas_report(log: str) -> dict:
    """{mangled name: dict(regs, stack, spill_stores, spill_loads, smem)} from a ``-Xptxas -v``
    log (the format of tests/backends/test_kernels_compile.py)."""
    out, cur = {}, None
    for line in log.splitlines():
        if m := _ENTRY.search(line):
            cur = out.setdefault(m[1], {"smem": 0})
        elif cur is not None and (m := _FRAME.search(line)):
            cur.update(stack=int(m[1]), spill_stores=int(m[2]), spill_loads=int(m[3]))
        elif cur is not None and (m := _USED.search(line)):
            cur["regs"] = int(m[1])
            if s := _SMEM.search(line):
                cur["smem"] = int(s[1])
    return out


_COMPILED: dict = {}


def compile_report(source: str, names: list, include_dir: str, arch: int = 90,
                   options=("-std=c++17",)) -> str | None:
    """The ptxas log of ``nvcc -cubin -arch=sm_<arch> -Xptxas -v`` on ``source`` (the text of
    kernel_source(), generated #defines included) with every template in ``names``
    instantiated; None when nvcc is absent or the compile fails (cached per source)."""
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        return None
    key = hashlib.sha256((source + repr(names) + repr(options)).encode()).hexdigest()
    if key in _COMPILED:
        return _COMPILED[key]
    table = ",\n    ".join(f"(const void*)&{n}" for n in names)
    text = f"{source}\nconst void* cupysteer_cost_model_kernels[] = {{\n    {table}\n}};\n"
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "k.cu"
        src.write_text(text)
        cmd = [nvcc, "-cubin", f"-arch=sm_{arch}", *options, f"-I{include_dir}", "-Xptxas",
               "-v", "-o", str(src.with_suffix(".cubin")), str(src)]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired):
            r = None
    log = None if r is None or r.returncode != 0 else r.stdout + r.stderr
    _COMPILED[key] = log
    return log


def registers(report: dict, kernel: str, dtype: str = "f") -> int | None:
    """Registers per thread of template ``kernel`` (e.g. 'expand_forward') instantiated for
    ``dtype`` ('f' float, 'd' double: the first template argument's mangled letter)."""
    pat = re.compile(rf"_Z\d+{re.escape(kernel)}I{dtype}")
    hits = [r["regs"] for name, r in report.items() if pat.match(name) and "regs" in r]
    return max(hits) if hits else None


def resident_blocks(dev: Device, threads: int, regs: int, smem: int) -> int:
    """CUDA blocks of ``threads`` threads, ``regs`` registers per thread and ``smem`` bytes of
    dynamic shared memory that one SM holds at once (0: the launch cannot run)."""
    if smem > dev.smem_per_block_optin:
        return 0
    warps = -(-threads // 32)
    per_warp = -(-max(regs, 1) * 32 // 256) * 256
    by_regs = dev.regs_per_sm // (per_warp * warps)
    by_smem = dev.smem_per_sm // (smem + 1024)
    return int(min(dev.threads_per_sm // threads, dev.blocks_per_sm, by_regs, by_smem))


def makespan(paths, slots: int) -> float:
    """Finish time of ``paths`` (critical path of every CUDA block, in dispatch order) when
    each starts on the earliest free one of ``slots`` (SMs × resident blocks)."""
    free = [0.0] * max(1, min(slots, len(paths) or 1))
    heapq.heapify(free)
    end = 0.0
    for p in paths:
        t = heapq.heappop(free) + p
        end = max(end, t)
        heapq.heappush(free, t)
    return end


def kernel_time(dev: Device, totals: dict, paths, resident: int) -> dict:
    """Seconds of one launch and its terms (see the module docstring); ``totals`` holds the
    summed gwave, swave, instr, l2_bytes and hbm_bytes of every CUDA block."""
    clk = dev.clock_hz
    terms = {
        "cp": makespan(paths, dev.sms * resident) / clk if resident else float("inf"),
        "lsu": (totals["gwave"] + totals["swave"]) / dev.sms / clk,
        "issue": totals["instr"] / (4 * dev.sms) / clk,
        "l2": totals["l2_bytes"] / dev.l2_Bps,
        "hbm": totals["hbm_bytes"] / dev.hbm_Bps,
    }
    bound = max(terms, key=terms.get)
    return {"s": terms[bound] + dev.launch_s, "bound": bound,
            **{f"{k}_s": v for k, v in terms.items()}}
