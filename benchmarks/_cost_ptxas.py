"""Registers per thread of each kernel version, from the ptxas report (cost model).

``nvcc -cubin -arch=sm_90 -Xptxas -v`` on the source exactly as
:func:`cupysteer.backends.kernel_source.kernel_source` returns it (the generated FP_/BLK_
``#define`` lines included) with the float32 templates instantiated; where nvcc is absent or
the compile fails, the report recorded below (nvcc 13.0.88, sm_90, 2026-12-02) is parsed
instead, and a version with neither falls back to its walker's ``assumed_registers``.
"""
from __future__ import annotations

from _cost_hw import compile_report, ptxas_report, registers

from cupysteer.backends.kernel_source import kernel_dir, kernel_source

__all__ = ["RECORDED", "kernel_registers", "version_report"]

def _log(entries) -> str:
    """A ``-Xptxas -v`` log of (mangled name, registers) entries, as ptxas prints it."""
    out = []
    for name, regs in entries:
        out += [f"ptxas info    : Compiling entry function '{name}' for 'sm_90'",
                f"ptxas info    : Function properties for {name}",
                "    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads",
                f"ptxas info    : Used {regs} registers, used 1 barriers"]
    return "\n".join(out) + "\n"


_ARGS = "EvPKT_xS2_S2_PKxS4_S4_"
#: ptxas reports recorded with nvcc 13.0.88 for sm_90 (float32 instantiations), per version
RECORDED = {
    "v1": _log([(f"_Z14expand_adjointIff{_ARGS}PS0_xiiii", 48),
                (f"_Z14expand_forwardIfff{_ARGS}PT1_xiiii", 48)]),
    # kernels/expand_v2.cu as of 2026-12-02 10:52 UTC: __launch_bounds__(128, 6), the direct
    # forward (irreps-only launches) __launch_bounds__(128, 8) (the nvcc report of the
    # current file is preferred)
    "v2": _log([("_Z16expand_reduce_v2IfEvPKT_ixPS0_", 39),
                (f"_Z17expand_adjoint_v2Iff{_ARGS}PS0_xxiiiii", 80),
                (f"_Z17expand_forward_v2Ifff{_ARGS}S4_S4_PT1_xiiiiii", 80),
                (f"_Z24expand_forward_direct_v2Ifff{_ARGS}S4_S4_PT1_xiiiiii", 64)]),
}


def version_report(walker, use_nvcc: bool = True) -> tuple:
    """(parsed report, where from: 'nvcc' / 'recorded' / None) of a walker's kernel source."""
    if use_nvcc:
        try:
            src = kernel_source(walker.source)
        except (FileNotFoundError, OSError):
            src = None
        if src is not None:
            log = compile_report(src, list(walker.name_expressions), str(kernel_dir()))
            rep = ptxas_report(log) if log else {}
            if rep:
                return rep, "nvcc"
    if walker.name in RECORDED:
        return ptxas_report(RECORDED[walker.name]), "recorded"
    return {}, None


def kernel_registers(walker, kind: str, use_nvcc: bool = True) -> tuple:
    """(registers per thread of the float32 ``kind`` kernel, where from)."""
    rep, src = version_report(walker, use_nvcc)
    regs = registers(rep, walker.kernels[kind], "f") if rep else None
    if regs is None:
        return walker.assumed_registers, "assumed"
    return regs, src
