"""3D layer bases against escnn 1.0.11's fixtures, equivariance, steerability, determinism."""
from __future__ import annotations

import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

import _r3_fixtures as fx

ALL = fx.names()
EXACT = [n for n in ALL if fx.index()[n]["gspace"]["spec"][0] in ("so3", "o3")]


@pytest.fixture(scope="module")
def layers():
    return {n: fx.layer(n, cache=False) for n in ALL}


@pytest.mark.parametrize("name", ALL)
def test_dimensions_and_weight_slices(layers, name):
    c, basis = fx.index()[name], layers[name]
    assert basis.dim == c["n_params"]
    assert basis.shape == tuple(c["filter_shape"])
    got = [(i, o, lo, hi, d) for i, o, lo, hi, _, _, d in basis.weight_blocks]
    want = [(b["in_repr"], b["out_repr"], *b["weights_range"], b["dim"]) for b in c["blocks"]]
    assert got == want


@pytest.mark.parametrize("name", ALL)
def test_settings_resolved_like_escnn(layers, name):
    res, s = fx.index()[name]["resolved"], layers[name].settings
    assert list(s.rings) == res["rings"] and list(s.sigma) == res["sigma"]
    assert list(s.cutoff_per_ring) == res["frequency_cutoff_per_ring"]
    assert s.maximum_frequency == res["maximum_frequency"]
    np.testing.assert_array_equal(layers[name].points.T, fx.arrays(name)["grid"])


def _block_elements(basis, name, k):
    """Our elements of block k for its first (out field, in field) pair, on the fixture's
    channels: (d_k, n_out, n_in, S)."""
    blk, z = fx.index()[name]["blocks"][k], fx.arrays(name)
    lo = blk["weights_range"][0]
    E = fx.fixture_elements(name, k)
    oc = z[f"b{k}_out_channels"][:E.shape[1]]
    ic = z[f"b{k}_in_channels"][:E.shape[2]]
    D = basis.dense()
    D = D.reshape(D.shape[0], D.shape[1], D.shape[2], -1)
    return D[lo:lo + blk["dim"]][:, oc][:, :, ic], E


@pytest.mark.parametrize("name", EXACT)
def test_so3_o3_elements_equal_escnn(layers, name):
    """SO(3)/O(3): escnn's elements are analytic; ours equal them, order and signs included."""
    for k in range(len(fx.index()[name]["blocks"])):
        ours, theirs = _block_elements(layers[name], name, k)
        np.testing.assert_allclose(ours, theirs, atol=1e-10)


@pytest.mark.parametrize("name", EXACT)
def test_so3_o3_filter_equals_escnn(layers, name):
    z = fx.arrays(name)
    for dtype, tol in ((np.float64, 1e-6), (np.float32, 2e-6)):
        filt = layers[name].expand(z["weights"].astype(dtype))
        assert filt.dtype == dtype
        np.testing.assert_allclose(filt, z["filter"], atol=tol)


@pytest.mark.parametrize("name", ALL)
def test_block_spans_equal_escnn(layers, name):
    """Every group: the span of each block equals escnn's (element choice is not canonical
    for numerically decomposed subgroups), and so do the (degree, shell) counts."""
    z = fx.arrays(name)
    attrs = layers[name].element_attributes
    for k, blk in enumerate(fx.index()[name]["blocks"]):
        ours, theirs = _block_elements(layers[name], name, k)
        assert fx.block_span_error(ours, theirs) < 1e-9, (name, k)
        lo, d = blk["weights_range"][0], blk["dim"]
        got = Counter(zip(attrs["frequency"][lo:lo + d].tolist(),
                          attrs["radius"][lo:lo + d].tolist()))
        want = Counter(zip(z[f"b{k}_J"].tolist(), z[f"b{k}_radius"].tolist()))
        assert got == want


@pytest.mark.parametrize("name", ALL)
def test_he_std_and_bias_like_escnn(layers, name):
    z, basis = fx.arrays(name), layers[name]
    np.testing.assert_allclose(basis.he_std(), z["he_std"], rtol=1e-6)
    if "bias_expansion" in z:
        np.testing.assert_allclose(basis.bias_expansion(), z["bias_expansion"], atol=1e-6)
        np.testing.assert_allclose(basis.expand_bias(z["bias"].astype(np.float64)),
                                   z["expanded_bias"], atol=1e-6)
    else:
        assert basis.num_bias == 0


@pytest.mark.parametrize("name", ALL)
def test_exact_equivariance_on_grid_symmetries(layers, name):
    from cupysteer import equivariance_errors
    basis = layers[name]
    rng = np.random.default_rng(7)
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-5)):
        w = rng.standard_normal(basis.dim).astype(dtype)
        errors = equivariance_errors(basis, basis.expand(w))
        assert len(errors) >= 2  # the identity and at least one non-trivial symmetry
        assert max(errors.values()) < tol, errors


