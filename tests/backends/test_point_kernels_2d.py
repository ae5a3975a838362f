"""The fused 2D basis of kernels/point_conv.cu (the ``*_2d`` kernels: Gaussian rings ×
angular harmonics evaluated in the kernel, no (E, n_entries) basis in memory), on the CPU
emulation.

* :class:`RadialHarmonics` (the descriptor the kernels read) reproduces cupysteer's planar
  point basis (:func:`cupysteer.r2.point.evaluate_point_basis`) for real irreps pairs of
  C8, D4 (a reflection axis) and O(2), origin included;
* the fused kernels, launched by :class:`PointLaunch`, agree with the sampled-basis path
  checked against the NumPy reference (forward, both adjoints, float32 / float64, edges at
  the origin, a hub with several lanes per element), deterministically.
"""
from __future__ import annotations

import numpy as np
import pytest

import cupysteer as cs
from cupysteer.backends import point_numpy as pn
from cupysteer.backends.point_harmonics import RadialHarmonics
from cupysteer.r2.harmonics import harmonic_axis
from cupysteer.r2.point import evaluate_point_basis, point_pair_basis, point_settings

from _helpers import rel_err
from cuda_emulation import harness as H
from cuda_emulation.point_harness import CpuPointLaunch
from cuda_emulation.point_problems import harmonic_problem

pytestmark = pytest.mark.skipif(H.gxx() is None, reason="g++ not found: the CPU emulation of "
                                "the CUDA kernels needs a host C++20 compiler")


def _coef(do, di, s):
    """(α, β) of the entries of one element: evaluate_angular's matrices in cos / sin."""
    if (do, di) == (2, 2):
        sg = -1.0 if s == 1 else 1.0
        return [(1, 0), (0, -sg), (0, 1), (sg, 0)]
    if (do, di) in ((1, 2), (2, 1)):
        return [(1, 0), (0, 1)]
    return [(1, 0)]


def pair_descriptor(pbs, settings, axis):
    """RadialHarmonics of the pair bases ``pbs`` laid out one after another (slice j of
    pair j: element-major, then (r, c)), and the slices' offsets."""
    elements, entry_el, coef, offsets = [], [], [], []
    for pb in pbs:
        do, di = pb.shape
        offsets.append(len(entry_el))
        for k in range(len(pb)):
            mu = float(pb.frequency[k])
            elements.append((settings.rings[pb.ring[k]], settings.sigma[pb.ring[k]], mu,
                             float(pb.gamma[k]) - mu * axis, float(do)))
            entry_el += [len(elements) - 1] * (do * di)
            coef += _coef(do, di, pb.s[k])
    return RadialHarmonics(np.array(elements), np.array(entry_el), np.array(coef, float)), \
        offsets


@pytest.mark.parametrize("group", ["C8", "D4", "O2"])
def test_descriptor_reproduces_the_planar_point_basis(group):
    G = {"C8": cs.CyclicGroup(8), "D4": cs.DihedralGroup(4, axis=0.3),
         "O2": cs.O2(3)}[group]  # D4 about an axis at 0.3 rad, O(2) about the default π/2
    settings = point_settings(width=2.0, n_rings=3)
    irreps = list(G.irreps())[:4]
    pbs = [point_pair_basis(a, b, settings) for a in irreps for b in irreps]
    pbs = [pb for pb in pbs if len(pb)]
    h, offsets = pair_descriptor(pbs, settings, harmonic_axis(G))
    rng = np.random.default_rng(0)
    delta = np.concatenate([rng.uniform(-2.5, 2.5, (40, 2)), np.zeros((2, 2))])
    got = h.evaluate(delta)
    for pb, off in zip(pbs, offsets):
        want = evaluate_point_basis(pb, settings, delta).reshape(len(delta), -1)
        assert np.abs(got[:, off:off + want.shape[1]] - want).max() < 1e-12, (group, pb.shape)


