"""Tests for cupysteer.r3.so3: real spherical harmonics, Wigner matrices, Clebsch–Gordan tensors."""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cupysteer.r3.so3 import (
    clebsch_gordan,
    harmonic_matrix,
    spherical_harmonics,
    spherical_harmonics_all,
    wigner_D,
)

from _paths import DATA  # noqa: E402

DATA = DATA / "escnn3d"
P = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], dtype=float)


def random_rotations(n, seed):
    q = np.random.default_rng(seed).normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1)], -2)


def rz(deg):
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def unit_points(n, seed):
    p = np.random.default_rng(seed).normal(size=(n, 3))
    return p / np.linalg.norm(p, axis=1, keepdims=True)


# ---------------------------------------------------------------- spherical harmonics

def test_closed_forms():
    p = np.random.default_rng(0).normal(size=(50, 3)) * 3.7
    x, y, z = (p / np.linalg.norm(p, axis=1, keepdims=True)).T
    s3 = math.sqrt(3)
    np.testing.assert_allclose(spherical_harmonics(0, p), np.ones((50, 1)), atol=0)
    np.testing.assert_allclose(spherical_harmonics(1, p), np.stack([y, z, x], 1), atol=1e-15)
    Y2 = np.stack([s3 * x * y, s3 * y * z, (3 * z * z - 1) / 2, s3 * x * z,
                   s3 / 2 * (x * x - y * y)], 1)
    np.testing.assert_allclose(spherical_harmonics(2, p), Y2, atol=1e-15)


def test_general_formula_against_legendre():
    from scipy.special import lpmv
    u = unit_points(40, 1)
    theta, phi = np.arccos(u[:, 2]), np.arctan2(u[:, 1], u[:, 0])
    for l in range(9):
        ref = np.empty((40, 2 * l + 1))
        for m in range(-l, l + 1):
            a = abs(m)
            norm = math.sqrt((2 - (m == 0)) * math.factorial(l - a) / math.factorial(l + a))
            Pl = lpmv(a, l, np.cos(theta)) * (-1) ** a  # scipy includes the Condon–Shortley phase
            ref[:, m + l] = norm * Pl * (np.cos(a * phi) if m >= 0 else np.sin(a * phi))
        np.testing.assert_allclose(spherical_harmonics(l, u), ref, atol=1e-13)


def test_normalisation_origin_shapes_and_all():
    p = np.concatenate([np.random.default_rng(2).normal(size=(30, 3)), np.zeros((1, 3)),
                        [[1e-12, 0, 0]]])
    Ys = spherical_harmonics_all(10, p)
    assert len(Ys) == 11
    for l, Y in enumerate(Ys):
        assert Y.shape == (32, 2 * l + 1) and Y.dtype == np.float64
        np.testing.assert_array_equal(Y, spherical_harmonics(l, p))
        np.testing.assert_allclose((Y[:30] ** 2).sum(1), 1.0, atol=1e-13)
        np.testing.assert_array_equal(Y[30:], 1.0 if l == 0 else 0.0)
    assert spherical_harmonics(2, np.ones((4, 5, 3))).shape == (4, 5, 5)
    with pytest.raises(ValueError, match="points"):
        spherical_harmonics(1, np.ones((4, 2)))
    with pytest.raises(ValueError, match="l"):
        spherical_harmonics(-1, np.ones((4, 3)))


def test_parity():
    u = unit_points(20, 3)
    for l in range(7):
        np.testing.assert_allclose(spherical_harmonics(l, -u),
                                   (-1) ** l * spherical_harmonics(l, u), atol=1e-14)


# ---------------------------------------------------------------- Wigner matrices

def test_wigner_small_degrees():
    R = random_rotations(10, 4)
    np.testing.assert_allclose(wigner_D(0, R), np.ones((10, 1, 1)), atol=1e-15)
    np.testing.assert_allclose(wigner_D(1, R), P.T @ R @ P, atol=1e-14)
    np.testing.assert_allclose(wigner_D(1, rz(90)), [[0, 0, 1], [0, 1, 0], [-1, 0, 0]], atol=1e-15)
    assert wigner_D(3, R[0]).shape == (7, 7)
    assert wigner_D(3, R).shape == (10, 7, 7)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), l=st.integers(0, 8))