@pytest.mark.parametrize("name", EXACT + ["so2z_irreps_k5"])
def test_steerable_at_arbitrary_points(name):
    """K(g p) = ρ_out(g) K(p) ρ_in(g)ᵀ at random points for random elements (continuous
    groups: not only the grid symmetries)."""
    from cupysteer import LayerBasis
    tin, tout = fx.field_types(name)
    G = tin.group
    rng = np.random.default_rng(3)
    pts = rng.uniform(-2, 2, size=(40, 3))
    for g in G.sample(3, rng):
        a = LayerBasis(tin, tout, 5, points=pts, cache=False)
        b = LayerBasis(tin, tout, 5, points=pts @ np.asarray(g).T, cache=False)
        w = rng.standard_normal(a.dim)
        Ka, Kb = a.expand(w), b.expand(w)
        want = np.einsum("ab,bcp,dc->adp", tout.representation(g), Ka, tin.representation(g))
        # both bases are normalised on their own point sets, which are congruent: same norms
        np.testing.assert_allclose(Kb, want, atol=1e-10 * max(1.0, np.abs(Ka).max()))


def test_bases_bit_identical_in_two_fresh_processes():
    code = ("import sys, hashlib; sys.path.insert(0, 'tests'); import _r3_fixtures as fx\n"
            "h = hashlib.sha256()\n"
            "for n in ('octa_faces_k5', 'ico_lift_k3', 'so2z_irreps_k5', 'o3_pseudo_k7'):\n"
            "    p = fx.layer(n, cache=False).plan\n"
            "    h.update(p.basis.tobytes()); h.update(p.change_of_basis.tobytes())\n"
            "print(h.hexdigest())")
    env_cache = {"CUPYSTEER_CACHE_DIR": ""}
    import os
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={**os.environ, **env_cache}).stdout
            for _ in range(2)}
    assert len(outs) == 1 and len(next(iter(outs))) > 0


def test_disk_cache_round_trip_for_r3_bases(tmp_path):
    """3D pair bases go through the same verified disk cache as the planar ones."""
    from cupysteer import BasisCache
    fresh = fx.layer("octa_faces_k5", cache=False)
    first = fx.layer("octa_faces_k5", cache=BasisCache(tmp_path))
    assert list(tmp_path.glob("pair-*.npz"))
    again = fx.layer("octa_faces_k5", cache=BasisCache(tmp_path))  # new memory, same disk
    for b in (first, again):
        np.testing.assert_array_equal(b.plan.basis, fresh.plan.basis)
        np.testing.assert_array_equal(b.plan.weight_index, fresh.plan.weight_index)


def test_r3_errors_name_the_argument():
    from cupysteer import FieldType, LayerBasis, r3
    G = r3.SO3()
    t = FieldType(G, [G.irrep(1).representation])
    with pytest.raises(ValueError, match="maximum_offset"):
        LayerBasis(t, t, 3, maximum_offset=1)
    with pytest.raises(ValueError, match=r"points must be a finite \(n, 3\)"):
        LayerBasis(t, t, 3, points=np.zeros((4, 2)))
    with pytest.raises(ValueError, match="frequencies_cutoff"):
        LayerBasis(t, t, 3, frequencies_cutoff="fast")
    with pytest.raises(ValueError, match="rings"):
        LayerBasis(t, t, 3, rings=[4.0])
    with pytest.raises(ValueError, match="one group"):
        LayerBasis(t, FieldType(r3.O3(), [r3.O3().irrep(0, 1).representation]), 3)


def test_plan_basis_shares_the_sampled_buffer():
    """R³ layers sample all irreps pairs into one buffer that the plan uses without a copy;
    the pair values are read-only views of it and the plan still validates."""
    basis = fx.layer("so3_vec_tensor_k5", cache=False)
    plan = basis.plan
    assert not plan.basis.flags.writeable
    offset = 0
    for tau, pair in enumerate(basis.irreps_pairs):
        pb = basis.pair_basis(*pair)
        assert np.shares_memory(pb.values, plan.basis)
        np.testing.assert_array_equal(plan.pair_values(tau), pb.values)
        assert plan.pair_offset[tau] == offset
        offset += pb.values.size
    assert offset == plan.basis.size


def test_escnn_cutoff_spellings_and_frequency_cap():
    """escnn's 'default1' and c = 0.0 are accepted (33 and 9 elements, as escnn 1.0.11);
    absurd maximum_frequency values fail fast instead of listing 10⁹ irreps."""
    from cupysteer import FieldType, LayerBasis, r3
    G = r3.SO3(2)
    t = FieldType(G, [G.irrep(l).representation for l in range(3)])
    assert LayerBasis(t, t, 5, frequencies_cutoff="default1", cache=False).dim == 33
    assert LayerBasis(t, t, 5, frequencies_cutoff=0.0, cache=False).dim == 9
    with pytest.raises(ValueError, match="maximum_frequency must be between 0 and 64"):
        r3.SO3(10 ** 9)
    assert r3.SO3(64).trivial_irrep.is_trivial