def _both(p, dtype):
    L = CpuPointLaunch(p["table"], p["src"], p["dst"], p["n_src"], p["n_tgt"],
                       c_in=p["g"].shape[1])
    sample = p["h"].at(p["delta"])
    fused = (L.contract(sample, p["w"], p["g"]), L.adjoint_features(sample, p["w"], p["gy"]),
             L.adjoint_weights(sample, p["gy"], p["g"], len(p["w"])))
    B = p["h"].evaluate(p["delta"].astype(np.float64))
    a = (p["table"], B)
    s, d = p["src"], p["dst"]
    ref = (pn.contract(*a, p["w"].astype(float), p["g"].astype(float), s, d, p["n_tgt"]),
           pn.contract_adjoint_features(*a, p["w"].astype(float), p["gy"].astype(float), s,
                                        d, p["n_src"]),
           pn.contract_adjoint_weights(*a, p["gy"].astype(float), p["g"].astype(float), s, d,
                                       len(p["w"])))
    return fused, ref, L, sample


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(4))
def test_fused_kernels_match_the_sampled_reference(dtype, seed):
    p = harmonic_problem(seed, dtype, n_blocks=2 + seed, E=[5, 30, 1, 45][seed])
    fused, ref, L, _ = _both(p, dtype)
    tol = 1e-12 if dtype == np.float64 else 3e-5
    for name, a, b in zip(("contract", "features", "weights"), fused, ref):
        b = b if name != "features" else np.pad(b, ((0, 0), (0, a.shape[1] - b.shape[1])))
        assert a.dtype == dtype and np.isfinite(a).all(), name
        assert rel_err(a, b) < tol, (name, rel_err(a, b))
    assert {"point_segments_2d<%s, %s>" % ((H_CT[dtype],) * 2)} <= set(L.launches)


H_CT = {np.float32: "float", np.float64: "double"}


def test_fused_hub_is_deterministic_and_checks_the_descriptor():
    rng = np.random.default_rng(5)
    E = 600
    src = np.where(np.arange(E) < 400, 0, rng.integers(1, 5, E))
    dst = np.where(np.arange(E) % 3 == 0, rng.integers(0, 4, E), 4)
    p = harmonic_problem(9, np.float64, n_src=5, n_tgt=5, src=src, dst=dst, origin_edges=50)
    fused, ref, L, sample = _both(p, np.float64)
    assert L.config("forward", np.float64).split > 1
    for a, b in zip((fused[0], fused[2]), (ref[0], ref[2])):
        assert rel_err(a, b) < 1e-12
    again = L.contract(sample, p["w"], p["g"])
    assert again.tobytes() == fused[0].tobytes()
    # an element that changes within one (block, basis element) is refused
    ee = p["h"].entry_element.copy()
    t = p["table"][0]
    ee[t[6] + t[2] * t[3] - 1] = (ee[t[6]] + 1) % len(p["h"].elements)
    if t[2] * t[3] > 1:
        bad = RadialHarmonics(p["h"].elements, ee, p["h"].entry_coef)
        with pytest.raises(ValueError, match="share one element"):
            L.contract(bad.at(p["delta"]), p["w"], p["g"])
    with pytest.raises(ValueError, match="delta must have shape"):
        p["h"].at(p["delta"][:, :1])
    with pytest.raises(ValueError, match="delta must have shape"):
        L.contract(p["h"].at(p["delta"][:-1]), p["w"], p["g"])
    with pytest.raises(ValueError, match="sigma"):
        RadialHarmonics(np.zeros((1, 5)), np.zeros(1, int), np.zeros((1, 2)))


def test_descriptor_uploads_are_cached_and_bounded():
    """A descriptor is uploaded once per device and dtype (later calls launch only); at most
    8 descriptors stay cached, and an evicted one is uploaded again, with the same result."""
    p = harmonic_problem(2, np.float64, E=12)
    L = CpuPointLaunch(p["table"], p["src"], p["dst"], p["n_src"], p["n_tgt"],
                       c_in=p["g"].shape[1])
    first = L.contract(p["h"].at(p["delta"]), p["w"], p["g"])
    syncs = L.cupy.stream.synchronized
    L.contract(p["h"].at(p["delta"]), p["w"], p["g"])
    assert L.cupy.stream.synchronized == syncs
    for i in range(10):
        h = RadialHarmonics(p["h"].elements, p["h"].entry_element, p["h"].entry_coef * i)
        L.contract(h.at(p["delta"]), p["w"], p["g"])
    assert sum(isinstance(k, tuple) and k[0] == "harmonics" for k in L._device) == 8
    again = L.contract(p["h"].at(p["delta"]), p["w"], p["g"])
    assert again.tobytes() == first.tobytes()
