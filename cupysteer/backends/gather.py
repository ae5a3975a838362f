"""The gather/einsum schedule of an :class:`~cupysteer.plan.ExpansionPlan`, in NumPy tables.

One schedule, two executors: :mod:`.jax_schedule` runs it in ``jax.numpy`` and
:mod:`cupysteer.torch.native` in torch ops (devices without CuPy, compiled and exported
graphs). Expansion in this form is

1. ``W = w[..., wslot]``: the weights in (irreps pair, block, element) order;
2. per irreps pair τ: ``W_τ (…, n_blocks, n_τ) @ B_τ (n_τ, d_out·d_in·P)``, concatenated
   with one zero → ``V``;
3. ``K = V[..., gidx]`` reshaped to (C_out, C_in, P), the channels sorted by representation;
4. the change of basis Q per run of fields of one representation (``out_segments``,
   ``in_segments``), then the channels put back in field order (``out_inv``, ``in_inv``).

The adjoint runs the same steps transposed (``out_perm``, ``in_perm``, Qᵀ, ``vidx``, Bᵀ,
``wslot_inv``). :class:`GatherPlan` compares and hashes **by value** (a digest of the plan's
arrays): equal layers share one schedule, so a traced computation keyed by it is reused.
"""
from __future__ import annotations

import hashlib
import threading
import weakref
from dataclasses import dataclass, field, fields

import numpy as np

from ..plan import ExpansionPlan
from .tables import bias_expansion, fields_by_rep, pair_blocks

__all__ = ["Segment", "GatherPlan", "plan_digest", "build", "schedule"]


@dataclass(frozen=True, eq=False)
class Segment:
    start: int      # first channel in the representation-sorted order
    n: int          # fields
    size: int       # channels per field
    Q: np.ndarray | None  # (size, size), None for the identity


@dataclass(frozen=True, eq=False)
class GatherPlan:
    dim: int
    out_size: int
    in_size: int
    P: int
    filter_shape: tuple
    pairs: tuple          # per irreps pair: (basis (n, do·di·P), number of blocks)
    wslot: np.ndarray     # weight read by each (block, element), pairs concatenated
    wslot_inv: np.ndarray
    gidx: np.ndarray      # (C_out·C_in·P,) position in V (NV = zero) of each sorted entry
    vidx: np.ndarray      # (NV,) sorted-filter entry of each V position
    out_perm: np.ndarray | None  # sorted channel i' is original channel perm[i']
    out_inv: np.ndarray | None
    in_perm: np.ndarray | None
    in_inv: np.ndarray | None
    out_segments: tuple
    in_segments: tuple
    bias_matrix: np.ndarray  # (C_out, T)
    digest: str = field(default="")  # of the plan: equality and hash are by value

    def __eq__(self, other):
        return isinstance(other, GatherPlan) and other.digest == self.digest

    def __hash__(self):
        return hash(self.digest)

    @property
    def shape(self) -> tuple:
        """Filter shape (C_out, C_in, *filter_shape)."""
        return (self.out_size, self.in_size) + self.filter_shape


def plan_digest(plan: ExpansionPlan) -> str:
    """A BLAKE2b digest of every array and size of ``plan`` (equal plans, equal digests)."""
    h = hashlib.blake2b(digest_size=16)
    for f in fields(plan):
        v = getattr(plan, f.name)
        h.update(f.name.encode())
        if isinstance(v, np.ndarray):
            h.update(repr((v.dtype.str, v.shape)).encode())
            h.update(np.ascontiguousarray(v).tobytes())
        else:
            h.update(repr(v).encode())
    return h.hexdigest()