def test_wigner_defining_property(seed, l):
    R = random_rotations(5, seed)
    u = unit_points(25, seed + 1)
    D = wigner_D(l, R)
    lhs = spherical_harmonics(l, np.einsum("rij,nj->rni", R, u))
    rhs = np.einsum("rmk,nk->rnm", D, spherical_harmonics(l, u))
    np.testing.assert_allclose(lhs, rhs, atol=1e-13)
    np.testing.assert_allclose(D @ np.swapaxes(D, 1, 2),
                               np.broadcast_to(np.eye(2 * l + 1), D.shape), atol=1e-13)
    # homomorphism and character
    R1, R2 = R[:2], R[2:4]
    np.testing.assert_allclose(wigner_D(l, R1 @ R2), wigner_D(l, R1) @ wigner_D(l, R2), atol=1e-13)
    theta = np.arccos(np.clip((np.trace(R, axis1=1, axis2=2) - 1) / 2, -1, 1))
    chi = np.sin((l + 0.5) * theta) / np.sin(theta / 2)
    np.testing.assert_allclose(np.trace(D, axis1=1, axis2=2), chi, atol=1e-11)


def test_harmonic_matrix_improper():
    R = random_rotations(6, 5)
    u = unit_points(20, 6)
    mirror = np.diag([-1.0, 1, 1])
    for l in range(7):
        np.testing.assert_allclose(harmonic_matrix(l, -R), (-1) ** l * wigner_D(l, R), atol=1e-13)
        np.testing.assert_allclose(harmonic_matrix(l, R), wigner_D(l, R), atol=0)
        M = mirror @ R
        lhs = spherical_harmonics(l, np.einsum("rij,nj->rni", M, u))
        rhs = np.einsum("rmk,nk->rnm", harmonic_matrix(l, M), spherical_harmonics(l, u))
        np.testing.assert_allclose(lhs, rhs, atol=1e-13)


def test_matrix_validation():
    with pytest.raises(ValueError, match="M is not orthogonal"):
        harmonic_matrix(2, 2 * np.eye(3))
    with pytest.raises(ValueError, match="R is not orthogonal"):
        wigner_D(2, np.ones((2, 3, 3)))
    with pytest.raises(ValueError, match="determinant"):
        wigner_D(1, -np.eye(3))
    with pytest.raises(ValueError, match="shape"):
        wigner_D(1, np.eye(4))


# ---------------------------------------------------------------- Clebsch–Gordan

TRIPLES = [(a, b, J) for a in range(5) for b in range(5) for J in range(abs(a - b), a + b + 1)]


@pytest.mark.parametrize("l_out,l_in,J", TRIPLES)
def test_cg_orthonormal_and_equivariant(l_out, l_in, J):
    C = clebsch_gordan(l_out, l_in, J)
    assert C.shape == (2 * l_out + 1, 2 * l_in + 1, 2 * J + 1) and not C.flags.writeable
    np.testing.assert_allclose(np.einsum("abM,abN->MN", C, C), np.eye(2 * J + 1), atol=1e-14)
    R = random_rotations(3, 100 * l_out + 10 * l_in + J)
    lhs = np.einsum("rac,rbd,cdM->rabM", wigner_D(l_out, R), wigner_D(l_in, R), C)
    rhs = np.einsum("abN,rNM->rabM", C, wigner_D(J, R))
    np.testing.assert_allclose(lhs, rhs, atol=1e-13)
    assert clebsch_gordan(l_out, l_in, J) is C


def test_cg_examples_and_errors():
    np.testing.assert_allclose(clebsch_gordan(0, 0, 0), [[[1.0]]])
    # l ⊗ l → 0 is the (normalised) identity pairing, up to escnn's sign
    for l in range(5):
        C = clebsch_gordan(l, l, 0)[:, :, 0]
        np.testing.assert_allclose(np.abs(C), np.eye(2 * l + 1) / math.sqrt(2 * l + 1), atol=1e-15)
    # 1 ⊗ 1 → 1 is the cross product in (y, z, x) order, up to a global sign
    C = clebsch_gordan(1, 1, 1)
    eps = np.zeros((3, 3, 3))
    for i, j, k in [(0, 1, 2), (1, 2, 0), (2, 0, 1)]:
        eps[i, j, k], eps[j, i, k] = 1, -1
    assert min(np.abs(C - s * eps / math.sqrt(2)).max() for s in (1, -1)) < 1e-15
    for args in [(1, 1, 3), (0, 2, 1), (-1, 1, 1), (1, 1, -1)]:
        with pytest.raises(ValueError, match="l_out|J"):
            clebsch_gordan(*args)
    C = clebsch_gordan(2, 1, 2)
    with pytest.raises(ValueError):
        C[0, 0, 0] = 1.0


