"""NVRTC for the compile tests of every kernel family (tests/backends/test_kernels_compile.py,
test_kernels_v2_compile.py, test_point_kernels_compile.py): the library (skipping with the
install line when it is missing), one program compiled with name expressions, and the ptxas
``-v`` report parsed per kernel."""
from __future__ import annotations

import re

import pytest


def nvrtc_module():
    """cuda.bindings' nvrtc, or a skip naming the test extra that brings it."""
    try:
        from cuda.bindings import nvrtc
        nvrtc.nvrtcVersion()
    except Exception as exc:  # ImportError, or libnvrtc not found
        pytest.skip(f"NVRTC unavailable ({type(exc).__name__}: {exc}); it comes with the test "
                    f"extra: pip install -e '.[test]' (cuda-bindings, nvidia-cuda-nvrtc==13.0.*)")
    return nvrtc


def check(nvrtc, result):
    """The value(s) of an NVRTC call's result tuple; a RuntimeError on an NVRTC error."""
    err, *rest = result
    if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        raise RuntimeError(f"NVRTC: {nvrtc.nvrtcGetErrorString(err)[1].decode()}")
    return rest[0] if len(rest) == 1 else rest


def compile_program(nvrtc, source: str, filename: str, names, options):
    """(log, {name expression: lowered name}, cubin bytes) of one NVRTC compile of ``source``;
    ``lowered`` and ``cubin`` are None when the compile fails (the log says why)."""
    prog = check(nvrtc, nvrtc.nvrtcCreateProgram(source.encode(), filename.encode(), 0, [], []))
    try:
        for n in names:
            check(nvrtc, nvrtc.nvrtcAddNameExpression(prog, n.encode()))
        opts = [o.encode() for o in options]
        (err,) = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
        buf = b" " * check(nvrtc, nvrtc.nvrtcGetProgramLogSize(prog))
        check(nvrtc, nvrtc.nvrtcGetProgramLog(prog, buf))
        log = buf.rstrip(b"\0 ").decode(errors="replace")
        if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            return log, None, None
        lowered = {n: check(nvrtc, nvrtc.nvrtcGetLoweredName(prog, n.encode())).decode()
                   for n in names}
        cubin = b" " * check(nvrtc, nvrtc.nvrtcGetCUBINSize(prog))
        check(nvrtc, nvrtc.nvrtcGetCUBIN(prog, cubin))
        return log, lowered, cubin
    finally:
        nvrtc.nvrtcDestroyProgram(prog)


_ENTRY = re.compile(r"Compiling entry function '(\w+)' for 'sm_(\d+)'")
_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"Used (\d+) registers")
_SMEM = re.compile(r"(\d+) bytes smem")


def ptxas_report(log: str) -> dict:
    """{mangled name: dict(regs, stack, spill_stores, spill_loads, smem)} from a -Xptxas=-v log
    (NVRTC's program log or nvcc's output)."""
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
