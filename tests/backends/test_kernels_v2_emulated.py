"""kernels/expand_v2.cu (``method="fused"``) run on the CPU against the NumPy reference and
against expand.cu (``method="fused_v1"``): hypothesis plans 2D and 3D, float32/float64,
half outputs, batches, whole networks, tiled / chunked / multi-pass layouts, the adjoint's
second pass, per-device shared-memory limits, and run-to-run bit-identity.

Same harness as tests/backends/test_kernels_emulated.py: the real ``CupyExpander`` on a
stand-in ``cupy`` (source text, name expressions, launch configuration and argument lists
are the backend's), outputs NaN-poisoned before each launch, shared memory NaN-filled before
every block, warp shuffles emulated by a barrier per warp. ``sms`` (the emulated SM count) is
raised to make the cost model split the work as far as it can (more point tiles, passes and
column tiles: the paths a small plan would not take on 132 SMs).
"""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cupysteer as cs
from cupysteer import r3
from cupysteer.backends import launch_v2
from cupysteer.backends.launch_v2 import launch_config_v2
from cupysteer.backends.packing import ENT, pack_plans

from _helpers import (
    TOL,
    assert_bf16_close,
    assert_half_close,
    assert_split_views,
    ft,
    group,
    irrep,
    layers,
    network,
    reference_adjoint,
    reference_forward,
    rel_err,
)
from cuda_emulation import harness as H

# the emulated launches of many small CUDA blocks are slow on a loaded machine: a longer
# guard than the default 20 s per launch (a deadlock still fails, later)
os.environ.setdefault("CUPYSTEER_EMU_TIMEOUT", "120")

pytestmark = pytest.mark.skipif(H.gxx() is None, reason="g++ not found: the CPU emulation of "
                                                        "the CUDA kernels needs a host C++20 "
                                                        "compiler")
needs_half = pytest.mark.skipif(not H.cuda_include_dirs(), reason="cuda_fp16.h/cuda_bf16.h "
                                "not found (pip install nvidia-cuda-runtime nvidia-cuda-crt "
                                "nvidia-cuda-cccl)")


@pytest.fixture(scope="module", autouse=True)
def emulated_modules():
    """Both v2 modules (plain and half), built in parallel once (cached across runs)."""
    H.prebuild([(False, "env", 2)] + ([(True, "env", 2)] if H.cuda_include_dirs() else []))


def v2(plans, dtype, **kw) -> H.CpuExpander:
    """The v2 launcher on the CPU; 64 threads (two warps) per CUDA block unless given: each
    emulated thread is an OS thread, and two warps already exercise warps striding over the
    weight slots (test_full_blocks runs the default 128)."""
    kw.setdefault("threads", 64)
    return H.CpuExpander(plans, dtype, method="fused", **kw)


def check(layers, dtype, batch, seed, *, flat=False, **kw):
    """Emulated v2 forward and adjoint of the packed ``layers`` against NumPy (and the exact
    transpose identity); returns (expander, forward config, adjoint config)."""
    dtype = np.dtype(dtype)
    tol = TOL[dtype]
    rng = np.random.default_rng(seed)
    ex = v2([L.plan for L in layers], dtype, **kw)
    p = ex.packed
    W = rng.standard_normal((batch, p.dim)).astype(dtype)
    out = ex.expand(W[0] if flat else W)
    fcfg = ex.last_config
    assert out.shape == ((p.filter_size,) if flat else (batch, p.filter_size))
    ref = reference_forward(layers, W[:1] if flat else W)
    assert not np.isnan(out).any(), "the v2 forward left filter entries unwritten"
    assert rel_err(out.reshape(ref.shape), ref) < tol
    G = rng.standard_normal((batch, p.filter_size)).astype(dtype)
    gw = ex.adjoint(G[0] if flat else G)
    gref = reference_adjoint(layers, G[:1] if flat else G)
    assert not np.isnan(gw).any(), "the v2 adjoint left weight-gradient entries unwritten"
    assert rel_err(gw.reshape(gref.shape), gref) < tol
    G64 = G[:len(ref)].astype(np.float64)
    lhs = float(np.vdot(ref, G64))
    rhs = float(np.vdot(W[:len(ref)].astype(np.float64), gw.reshape(gref.shape)))
    assert math.isclose(lhs, rhs, rel_tol=0, abs_tol=100 * tol * np.abs(ref * G64).sum())
    return ex, fcfg, ex.last_config


# ---- random plans (hypothesis) ------------------------------------------------------------------

@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.filter_too_much,
                                                                  HealthCheck.too_slow])
