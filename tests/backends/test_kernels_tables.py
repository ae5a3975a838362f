"""The plan tables' column numbers have one definition: the column lists of
``cupysteer.backends.packing``. The kernels' ``FP_…`` / ``BLK_…`` constants are generated from
them (``kernel_source.table_defines``) and prepended to the source every consumer compiles;
``kernels/expand.cu`` itself must not define them, and every one it uses must be generated.
"""
from __future__ import annotations

import re
import subprocess

import pytest

import cupysteer as cs
from cupysteer.backends.kernel_source import kernel_dir, kernel_source, table_defines, table_macros
from cupysteer.backends.packing import (
    BLK,
    BLK_FIELDS,
    BLOCK_COLUMNS,
    FIELDPAIR_COLUMNS,
    FP,
    FP_FIELDS,
    pack_plans,
)

from cuda_emulation import harness as H

_DEFINE = re.compile(r"^#define\s+((?:FP|BLK)_\w+)\s+(\S+)\s*$", re.M)
_USE = re.compile(r"\b((?:FP|BLK)_[A-Z_]+)\b")


def expected() -> dict:
    macros = {f"FP_{c.upper()}": i for i, c in enumerate(FIELDPAIR_COLUMNS)}
    macros["FP_FIELDS"] = len(FIELDPAIR_COLUMNS)
    macros.update({f"BLK_{c.upper()}": i for i, c in enumerate(BLOCK_COLUMNS)})
    macros["BLK_FIELDS"] = len(BLOCK_COLUMNS)
    return macros


def test_generated_defines_parse_back_to_the_column_lists():
    src = kernel_source("expand.cu")
    assert src.startswith(table_defines())
    parsed = {k: int(v) for k, v in _DEFINE.findall(src)}
    assert parsed == table_macros() == expected()
    assert len(_DEFINE.findall(src)) == len(parsed), "a column macro is defined twice"
    # the named indices of the Python side agree
    assert (FP_FIELDS, BLK_FIELDS) == (len(FP), len(BLK)) == (12, 7)
    assert all(getattr(FP, c) == i for i, c in enumerate(FIELDPAIR_COLUMNS))
    assert all(getattr(BLK, c) == i for i, c in enumerate(BLOCK_COLUMNS))


def test_kernel_file_holds_no_column_numbers_and_uses_only_generated_ones():
    raw = (kernel_dir() / "expand.cu").read_text()
    assert not _DEFINE.findall(raw), "kernels/expand.cu defines FP_/BLK_ columns by hand"
    used = set(_USE.findall(re.sub(r"//[^\n]*", "", raw)))  # code, not comments
    assert used, "expand.cu reads no plan table column?"
    assert used <= set(table_macros()), used - set(table_macros())


@pytest.mark.skipif(H.gxx() is None, reason="g++ not found")
def test_preprocessor_sees_the_generated_values():
    """As the compiler sees them: the macros after preprocessing the whole source (g++ -dM) are
    the generated values; the .cu file alone stops at its #error."""
    cxx = H.gxx()
    r = subprocess.run([cxx, "-x", "c++", "-std=c++17", "-E", "-dM", "-"],
                       input=kernel_source("expand.cu"), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    seen = {m[1]: int(m[2]) for m in re.finditer(r"^#define ((?:FP|BLK)_\w+) (\d+)$",
                                                  r.stdout, re.M)}
    assert seen == expected()
    r = subprocess.run([cxx, "-x", "c++", "-std=c++17", "-E", f"-I{kernel_dir()}", "-"],
                       input=(kernel_dir() / "expand.cu").read_text(), capture_output=True,
                       text=True)
    assert r.returncode != 0 and "kernel_source" in r.stderr


def test_packed_columns_hold_what_their_names_say():
    G = cs.CyclicGroup(4)
    t_in = cs.FieldType(G, [G.regular_representation, G.irrep(1).representation])
    t_out = cs.FieldType(G, [G.irrep(1).representation, G.regular_representation])
    plan = cs.LayerBasis(t_in, t_out, 3).plan
    p = pack_plans([plan, plan])
    fp, blk = p.fieldpairs, p.blocks
    assert fp.shape[1] == FP_FIELDS and blk.shape[1] == BLK_FIELDS
    assert (fp[:, FP.points] == plan.num_points).all()
    assert (fp[:, FP.in_channels] == plan.in_size).all()
    assert set(fp[:, FP.filter_base]) == {0, plan.out_size * plan.in_size * plan.num_points}
    assert (fp[:, FP.out_offset] + fp[:, FP.out_size] <= plan.out_size).all()
    assert (fp[:, FP.in_offset] + fp[:, FP.in_size] <= plan.in_size).all()
    assert (fp[:, FP.block_begin] <= fp[:, FP.block_end]).all()
    assert p.max_out_size == fp[:, FP.out_size].max()
    assert (blk[:, BLK.d_out] >= 1).all() and (blk[:, BLK.count] >= 1).all()
    # a template's position slots are consecutive
    nxt = blk[:-1, BLK.weight_offset] + blk[:-1, BLK.count]
    starts = set(p.template_ptr[1:-1].tolist())
    assert all(nxt[i] == blk[i + 1, BLK.weight_offset] for i in range(len(blk) - 1)
               if i + 1 not in starts)
    # the second layer's weights follow the first's
    live = fp[:, FP.block_begin] < fp[:, FP.block_end]
    half = len(fp) // 2
    assert (fp[half:][live[half:], FP.weight_base] >= plan.dim).all()
    assert (fp[:half][live[:half], FP.weight_base] < plan.dim).all()