def _sort_fields(plan, side):
    """Channel permutation grouping the fields by representation, and the segments."""
    offs = getattr(plan, f"{side}_field_offset")
    reps = getattr(plan, f"{side}_field_rep")
    perm, segments, start = [], [], 0
    for r, fields_ in fields_by_rep(reps):
        s = int(plan.rep_size[r])
        for f in fields_:
            perm.extend(range(int(offs[f]), int(offs[f]) + s))
        Q = None if plan.rep_identity[r] else np.array(plan.rep_matrix(r))
        if segments and Q is None and segments[-1].Q is None:  # merge identity runs
            prev = segments[-1]
            segments[-1] = Segment(prev.start, prev.n * prev.size + s * len(fields_), 1, None)
        else:
            segments.append(Segment(start, len(fields_), s, Q))
        start += s * len(fields_)
    perm = np.asarray(perm, np.int64)
    if np.array_equal(perm, np.arange(len(perm))):
        return None, None, tuple(segments)
    inv = np.empty_like(perm)
    inv[perm] = np.arange(len(perm))
    return perm, inv, tuple(segments)


def build(plan: ExpansionPlan, digest: str | None = None) -> GatherPlan:
    """The gather/einsum schedule of ``plan`` (see :func:`schedule` for the memoised one);
    ``digest``: :func:`plan_digest` of ``plan`` when the caller has it."""
    P, Co, Ci = plan.num_points, plan.out_size, plan.in_size
    if Co * Ci * P >= 2 ** 31:
        raise ValueError(f"filter of {Co * Ci * P} entries is too large to index with int32")
    out_perm, out_inv, out_seg = _sort_fields(plan, "out")
    in_perm, in_inv, in_seg = _sort_fields(plan, "in")
    oinv = np.arange(Co) if out_inv is None else out_inv
    iinv = np.arange(Ci) if in_inv is None else in_inv
    pairs, wslots, targets = [], [], []
    for pb in pair_blocks(plan):
        pairs.append((np.array(plan.pair_values(pb.tau).reshape(pb.n, pb.d_out * pb.d_in * P)),
                      len(pb.blocks)))
        wslots.append(pb.weights)
        rows = oinv[pb.rows]                                                # (nb, do)
        cols = iinv[pb.cols]                                                # (nb, di)
        t = (rows[:, :, None, None] * Ci + cols[:, None, :, None]) * P + np.arange(P)
        targets.append(t.reshape(-1))                                       # (nb·do·di·P,)
    wslot = np.concatenate([w.reshape(-1) for w in wslots] or [np.zeros(0, np.int64)])
    vidx = np.concatenate(targets or [np.zeros(0, np.int64)])
    gidx = np.full(Co * Ci * P, len(vidx), np.int64)
    gidx[vidx] = np.arange(len(vidx))
    i32 = lambda a: None if a is None else np.asarray(a, np.int32)  # noqa: E731  (x64 off)
    wslot, vidx, gidx = i32(wslot), i32(vidx), i32(gidx)
    out_perm, out_inv, in_perm, in_inv = map(i32, (out_perm, out_inv, in_perm, in_inv))
    return GatherPlan(
        dim=plan.dim, out_size=Co, in_size=Ci, P=P, filter_shape=tuple(plan.filter_shape),
        pairs=tuple(pairs), wslot=wslot, wslot_inv=i32(np.argsort(wslot)), gidx=gidx, vidx=vidx,
        out_perm=out_perm, out_inv=out_inv, in_perm=in_perm, in_inv=in_inv,
        out_segments=out_seg, in_segments=in_seg, bias_matrix=bias_expansion(plan),
        digest=digest or plan_digest(plan))


_lock = threading.Lock()
_BY_PLAN: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_BY_DIGEST: "weakref.WeakValueDictionary" = weakref.WeakValueDictionary()


def schedule(plan: ExpansionPlan) -> GatherPlan:
    """The :class:`GatherPlan` of ``plan``, built once and kept while the plan lives; equal
    plans (two layers of the same types) get the same object while one of them lives."""
    with _lock:
        gp = _BY_PLAN.get(plan)
    if gp is not None:
        return gp
    digest = plan_digest(plan)
    with _lock:
        gp = _BY_DIGEST.get(digest)
    if gp is None:
        gp = build(plan, digest)
    with _lock:
        gp = _BY_DIGEST.setdefault(digest, gp)
        _BY_PLAN[plan] = gp
    return gp