@given(L=layers(max_size=12), dtype=st.sampled_from([np.float32, np.float64]),
       batch=st.integers(1, 3), seed=st.integers(0, 2 ** 32 - 1),
       sms=st.sampled_from([132, 100_000]), flat=st.booleans())
def test_random_layers(L, dtype, batch, seed, sms, flat):
    check([L], dtype, 1 if flat else batch, seed, sms=sms, flat=flat)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.filter_too_much,
                                                                 HealthCheck.too_slow])
@given(name=st.sampled_from(["C4", "D2", "SO2", "C3"]), data=st.data(),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2 ** 32 - 1))
def test_random_networks(name, data, dtype, seed):
    """2–3 layers of one group packed into one launch (expand_many's path)."""
    n = data.draw(st.integers(2, 3), label="layers")
    Ls = [data.draw(layers(names=[name], kernel_sizes=(1, 3, 4, 5), max_size=10),
                    label=f"layer{i}") for i in range(n)]
    sms = data.draw(st.sampled_from([132, 100_000]), label="sms")
    check(Ls, dtype, data.draw(st.integers(1, 2), label="batch"), seed, sms=sms)


# ---- layouts the cost model picks for larger plans, forced on small ones -----------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adjoint_point_tiles_and_second_pass(dtype):
    """Many SMs: the adjoint splits the points into tiles (partial sums + the fixed-order
    second pass) and the forward into point tiles."""
    G = group("C8")
    R = G.regular_representation
    L = cs.LayerBasis(ft(G, R, irrep(G, 1)), ft(G, R), 7)
    ex, f, a = check([L], dtype, 2, 7, sms=100_000)
    assert a.tiles > 1 and a.reduce_grid, a
    assert f.grid[1] > 1, f
    names = ex.cupy.launches
    assert names[-2].startswith("expand_adjoint_v2") and names[-1].startswith("expand_reduce_v2")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chunks_passes_and_column_tiles(dtype):
    """A small shared-memory limit: row chunks, weight passes and column tiles (the layouts
    of wide 3D fields), on a 24-channel regular octahedral field."""
    O = r3.Octahedral()
    L = cs.LayerBasis(cs.FieldType(O, [O.regular_representation]),
                      cs.FieldType(O, [O.regular_representation]), 3)
    p = pack_plans([L.plan])
    item = np.dtype(dtype).itemsize
    # not one point of K̃'s 24 rows beside an 8-column T, nor of the whole G̃, fits
    limit = (p.max_fieldpair_weights + 24 * 8 + 24 * 24) * item - 64
    ex, f, a = check([L], dtype, 1, 3, shared_limit=limit, threads=32)
    assert a.rows < p.max_out_size, a
    assert f.rows < p.max_out_size, f


def test_vector_loads_where_alignment_is_proven():
    """Even P (k = 4): every pair the fill reads is provably aligned, so vec = 2 (checked by
    UBSan's alignment check in the sanitizer suite); odd P keeps vec = 1."""
    G = group("C4")
    R = G.regular_representation
    even = cs.LayerBasis(ft(G, R, irrep(G, 1)), ft(G, R), 4)
    for dtype in (np.float32, np.float64):
        _, f, _ = check([even], dtype, 2, 11)
        assert f.vec == 2 and f.tile % 2 == 0, f
        _, f, _ = check([even], dtype, 1, 12, sms=100_000)  # odd-sized last tiles too
    odd = cs.LayerBasis(ft(G, R), ft(G, R), 3)
    assert launch_config_v2(pack_plans([odd.plan]), "forward", 1, 4).vec == 1


# ---- 3D (cupysteer.r3) ---------------------------------------------------------------------------

