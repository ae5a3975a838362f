"""SO(3)/O(3) building blocks: real spherical harmonics, real Wigner matrices and
real Clebsch–Gordan tensors in escnn 1.0.11's conventions (see
``steerable-bases-3d.md`` §2.1, §2.2, §3, §4.2).

* ``Y^l_m(u) = sqrt((2-δ_m0)(l-|m|)!/(l+|m|)!) P_l^|m|(cos θ) {cos mφ (m ≥ 0), sin |m|φ (m < 0)}``,
  m = -l..l, P without the Condon–Shortley phase, so Σ_m Y_m² = 1 and Y¹(u) = (y, z, x).
* ``D^l(R)`` is defined by ``Y^l(R u) = D^l(R) Y^l(u)``; D¹(R) = Pᵀ R P,
  P = [[0,0,1],[1,0,0],[0,1,0]].
* ``C[a, b, M]`` is the real Clebsch–Gordan tensor with (D^{l_out} ⊗ D^{l_in}) C = C D^J.

Only NumPy is needed; the only state is a few ``functools.lru_cache`` caches.
"""

from __future__ import annotations

import math
import operator
from functools import lru_cache

import numpy as np

__all__ = ["spherical_harmonics", "spherical_harmonics_all", "wigner_D", "harmonic_matrix",
           "clebsch_gordan"]

_ORIGIN_TOL = 1e-9
_ORTHO_TOL = 1e-6


#: D¹(R) = Pᵀ R P: the standard representation of SO(3) is [D¹] with change of basis P
P_STANDARD = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
P_STANDARD.setflags(write=False)

def _degree(value, name: str) -> int:
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer degree, got {value!r}") from None
    if value < 0:
        raise ValueError(f"{name} must be a non-negative degree, got {name}={value}")
    return value


def spherical_harmonics_all(L: int, points) -> list:
    """Real spherical harmonics of every degree l = 0..L at ``points`` (..., 3).

    Returns ``[Y^0, ..., Y^L]`` with ``Y^l`` of shape (..., 2l+1), float64, m = -l..l::

        Y^l_m(u) = sqrt(2 - δ_m0) · Q_l^|m|(z) · {Re (x+iy)^m  (m ≥ 0);  Im (x+iy)^|m|  (m < 0)}

    where u = (x, y, z) = p/|p| and Q_l^m(z) = sqrt((l-m)!/(l+m)!) P_l^m(z) / sin^m θ is computed
    by the stable recursions Q_m^m = sqrt((2m-1)/(2m)) Q_{m-1}^{m-1},
    Q_{m+1}^m = sqrt(2m+1) z Q_m^m,
    Q_l^m = ((2l-1) z Q_{l-1}^m - sqrt((l-1)² - m²) Q_{l-2}^m) / sqrt(l² - m²).
    Points are normalised internally; where |p| < 1e-9, Y^0 = 1 and Y^l = 0 for l > 0.
    """
    L = _degree(L, "L")
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim < 1 or pts.shape[-1] != 3:
        raise ValueError(f"points must have shape (n, 3), got {pts.shape}")
    lead = pts.shape[:-1]
    pts = pts.reshape(-1, 3)
    r = np.sqrt(np.einsum("ij,ij->i", pts, pts))
    nonzero = r >= _ORIGIN_TOL
    inv_r = np.divide(1.0, r, out=np.zeros_like(r), where=nonzero)
    x, y, z = (pts * inv_r[:, None]).T  # u = 0 at the origin
    n = pts.shape[0]
    # √2 (C_m + i S_m) = √2 (x + i y)^m, m ≥ 1; they vanish at the origin
    C, S = np.empty((L + 1, n)), np.empty((L + 1, n))
    C[0], S[0] = math.sqrt(2.0), 0.0
    for m in range(1, L + 1):
        C[m] = x * C[m - 1] - y * S[m - 1]
        S[m] = x * S[m - 1] + y * C[m - 1]
    buf = np.empty(((L + 1) ** 2, n))  # row l² + l + m holds Y^l_m
    buf[0] = 1.0
    prev2, prev = None, buf[:1]  # Q_{l-2}^m, Q_{l-1}^m
    for l in range(1, L + 1):
        a, b, c_diag, c_sub = _legendre_coeffs(l)
        Q = np.empty((l + 1, n))
        if l >= 2:
            np.multiply(prev[: l - 1], z, out=Q[: l - 1])
            Q[: l - 1] *= a
            Q[: l - 1] -= b * prev2[: l - 1]
        np.multiply(prev[l - 1], c_sub * z, out=Q[l - 1])
        np.multiply(prev[l - 1], c_diag, out=Q[l])
        o = l * l + l
        np.multiply(Q[:0:-1], S[l:0:-1], out=buf[l * l:o])
        np.multiply(Q[0], nonzero, out=buf[o])  # only the m = 0 term survives at the origin
        np.multiply(Q[1:], C[1:l + 1], out=buf[o + 1:o + l + 1])
        prev2, prev = prev, Q
    out = [buf[l * l:(l + 1) ** 2].T for l in range(L + 1)]
    return [Y.reshape(lead + (Y.shape[1],)) for Y in out]


