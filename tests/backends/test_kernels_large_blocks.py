"""kernels/expand.cu on 3D-sized plans, run on the CPU (g++ + the CUDA shim) against NumPy:
irreps blocks up to 13 × 13, fields up to 120 channels with a dense random orthogonal Q,
P up to 343, filter_shape (k, k, k), (k, k) or (P,), one plan or several packed together.

Plans come straight from the plan contract (tests/_plan_strategies.py), so these tests do not
depend on any 3D group code. Besides the automatic launch configuration, a lowered shared
memory limit forces the tiled layouts of launch_config: chunks of irreps rows (straddled by
blocks), several output-column tiles, and adjoint weight passes. Outputs are NaN-filled before
each launch and shared memory is refilled with NaN bytes before each CUDA block (harness), so
a missed element or a read before a write fails.

CUPYSTEER_SLOW=1 adds the full 120-channel × 343-point field pair (about a minute here).
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import cupysteer as cs
from _large_blocks import affordable, check, fitting_limit, reference
from cupysteer import r3
from cupysteer.backends.launch import MIN_TILE, SHARED_MEMORY_LIMIT, launch_config
from cupysteer.backends.packing import pack_plans

from _helpers import rel_err
from _plan_strategies import build_plan, dense_adjoint, dense_filter, plan_specs
from cuda_emulation import harness as H

pytestmark = pytest.mark.skipif(H.gxx() is None, reason="g++ not found: the CPU emulation of "
                                                        "the CUDA kernels needs a host C++20 "
                                                        "compiler")
HAVE_CUDA_HEADERS = bool(H.cuda_include_dirs())

PROP = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                  HealthCheck.filter_too_much,
                                                  HealthCheck.data_too_large])
LIMITS = [None, None, 12 * 1024, 6 * 1024]  # None: the default 48 KiB
@pytest.fixture(scope="module", autouse=True)
def emulated_modules():
    H.prebuild([(False, "env")] + ([(True, "env")] if HAVE_CUDA_HEADERS else []))


# ---- random plans ----------------------------------------------------------------------------

@settings(max_examples=40, **PROP)
@given(spec=plan_specs(max_dim=9, big_dims=(13,), max_field=60, max_channels=60,
                       max_points=343, max_count=5),
       dtype=st.sampled_from([np.float32, np.float64]), batch=st.integers(1, 2),
       limit=st.sampled_from(LIMITS))
def test_random_big_block_plans(spec, dtype, batch, limit):
    plan = build_plan(**spec)
    assume(plan.dim > 0 and affordable([plan], limit))
    check([plan], dtype, batch, spec["seed"] % 997, limit)


@settings(max_examples=10, **PROP)
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]),
       limit=st.sampled_from(LIMITS))
def test_random_packed_networks(data, dtype, limit):
    """2–3 random 3D-sized plans (different irreps, fields, filter shapes) in one launch."""
    n = data.draw(st.integers(2, 3), label="layers")
    plans = []
    for i in range(n):
        spec = data.draw(plan_specs(max_dim=9, big_dims=(13,), max_field=40, max_channels=40,
                                    max_points=125, max_count=4), label=f"plan{i}")
        plan = build_plan(**spec)
        if plan.dim:
            plans.append(plan)
    assume(plans and affordable(plans, limit))
    ex, _, _ = check(plans, dtype, data.draw(st.integers(1, 2), label="batch"),
                     data.draw(st.integers(0, 999), label="seed"), limit)
    assert ex.packed.filter_shapes == tuple((p.out_size, p.in_size) + p.filter_shape
                                            for p in plans)


# ---- every tiled layout, deliberately --------------------------------------------------------

def icosahedral_like(P_shape=(3, 3, 3), copies=2, extra=(), seed=5):
    """A field like the regular representation of I (irreps 1, 3, 3, 4, 5 with multiplicity
    = dimension: 60 channels) ``copies`` times, dense Q, to itself."""
    dims = [1, 3, 3, 4, 5, *extra]
    regular = [t for t, d in enumerate(dims[:5]) for _ in range(d)]
    counts = {(a, b): 1 + (a + b) % 3 for a in range(len(dims)) for b in range(len(dims))}
    return build_plan(dims, [regular * copies], [False], [0], [0], counts, P_shape, seed=seed)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_120_channel_field_pair(dtype):
    """120 × 120 channels with a dense Q on both sides: the whole field pair (115 KB of fp32
    per point) cannot sit in shared memory, so rows are chunked and columns tiled; 27 points
    here (the 343-point layout is checked below, and run with CUPYSTEER_SLOW=1)."""
    plan = icosahedral_like()
    assert plan.out_size == plan.in_size == 120
    _, f, a = check([plan], dtype, 1, 1)
    assert f.rows < 120 or f.col_tiles > 1
    assert a.rows < 120


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_120_channels_343_points_launch_config(dtype):
    """The layout of a 120-channel field pair with 343 points fits 48 KiB, forward and adjoint,
    and covers every point and column."""
    p = pack_plans([icosahedral_like((7, 7, 7))])
    item = np.dtype(dtype).itemsize
    f = launch_config(p, "forward", 4, item)
    a = launch_config(p, "adjoint", 4, item)
    for cfg in (f, a):
        assert cfg.shared_mem <= SHARED_MEMORY_LIMIT and cfg.rows >= MIN_TILE
    tiles = f.grid[1] // f.col_tiles
    assert tiles * f.tile >= 343 > (tiles - 1) * f.tile and f.col_tiles * f.cols >= 120
    assert a.grid[1] == -(-120 // a.rows) * a.passes and a.grid[2] == 4


@pytest.mark.skipif(os.environ.get("CUPYSTEER_SLOW") != "1", reason="set CUPYSTEER_SLOW=1")
def test_120_channels_343_points_run():
    check([icosahedral_like((7, 7, 7))], np.float32, 1, 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_13_dimensional_blocks_straddle_row_chunks(dtype):
    """13 × 13 (SO(3), l = 6) and 9 × 9 blocks whose rows cross the 8-row chunks, identity and
    dense Q, a (P,) point set; a tight limit forces several column tiles."""
    dims = [1, 13, 9, 5]
    reps = [[1, 0, 2], [3, 1, 3, 1], [2]]
    counts = {(a, b): 2 + (a * b) % 3 for a in range(4) for b in range(4)}
    plan = build_plan(dims, reps, [False, False, True], [0, 1, 2], [1, 0, 2], counts, (20,), 3)
    assert plan.pair_shape.max() == 13
    seen = []
    for limit in (None, 4 * 1024):
        _, f, a = check([plan], dtype, 2, 4, limit)
        seen.append((f.rows < plan.out_size, f.col_tiles > 1, a.rows < plan.out_size))
    assert np.array(seen).any(0).all(), seen  # each tiling happened


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adjoint_weight_passes(dtype):
    """Chunks whose weights exceed what is left of shared memory are split into passes (each
    recomputing G̃ for its own weights)."""
    dims = [1, 13, 3]
    counts = {(1, 0): 30, (1, 2): 7, (0, 0): 3, (2, 2): 4, (0, 2): 2, (2, 0): 1}
    plan = build_plan(dims, [[1, 1, 0, 2], [0, 0, 0]], [False, False], [0], [1], counts,
                      (2, 2, 2), seed=6)
    passes = []
    for limit in (None, 1024, 512):
        _, _, a = check([plan], dtype, 2, 5, limit)
        passes.append(a.passes)
    assert passes[0] == 1 and max(passes) > 1, passes


def test_adjoint_deterministic_with_chunks_and_passes():
    """Chunks and passes own disjoint weights: the adjoint is bit-identical across runs and
    batch positions (no atomics), for every layout."""
    plan = icosahedral_like((2, 2, 2), copies=1, extra=(13,))
    p = pack_plans([plan])
    rng = np.random.default_rng(7)
    G = rng.standard_normal((1, p.filter_size))
    for limit in (None, 6 * 1024, 3 * 1024):
        ex = H.CpuExpander(plan, np.float64, shared_limit=fitting_limit(p, 8, limit))
        a = ex.adjoint(G[0])
        np.testing.assert_array_equal(ex.adjoint(G[0]), a)
        b = ex.adjoint(np.concatenate([rng.standard_normal((1, p.filter_size)), G]))
        np.testing.assert_array_equal(b[1], a)


@pytest.mark.skipif(not HAVE_CUDA_HEADERS, reason="cuda_fp16.h/cuda_bf16.h not found")
def test_half_outputs_of_tiled_forward():
    """float16/bfloat16 filters of a row-chunked, column-tiled forward: the float32 result
    rounded once."""
    from test_kernels_emulated import bf16_round
    plan = icosahedral_like((2, 2, 2), copies=1, extra=(9,))
    p = pack_plans([plan])
    ex = H.CpuExpander(plan, np.float32, shared_limit=fitting_limit(p, 4, 4 * 1024))
    W = np.random.default_rng(8).standard_normal((2, p.dim)).astype(np.float32)
    f32 = ex.expand(W)
    assert ex.last_config.col_tiles > 1 or ex.last_config.rows < plan.out_size
    np.testing.assert_array_equal(ex.expand(W, out_dtype="float16"), f32.astype(np.float16))
    np.testing.assert_array_equal(ex.expand(W, out_dtype="bfloat16"), bf16_round(f32))


def real_3d_plans(near_limit=False):
    """Small real R³ layers (cupysteer.r3) whose launches exercise what the synthetic plans
    above do, on the plans the library actually builds: SO(3) irreps 0-2 (one tile per
    field pair, Q = I), the octahedral regular field (24 channels, dense Q; float64's adjoint
    in chunks of irreps rows) and I_h trivial → regular (a 120-channel output field, one
    input channel). With ``near_limit``, also SO(3) irreps 0-3, k = 5, whose float32 launches
    fill the 48 KiB to 152 B (forward) and 124 B (adjoint): the emulated shared memory is
    exactly the launch's bytes."""

    def layer(G, reps, k, reps_in=None):
        return cs.LayerBasis(cs.FieldType(G, reps_in or reps), cs.FieldType(G, reps), k).plan

    S, Oct, Ih = r3.SO3(2), r3.Octahedral(), r3.FullIcosahedral()
    return [layer(S, [S.irrep(j).representation for j in range(3)], 3),
            layer(Oct, [Oct.regular_representation], 3),
            layer(Ih, [Ih.regular_representation], 3, [Ih.trivial_representation])] + (
        [layer(r3.SO3(3), [r3.SO3(3).irrep(j).representation for j in range(4)], 5)]
        if near_limit else [])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_real_3d_plans(dtype):
    """Forward and adjoint of real 3D plans, each alone and all three in one packed launch,
    with the automatic launch configuration, against the NumPy backend."""
    plans = real_3d_plans(near_limit=True)
    configs = [check([p], dtype, 1, seed) for seed, p in enumerate(plans)]
    if np.dtype(dtype) == np.float64:  # the octahedral adjoint is chunked at the default limit
        assert configs[1][2].rows < plans[1].out_size
    else:  # SO(3) irreps 0-3, k = 5: one tile of all 125 points, within 48 KiB by < 200 B
        _, f, a = configs[3]
        assert f.tile == a.tile == 125
        assert 0 <= SHARED_MEMORY_LIMIT - max(f.shared_mem, a.shared_mem) < 200
    check(plans[:3], dtype, 2, 7)