def real_3d_layers():
    S, Oct = r3.SO3(2), r3.Octahedral()
    so3 = [S.irrep(j).representation for j in range(3)]
    return [cs.LayerBasis(cs.FieldType(S, so3), cs.FieldType(S, so3), 3),
            cs.LayerBasis(cs.FieldType(Oct, [Oct.trivial_representation]),
                          cs.FieldType(Oct, [Oct.regular_representation]), 3),
            cs.LayerBasis(cs.FieldType(Oct, [Oct.regular_representation]),
                          cs.FieldType(Oct, [Oct.regular_representation]), 3)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_real_3d_layers(dtype):
    Ls = real_3d_layers()
    for seed, L in enumerate(Ls):
        check([L], dtype, 1, seed)
    check(Ls[:2], dtype, 2, 5, sms=100_000)


# ---- the whole network, half outputs -------------------------------------------------------------

@pytest.mark.parametrize("dtype,sms", [(np.float32, 132), (np.float64, 100_000)])
def test_whole_network(dtype, sms):
    """Three layers (P = 49, 9, 1) in one launch; with many SMs, point tiles past a small
    layer's last point: the forward skips them, the adjoint writes zero partials."""
    Ls = network()
    ex, f, a = check(Ls, dtype, 2, 9, sms=sms)
    p = ex.packed
    W = np.random.default_rng(10).standard_normal((2, p.dim)).astype(dtype)
    assert_split_views(Ls, ex.split(ex.expand(W)), W, p.weight_offsets, dtype)


@needs_half
def test_half_outputs():
    """float16 / bfloat16 filters: the float32 kernel's output rounded once."""
    Ls = network()
    ex = v2([L.plan for L in Ls], np.float32)
    W = np.random.default_rng(11).standard_normal((2, ex.packed.dim)).astype(np.float32)
    f32 = ex.expand(W)
    ref = reference_forward(Ls, W)
    h = ex.expand(W, out_dtype="float16")
    np.testing.assert_array_equal(h, f32.astype(np.float16))
    assert_half_close(h, ref)
    b = ex.expand(W, out_dtype="bfloat16")
    bits = np.ascontiguousarray(f32).view(np.uint32).astype(np.uint64)
    np.testing.assert_array_equal(b, ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16)
                                  .astype(np.uint16))
    assert_bf16_close(b, ref)


# ---- determinism, and v1 = v2 ----------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_two_runs_bit_identical(dtype):
    """No float atomics: forward and adjoint (with several point tiles and passes) are
    bit-identical run to run, also from a fresh expander."""
    Ls = network()
    rng = np.random.default_rng(3)
    outs = []
    for _ in range(2):
        ex = v2([L.plan for L in Ls], dtype, sms=100_000, threads=32)
        W = rng.standard_normal((2, ex.packed.dim)).astype(dtype) if not outs else outs[0][2]
        G = rng.standard_normal((2, ex.packed.filter_size)).astype(dtype) if not outs \
            else outs[0][3]
        outs.append((ex.expand(W), ex.adjoint(G), W, G, ex.last_config))
    assert outs[0][4].tiles > 1
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_v1_and_v2_agree(dtype):
    Ls = network()[1:] + [real_3d_layers()[1]]
    plans = [L.plan for L in Ls]
    one, two = H.CpuExpander(plans, dtype, method="fused_v1"), v2(plans, dtype)
    rng = np.random.default_rng(4)
    W = rng.standard_normal((2, one.packed.dim)).astype(dtype)
    G = rng.standard_normal((2, one.packed.filter_size)).astype(dtype)
    tol = TOL[np.dtype(dtype)]
    assert rel_err(two.expand(W), one.expand(W)) < tol
    assert rel_err(two.adjoint(G), one.adjoint(G)) < tol


# ---- per-device shared memory ------------------------------------------------------------------

OPTIN = {75: 64 * 1024, 80: 163 * 1024, 90: 227 * 1024}


@pytest.mark.parametrize("arch", sorted(OPTIN))
def test_per_device_shared_memory(arch):
    """The launch configuration stays within the device's opt-in limit (sm_75 64 KiB, sm_80
    163 KiB, sm_90 227 KiB; the benchmark's I regular forward and O regular adjoint choose
    more than 48 KiB on sm_90) and the backend opts the kernel in above 48 KiB; the emulation
    enforces the same limits: a kernel cannot opt in above its device, nor launch above its
    opt-in value."""
    Oct = r3.Octahedral()
    L = cs.LayerBasis(cs.FieldType(Oct, [Oct.regular_representation] * 2),
                      cs.FieldType(Oct, [Oct.regular_representation]), 3)
    ex, f, a = check([L], np.float64, 1, 1, arch=arch, threads=32)
    assert max(f.shared_mem, a.shared_mem) <= OPTIN[arch]
    # the backend opts a kernel in above 48 KiB, and only as far as the device allows
    assert ex._kernel_v2("forward", None, 60 * 1024).max_dynamic_shared_size_bytes == 60 * 1024
    if arch == 75:
        with pytest.raises(H.LaunchError, match="refused"):
            ex._kernel_v2("forward", None, 100 * 1024)
    else:  # the opt-in belongs to the module's kernel: a smaller later launch never lowers it
        ex._kernel_v2("forward", None, 100 * 1024)
        later = ex._kernel_v2("forward", None, 56 * 1024)
        assert later.max_dynamic_shared_size_bytes == 100 * 1024
        assert ex._kernel_v2("forward", None, 0).max_dynamic_shared_size_bytes == 100 * 1024
    mod = ex._module(False, 2)
    kern = mod.get_function("expand_reduce_v2<double>")
    with pytest.raises(H.LaunchError, match="refused"):
        kern.max_dynamic_shared_size_bytes = OPTIN[arch] + 1
    part = np.zeros((1, 1, 4)).view(H.HostArray)
    grad = np.zeros((1, 4)).view(H.HostArray)
    args = (part, np.int32(1), np.int64(4), grad)
    with pytest.raises(H.LaunchError, match="shared memory"):
        kern((1, 1, 1), (32, 1, 1), args, shared_mem=48 * 1024 + 8)  # no opt-in
    kern.max_dynamic_shared_size_bytes = OPTIN[arch]
    kern((1, 1, 1), (32, 1, 1), args, shared_mem=OPTIN[arch])
    with pytest.raises(H.LaunchError, match="shared memory"):
        kern((1, 1, 1), (32, 1, 1), args, shared_mem=OPTIN[arch] + 8)