@lru_cache(maxsize=None)
def _legendre_coeffs(l: int):
    """Recursion constants for Q_l^m: ((2l-1)/√(l²-m²), √((l-1)²-m²)/√(l²-m²)) for m ≤ l-2 as
    (l-1, 1) columns, then √((2l-1)/(2l)) (Q_l^l) and √(2l-1) (Q_l^{l-1})."""
    m = np.arange(max(l - 1, 0))
    d = np.sqrt(l * l - m * m)
    return ((2 * l - 1) / d)[:, None], (np.sqrt((l - 1) ** 2 - m * m) / d)[:, None], \
        math.sqrt((2 * l - 1) / (2 * l)), math.sqrt(2 * l - 1)


def spherical_harmonics(l: int, points) -> np.ndarray:
    """Real spherical harmonics Y^l (..., 2l+1) at ``points`` (..., 3); see
    :func:`spherical_harmonics_all`. Y¹(u) = (y, z, x);
    Y²(u) = (√3 xy, √3 yz, (3z² - 1)/2, √3 xz, (√3/2)(x² - y²)); Σ_m Y^l_m(u)² = 1."""
    return spherical_harmonics_all(_degree(l, "l"), points)[-1]


@lru_cache(maxsize=None)
def _quadrature(l: int):
    """Points u_i (3, N) and weighted harmonics (2l+1)/(4π) w_i Y^l(u_i) (N, 2l+1) of a product
    Gauss–Legendre (l+1 nodes in z) × uniform (2l+1 angles in φ) rule, exact for degree 2l."""
    z, wz = np.polynomial.legendre.leggauss(l + 1)
    phi = (np.arange(2 * l + 1) + 0.5) * (2 * np.pi / (2 * l + 1))
    s = np.sqrt(1.0 - z * z)
    u = np.stack([np.outer(s, np.cos(phi)), np.outer(s, np.sin(phi)),
                  np.outer(z, np.ones_like(phi))]).reshape(3, -1)
    w = np.outer(wz, np.full(phi.shape, 2 * np.pi / (2 * l + 1))).ravel()
    wY = spherical_harmonics(l, u.T) * (w * (2 * l + 1) / (4 * np.pi))[:, None]
    u.setflags(write=False)
    wY.setflags(write=False)
    return u, wY