# ---------------------------------------------------------------- escnn fixtures

def _configs():
    index = json.loads((DATA / "index.json").read_text())
    return [c for c in index["configs"] if c["name"].startswith(("so3_", "o3_"))]


CONFIGS = _configs()


@pytest.mark.parametrize("cfg", CONFIGS, ids=[c["name"] for c in CONFIGS])
def test_fixture_clebsch_gordan(cfg):
    z = np.load(DATA / cfg["file"])
    irreps = {ir["id"]: ir["irrep_id"] for ir in cfg["irreps"]}
    count = 0
    for blk in cfg["blocks"]:
        k = blk["block"]
        coeff = z[f"b{k}_coeff"]
        for e in range(blk["dim"]):
            l_out = irreps[int(z[f"b{k}_out_irrep_id"][e])][-1]
            l_in = irreps[int(z[f"b{k}_in_irrep_id"][e])][-1]
            J = int(z[f"b{k}_J"][e])
            osize, isize = int(z[f"b{k}_osize"][e]), int(z[f"b{k}_isize"][e])
            assert (osize, isize) == (2 * l_out + 1, 2 * l_in + 1)
            c = coeff[e]
            np.testing.assert_allclose(c[:osize, :isize, :2 * J + 1],
                                       clebsch_gordan(l_out, l_in, J), atol=1e-12, rtol=0)
            # the zero padding really is padding
            assert np.abs(c).sum() == pytest.approx(np.abs(c[:osize, :isize, :2 * J + 1]).sum())
            count += 1
    assert count == sum(b["dim"] for b in cfg["blocks"]) > 0


@pytest.mark.parametrize("cfg", CONFIGS, ids=[c["name"] for c in CONFIGS])
def test_fixture_irreps(cfg):
    z = np.load(DATA / cfg["file"])
    o3 = cfg["name"].startswith("o3_")
    for ir in cfg["irreps"]:
        q, l = ir["id"], ir["irrep_id"][-1]
        for gen in cfg["generators"]:
            A = z[f"action_gen{gen['j']}"]
            np.testing.assert_allclose(A, gen["matrix"], atol=1e-15)
            inv = int(np.linalg.det(A) < 0)
            assert o3 or not inv
            expected = (-1) ** (ir["irrep_id"][0] * inv) * wigner_D(l, (-1) ** inv * A) if o3 \
                else wigner_D(l, A)
            np.testing.assert_allclose(z[f"irrep{q}_gen{gen['j']}"], expected, atol=1e-12, rtol=0)
            if not o3 or ir["irrep_id"][0] == l % 2:  # harmonics transform as (l mod 2, l)
                np.testing.assert_allclose(harmonic_matrix(l, A), expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("cfg", CONFIGS, ids=[c["name"] for c in CONFIGS])
def test_fixture_sampled_basis(cfg):
    """Rebuild escnn's sampled basis elements (fixture README, steps 1-2) from our harmonics
    and CG."""
    z = np.load(DATA / cfg["file"])
    grid = z["grid"].T
    r = np.linalg.norm(grid, axis=1)
    irreps = {ir["id"]: ir["irrep_id"] for ir in cfg["irreps"]}
    Ys = spherical_harmonics_all(8, grid)
    for blk in cfg["blocks"]:
        k = blk["block"]
        if not blk["sampled_stored"]:
            continue
        Qo, Qi = z[f"rep{blk['out_rep_id']}_Q"], z[f"rep{blk['in_rep_id']}_Qinv"]
        for e in range(blk["dim"]):
            J = int(z[f"b{k}_J"][e])
            l_out = irreps[int(z[f"b{k}_out_irrep_id"][e])][-1]
            l_in = irreps[int(z[f"b{k}_in_irrep_id"][e])][-1]
            radial = np.exp(-(r - z[f"b{k}_radius"][e]) ** 2 / (2 * z[f"b{k}_sigma"][e] ** 2))
            raw = radial * np.einsum("abM,sM->abs", clebsch_gordan(l_out, l_in, J), Ys[J])
            op, ip = int(z[f"b{k}_out_pos"][e]), int(z[f"b{k}_in_pos"][e])
            E = np.einsum("oa,abs,bi->ois", Qo[:, op:op + 2 * l_out + 1], raw,
                          Qi[ip:ip + 2 * l_in + 1, :]) / z[f"b{k}_scale"][e]
            np.testing.assert_allclose(E, z[f"b{k}_sampled"][e], atol=1e-6, rtol=0)
