"""The CUDA sources shipped as package data, and how every backend compiles and calls them.

One definition of the source text, the compile options, the template instantiations
(``name_expressions``) and the argument lists, used by the CuPy backend, the NVRTC compile
tests and the CPU emulation harness alike — so all three build and launch the same thing.
"""
from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from ..packed import LaunchConfig, PackedPlan

__all__ = ["kernel_source", "kernel_dir", "COMPILE_OPTIONS", "HALF_OPTIONS", "name_expression",
           "forward_args", "adjoint_args", "ACCUMULATOR", "OUTPUT_TYPES"]

COMPILE_OPTIONS = ("-std=c++17",)
HALF_OPTIONS = ("-std=c++17", "-DCUPYSTEER_HALF")

_CTYPE = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
# accumulation type per weight dtype, and the output types each weight dtype may produce
ACCUMULATOR = {"float": "float", "double": "double"}
OUTPUT_TYPES = {"float": ("float", "__half", "__nv_bfloat16"), "double": ("double",)}


def kernel_dir() -> Path:
    """Directory of the .cu sources: the installed ``cupysteer.kernels`` package, or the
    repository's top-level ``kernels/`` when running from a source tree."""
    try:
        d = Path(str(resources.files("cupysteer.kernels")))
        if (d / "expand.cu").is_file():
            return d
    except ModuleNotFoundError:
        pass
    d = Path(__file__).resolve().parents[2] / "kernels"
    if not (d / "expand.cu").is_file():
        raise FileNotFoundError("cupysteer's CUDA sources (kernels/expand.cu) are missing; "
                                "reinstall cupysteer")
    return d


@lru_cache(maxsize=None)
def kernel_source(name: str = "expand.cu") -> str:
    """The source of ``name`` with local ``#include "…"`` files inlined (NVRTC then needs
    no include path for them)."""
    root = kernel_dir()

    def inline(fname, seen):
        if fname in seen:
            return ""
        seen.add(fname)
        text = (root / fname).read_text()
        return re.sub(r'^#include "([^"]+)"\s*$',
                      lambda m: inline(m.group(1), seen), text, flags=re.M)

    return inline(name, set())


def _ctype(dtype) -> str:
    dtype = np.dtype(dtype)
    if dtype not in _CTYPE:
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    return _CTYPE[dtype]


def name_expression(kind: str, dtype, out: str | None = None) -> str:
    """The template instantiation for ``kind`` ('forward' or 'adjoint') and weight dtype."""
    t = _ctype(dtype)
    acc = ACCUMULATOR[t]
    if kind == "forward":
        out = t if out is None else out
        if out not in OUTPUT_TYPES[t]:
            raise ValueError(f"output type {out!r} is not available for {t} weights; "
                             f"choose one of {OUTPUT_TYPES[t]}")
        return f"expand_forward<{t}, {acc}, {out}>"
    if kind == "adjoint":
        return f"expand_adjoint<{t}, {acc}>"
    raise ValueError(f"kind must be 'forward' or 'adjoint', got {kind!r}")


def all_name_expressions(half: bool = False) -> list[str]:
    names = [name_expression(k, d) for d in (np.float32, np.float64)
             for k in ("forward", "adjoint")]
    if half:
        names += [name_expression("forward", np.float32, o) for o in ("__half", "__nv_bfloat16")]
    return names


def forward_args(weights, batch_stride: int, basis, cob, fieldpairs, blocks, positions, out,
                 out_stride: int, cfg: LaunchConfig) -> tuple:
    """Arguments of ``expand_forward`` in order, scalars with explicit NumPy types."""
    return (weights, np.int64(batch_stride), basis, cob, fieldpairs, blocks, positions, out,
            np.int64(out_stride), np.int32(cfg.tile), np.int32(cfg.rows), np.int32(cfg.cols),
            np.int32(cfg.col_tiles))


def adjoint_args(grad_filter, filter_stride: int, basis, cob, fieldpairs, blocks, positions,
                 grad_weights, weight_stride: int, cfg: LaunchConfig,
                 packed: PackedPlan | None = None) -> tuple:
    """Arguments of ``expand_adjoint`` in order, scalars with explicit NumPy types
    (``packed`` is not needed any more: the weights per CUDA block come with ``cfg``)."""
    return (grad_filter, np.int64(filter_stride), basis, cob, fieldpairs, blocks, positions,
            grad_weights, np.int64(weight_stride), np.int32(cfg.tile), np.int32(cfg.rows),
            np.int32(cfg.max_weights), np.int32(cfg.passes))