def _orthogonal(M, name: str, proper: bool) -> np.ndarray:
    M = np.asarray(M, dtype=np.float64)
    if M.shape[-2:] != (3, 3) or M.ndim not in (2, 3):
        raise ValueError(f"{name} must have shape (3, 3) or (n, 3, 3), got {M.shape}")
    err = np.abs(np.swapaxes(M, -1, -2) @ M - np.eye(3)).max(initial=0.0)
    if err > _ORTHO_TOL:
        raise ValueError(f"{name} is not orthogonal (max |{name}ᵀ{name} - I| = {err:.2e} > "
                         f"{_ORTHO_TOL:g}); pass rotation/reflection matrices, e.g. orthonormalise "
                         f"with scipy.spatial.transform.Rotation.from_matrix({name}).as_matrix()")
    if proper and M.size and np.linalg.det(M).min() < 0:
        raise ValueError(f"{name} has determinant -1 (not a rotation); use harmonic_matrix({name}) "
                         f"for improper orthogonal matrices")
    return M


def _harmonic_matrix(l: int, M: np.ndarray) -> np.ndarray:
    u, wY = _quadrature(l)
    Yr = spherical_harmonics(l, np.swapaxes(M @ u, -1, -2))  # (..., N, 2l+1)
    return np.einsum("...im,ik->...mk", Yr, wY)


def harmonic_matrix(l: int, M) -> np.ndarray:
    """Matrix H^l(M) (2l+1, 2l+1) (or (n, 2l+1, 2l+1)) with Y^l(M u) = H^l(M) Y^l(u) for an
    orthogonal M (3, 3) / (n, 3, 3), proper or improper. Computed by exact quadrature:

        H^l(M) = (2l+1)/(4π) Σ_i w_i Y^l(M u_i) Y^l(u_i)ᵀ

    over a product Gauss–Legendre × uniform-φ rule exact for degree 2l (∫ Y_m Y_k = 4π/(2l+1) δ_mk).
    For M = -R (R a rotation), H^l(M) = (-1)^l D^l(R). Raises ValueError if M is not orthogonal."""
    l = _degree(l, "l")
    return _harmonic_matrix(l, _orthogonal(M, "M", proper=False))


def wigner_D(l: int, R) -> np.ndarray:
    """Real Wigner matrix D^l(R) (2l+1, 2l+1) (or batched (n, 2l+1, 2l+1) for R (n, 3, 3)),
    defined by Y^l(R u) = D^l(R) Y^l(u); D⁰ = 1, D¹(R) = Pᵀ R P with P = [[0,0,1],[1,0,0],[0,1,0]].
    Evaluated as D^l(R) = (2l+1)/(4π) Σ_i w_i Y^l(R u_i) Y^l(u_i)ᵀ (see :func:`harmonic_matrix`).
    Raises ValueError if R is not a rotation matrix."""
    l = _degree(l, "l")
    return _harmonic_matrix(l, _orthogonal(R, "R", proper=True))


@lru_cache(maxsize=None)
def _factorials(n: int) -> tuple:
    """(0!, 1!, …, n!) as exact integers."""
    return tuple(math.factorial(i) for i in range(n + 1))


def _cg_complex_table(j1: int, j2: int, J: int) -> dict:
    """Condon–Shortley ⟨j1 m1 j2 m2 | J m1+m2⟩ for every (m1, m2) with |m1+m2| ≤ J, by Racah's
    formula in exact integer arithmetic:

        sqrt((2J+1)(J+j1-j2)!(J-j1+j2)!(j1+j2-J)!/(j1+j2+J+1)! · (J+M)!(J-M)!(j1±m1)!(j2±m2)!)
        · Σ_k (-1)^k / (k!(j1+j2-J-k)!(j1-m1-k)!(j2+m2-k)!(J-j2+m1+k)!(J-j1-m2+k)!)

    The six factorial arguments sum to n = j1+j2+J, so n!/(…) is an integer (multinomial) and
    each squared coefficient is a ratio of integers, divided once (correctly rounded).
    Returns {(m1, m2): value} (zeros omitted)."""
    n = j1 + j2 + J
    F = _factorials(n + 1)
    Fn = F[n]
    const = (2 * J + 1) * F[J + j1 - j2] * F[J - j1 + j2] * F[j1 + j2 - J]
    denom = F[n + 1] * Fn * Fn
    out = {}
    for m1 in range(-j1, j1 + 1):
        for m2 in range(max(-j2, -J - m1), min(j2, J - m1) + 1):
            M = m1 + m2
            kmin = max(0, j2 - J - m1, j1 - J + m2)
            kmax = min(j1 + j2 - J, j1 - m1, j2 + m2)
            total, sign = 0, (-1) ** kmin
            for k in range(kmin, kmax + 1):
                total += sign * (Fn // (F[k] * F[j1 + j2 - J - k] * F[j1 - m1 - k]
                                        * F[j2 + m2 - k] * F[J - j2 + m1 + k]
                                        * F[J - j1 - m2 + k]))
                sign = -sign
            if total:
                num = const * F[J + M] * F[J - M] * F[j1 - m1] * F[j1 + m1] * F[j2 - m2] \
                    * F[j2 + m2] * total * total
                out[m1, m2] = math.copysign(math.sqrt(num / denom), total)
    return out