# ---- launch_config ---------------------------------------------------------------------------

def test_planar_layers_keep_one_tile_per_field_pair():
    from test_kernels_compile import representative_layers
    for L in representative_layers().values():
        p = pack_plans([L.plan])
        for item in (4, 8):
            f = launch_config(p, "forward", 1, item)
            a = launch_config(p, "adjoint", 1, item)
            assert f.rows >= p.max_out_size and f.col_tiles == 1 and f.cols == p.max_in_size
            assert a.rows >= p.max_out_size and a.passes == 1
            assert a.max_weights == p.max_fieldpair_weights


def test_impossible_layout_is_refused_before_launch():
    """Fields so wide that even 8 rows × 8 columns of one point exceed the limit: a ValueError
    naming the sizes, the limit and the remedy (nothing is launched)."""
    p = pack_plans([icosahedral_like((2, 2, 2), copies=1)])
    wide = dataclasses.replace(p, max_out_size=4000, max_in_size=4000)
    for kind in ("forward", "adjoint"):
        with pytest.raises(ValueError, match=r"4000×4000.*bytes of shared memory per point"
                                             r".*SHARED_MEMORY_LIMIT.*use float32 or smaller"):
            launch_config(wide, kind, 1, 8)


def test_dense_reference_agrees_on_a_tiled_plan():
    """The kernels' reference (NumPy) is itself the dense einsum reference here."""
    plan = icosahedral_like((2, 2, 2), copies=1, extra=(13,))
    W = np.random.default_rng(9).standard_normal((1, plan.dim))
    G = np.random.default_rng(10).standard_normal((1, plan.out_size * plan.in_size * 8))
    ref, gref = reference([plan], W, G)
    assert rel_err(ref, dense_filter(plan, W).reshape(1, -1)) < 1e-12
    assert rel_err(gref, dense_adjoint(plan, G)) < 1e-12