def test_entries_table():
    """The fill's flat table: per template every (row, col) of every block once, sorted by
    (row, col), pointing at the block's basis and weight slots."""
    G = group("D4")
    L = cs.LayerBasis(ft(G, G.regular_representation, irrep(G, 1)),
                      ft(G, irrep(G, 2), G.regular_representation), 5)
    p = pack_plans([L.plan])
    blk, e, ptr = p.blocks, p.entries, p.entry_ptr
    for t0, t1 in zip(p.template_ptr[:-1], p.template_ptr[1:]):
        rows = e[ptr[t0]:ptr[t1]]
        keys = rows[:, ENT.row] * 10_000 + rows[:, ENT.col]
        assert (np.diff(keys) > 0).all()
        want = {(int(b[0]) + a, int(b[1]) + c) for b in blk[t0:t1]
                for a in range(int(b[2])) for c in range(int(b[3]))}
        assert {(int(r[0]), int(r[1])) for r in rows} == want


def test_full_blocks():
    """The default 128 threads (four warps) per CUDA block, a layer with point tiles."""
    G = group("D2")
    L = cs.LayerBasis(ft(G, G.regular_representation, irrep(G, 1)),
                      ft(G, G.regular_representation), 5)
    _, f, a = check([L], np.float32, 2, 13, threads=None, sms=100_000)
    assert f.block == a.block == (128, 1, 1)


# ---- the direct forward (irreps-only launches) ---------------------------------------------

def irreps_layer(name: str, n: int, size: int) -> cs.LayerBasis:
    G = group(name)
    t = ft(G, *[irrep(G, i) for i in range(n)])
    return cs.LayerBasis(t, t, size)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_direct_forward_on_irreps_layers(dtype, monkeypatch):
    """Q_in = Q_out = I everywhere with identity weight positions: expand_forward_direct_v2
    (no shared memory, weights read in place) matches NumPy, also with several point tiles,
    and equals the general forward bit for bit (same products, same order); a launch with
    a regular layer keeps the general forward."""
    Ls = [irreps_layer("SO2", 3, 5), irreps_layer("C4", 3, 3)]
    ex, f, _ = check(Ls, dtype, 2, 12)
    assert (f.kernel, f.shared_mem) == ("direct", 0)
    big = [irreps_layer("SO2", 2, 15)]  # P = 225 points, few field pairs: split into tiles
    ex_big, fb, _ = check(big, dtype, 1, 13, flat=True, threads=32)
    assert fb.kernel == "direct" and fb.grid[1] > 1, fb
    W = np.random.default_rng(14).standard_normal((2, ex.packed.dim)).astype(dtype)
    direct = ex.expand(W)
    monkeypatch.setattr(launch_v2, "is_direct", lambda packed: False)
    general = v2([L.plan for L in Ls], dtype)
    np.testing.assert_array_equal(general.expand(W), direct)
    assert general.last_config.kernel == "forward"
    monkeypatch.undo()
    _, fm, _ = check([Ls[0], network()[1]], dtype, 1, 15)
    assert fm.kernel == "forward"


@needs_half
def test_direct_forward_half_outputs():
    Ls = [irreps_layer("SO2", 3, 5)]
    ex = v2([L.plan for L in Ls], np.float32)
    W = np.random.default_rng(16).standard_normal((2, ex.packed.dim)).astype(np.float32)
    f32 = ex.expand(W)
    assert ex.last_config.kernel == "direct"
    h = ex.expand(W, out_dtype="float16")
    np.testing.assert_array_equal(h, f32.astype(np.float16))
    assert_half_close(h, reference_forward(Ls, W))