@lru_cache(maxsize=None)
def _U(l: int) -> np.ndarray:
    """Real→complex change of basis U_l (rows complex m, columns real m, index offset l)."""
    U = np.zeros((2 * l + 1, 2 * l + 1), dtype=complex)
    U[l, l] = 1.0
    r = 1 / math.sqrt(2)
    for f in range(1, l + 1):
        U[l - f, l - f] = -1j * r
        U[l + f, l - f] = (-1) ** f * 1j * r
        U[l - f, l + f] = r
        U[l + f, l + f] = (-1) ** f * r
    U.setflags(write=False)
    return U


@lru_cache(maxsize=None)
def _clebsch_gordan(l1: int, l2: int, J: int) -> np.ndarray:
    cg = np.zeros((2 * l1 + 1, 2 * l2 + 1, 2 * J + 1))
    for (m1, m2), v in _cg_complex_table(l1, l2, J).items():
        cg[m1 + l1, m2 + l2, m1 + m2 + J] = v
    # contract one index at a time: Σ_m1 U1[m1,a] Σ_m2 U2[m2,b] Σ_M' cg[m1,m2,M'] conj(UJ[M',M])
    n1, n2, nJ = cg.shape
    T = (cg.reshape(n1 * n2, nJ) @ _U(J).conj()).reshape(n1, n2 * nJ)  # (m1, m2 M)
    T = (_U(l1).T @ T).reshape(n1, n2, nJ)  # (a, m2, M)
    C = _U(l2).T[None] @ T  # (a, b, M)
    C = np.ascontiguousarray(C.real if (l1 + l2 + J) % 2 == 0 else C.imag)
    C.setflags(write=False)
    return C


def clebsch_gordan(l_out: int, l_in: int, J: int) -> np.ndarray:
    """Real Clebsch–Gordan tensor C (2l_out+1, 2l_in+1, 2J+1), escnn's sign convention (§4.2):

        C[a, b, M] = Re/Im Σ_{m1,m2,M'} U_{l_out}[m1, a] U_{l_in}[m2, b] conj(U_J[M', M])
                     ⟨l_out m1 l_in m2 | J M'⟩

    (Re when l_out + l_in + J is even, Im when odd), with Condon–Shortley complex coefficients.
    Columns are orthonormal and (D^{l_out}(R) ⊗ D^{l_in}(R)) C = C D^J(R). Memoised, read-only.
    Raises ValueError unless |l_out - l_in| ≤ J ≤ l_out + l_in with non-negative degrees."""
    l_out, l_in, J = _degree(l_out, "l_out"), _degree(l_in, "l_in"), _degree(J, "J")
    if not abs(l_out - l_in) <= J <= l_out + l_in:
        raise ValueError(f"clebsch_gordan(l_out={l_out}, l_in={l_in}, J={J}) violates the triangle "
                         f"condition |l_out - l_in| <= J <= l_out + l_in")
    return _clebsch_gordan(l_out, l_in, J)
