r"""What field-wise operations (non-linearities, normalisations, pooling, dropout) need to know
about a field type, computed once in NumPy for any group of either space.

A :class:`FieldStructure` describes the channels of a :class:`~cupysteer.FieldType` ``t`` of
group G: field ``f`` occupies channels ``t.channels(f)`` and transforms by
:math:`\rho_f(g) = Q_f\,(\bigoplus_i \psi_i(g))\,Q_f^T` (orthogonal :math:`Q_f` and irreps).

* **Pointwise fields** (regular, quotient, trivial, any permutation representation): ρ_f(g) is a
  permutation matrix of the field's channels for every g, so any elementwise function, a
  maximum or a statistic shared by the field's channels commutes with it. This is *checked
  numerically* (to :data:`PERMUTATION_TOLERANCE`), never read from a name: on every element of
  a finite group, on ``testing_elements()`` plus 16 seeded ``sample``\ s of a continuous one
  (for a continuous group that is a necessary condition; only trivial representations — and
  O(2)'s permutation of the two cosets of SO(2) — pass it).
* **Trivial fields**: ρ_f(g) = I on the same elements (the gates of gated non-linearities, and
  the fields whose mean a batch norm may subtract).
* **Norms** (:attr:`FieldStructure.irrep_blocks`): write :math:`y = Q^T x` (the irreps
  coordinates; Q = ``t.change_of_basis`` is block-diagonal over the fields). Each irrep block
  of y transforms by its own orthogonal ψ_i(g), so **the norm of every irrep block of y is
  invariant**, and so is any sum of squared block norms — in particular the norm of a whole
  field, ‖x_f‖ = ‖y_f‖ (Q_f is orthogonal), which is what e2cnn's norm non-linearities and
  norm pooling use. The norm of a subset of the *channels* x_f (without Qᵀ) is not invariant in
  general. The trivial irreps coordinates are invariant themselves (not only their norm):
  they span the invariant subspace, whose orthonormal basis in channel coordinates is
  :attr:`FieldStructure.invariant_basis` (columns of Q) — the only directions in which an
  equivariant batch norm may subtract a mean or add a bias.
* **Groups of fields**: by representation (equal representations, in order of first
  appearance) and by size (ascending sizes, e2cnn's order of the per-size parameters), each
  with the (n_fields, size) channel index matrix that gathers its fields.

Everything is validated, immutable (read-only arrays) and picklable (it pickles as its field
type and is rebuilt on loading).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import freeze
from .field_type import FieldType
from .representation import Representation

__all__ = ["FieldStructure", "FieldGroup", "PERMUTATION_TOLERANCE", "check_elements"]

#: entries of ρ(g) within this distance of 0 or 1 count as exactly 0 or 1
PERMUTATION_TOLERANCE = 1e-9
#: the representation matrices are evaluated this many entries at a time (bounded memory)
_CHUNK_ENTRIES = 1 << 22


@dataclass(frozen=True, eq=False)
class FieldGroup:
    """Fields grouped together: their ``key`` (a Representation or a size), their indices in
    the field type and the (n_fields, size) matrix of their channels (row i: field
    ``fields[i]``)."""

    key: object
    fields: np.ndarray
    channels: np.ndarray

    @property
    def size(self) -> int:
        return int(self.channels.shape[1])

    @property
    def contiguous(self) -> bool:
        """Whether the fields' channels are one contiguous run (in order)."""
        flat = self.channels.ravel()
        return bool(np.array_equal(flat, np.arange(flat[0], flat[0] + flat.size)))


def check_elements(group) -> list:
    """The elements on which a representation's properties are checked: all elements of a
    finite group; ``testing_elements()`` and 16 elements drawn with a fixed seed for a
    continuous one (a list of batches, each one ``evaluate`` accepts)."""
    if group.is_finite:
        return [group.elements()]
    return [group.testing_elements(), group.sample(16, np.random.default_rng(0))]


def _matrices(rep: Representation):
    """ρ(g) for the check elements of ``rep.group``, in chunks of bounded memory."""
    per_chunk = max(1, _CHUNK_ENTRIES // max(1, rep.size * rep.size))
    for batch in check_elements(rep.group):
        batch = list(batch)
        for i in range(0, len(batch), per_chunk):
            yield rep.evaluate(batch[i:i + per_chunk])


def _is_permutation(M: np.ndarray) -> bool:
    """Whether every (s, s) matrix of the stack M is a permutation matrix."""
    ones = np.abs(M - 1.0) <= PERMUTATION_TOLERANCE
    zeros = np.abs(M) <= PERMUTATION_TOLERANCE
    return bool((ones | zeros).all() and (ones.sum(1) == 1).all() and (ones.sum(2) == 1).all())


def _classify(rep: Representation) -> tuple[bool, bool]:
    """(pointwise, trivial) of a representation, checked on its group's check elements."""
    pointwise = trivial = True
    eye = np.eye(rep.size)
    for M in _matrices(rep):
        pointwise = pointwise and _is_permutation(M)
        trivial = trivial and bool(np.abs(M - eye).max() <= PERMUTATION_TOLERANCE)
        if not pointwise:
            return False, False
    return pointwise, trivial


def _int_array(values, shape=None) -> np.ndarray:
    a = np.asarray(values, dtype=np.int64)
    if shape is not None:
        a = a.reshape(shape)
    freeze(a)
    return a


def _bool_array(values) -> np.ndarray:
    a = np.asarray(values, dtype=bool)
    freeze(a)
    return a


class FieldStructure:
    """The field-wise structure of ``field_type`` (see the module docstring).

    >>> import cupysteer as cs
    >>> G = cs.CyclicGroup(4)
    >>> s = FieldStructure(cs.FieldType(G, [G.regular_representation, G.irrep(1)]))
    >>> s.pointwise.tolist(), s.trivial.tolist(), s.channel_field.tolist()
    ([True, False], [False, False], [0, 0, 0, 0, 1, 1])
    """

    __slots__ = ("field_type", "pointwise", "trivial", "channel_field", "by_representation",
                 "by_size", "change_of_basis", "irrep_blocks", "coordinate_block",
                 "trivial_coordinates", "invariant_basis")

    def __init__(self, field_type: FieldType):
        if not isinstance(field_type, FieldType):
            raise TypeError(f"field_type must be a cupysteer FieldType (native or of "
                            f"cupysteer.compat), got {type(field_type).__name__}")
        set_ = object.__setattr__
        set_(self, "field_type", field_type)
        reps = field_type.representations
        kinds = {r: _classify(r) for r in dict.fromkeys(reps)}
        set_(self, "pointwise", _bool_array([kinds[r][0] for r in reps]))
        set_(self, "trivial", _bool_array([kinds[r][1] for r in reps]))
        set_(self, "channel_field", _int_array(np.repeat(np.arange(len(reps)),
                                                         field_type.field_sizes)))
        set_(self, "by_representation", self._groups(lambda f: reps[f], list(dict.fromkeys(reps))))
        sizes = sorted({r.size for r in reps})
        set_(self, "by_size", self._groups(lambda f: reps[f].size, sizes))
        set_(self, "change_of_basis", field_type.change_of_basis)
        self._irrep_structure()

    def _groups(self, key, keys) -> tuple:
        t = self.field_type
        out = []
        for k in keys:
            fields = [f for f in range(len(t)) if key(f) == k]
            chans = [np.arange(t.field_offsets[f], t.field_offsets[f] + t.field_sizes[f])
                     for f in fields]
            out.append(FieldGroup(k, _int_array(fields), _int_array(np.stack(chans))))
        return tuple(out)

    def _irrep_structure(self) -> None:
        """Irrep blocks of the irreps coordinates y = Qᵀx, and the invariant subspace."""
        rows, coord_block, trivial_coords = [], [], []
        offset = 0
        for f, rep in enumerate(self.field_type.representations):
            for psi in rep.irreps:
                b = len(rows)
                rows.append((f, offset, psi.dim, bool(psi.is_trivial)))
                coord_block += [b] * psi.dim
                if psi.is_trivial:
                    trivial_coords += list(range(offset, offset + psi.dim))
                offset += psi.dim
        set_ = object.__setattr__
        set_(self, "irrep_blocks", np.array(rows, dtype=[("field", np.int64),
                                                         ("offset", np.int64),
                                                         ("size", np.int64),
                                                         ("trivial", bool)]))
        freeze(self.irrep_blocks)
        set_(self, "coordinate_block", _int_array(coord_block))
        set_(self, "trivial_coordinates", _int_array(trivial_coords))
        B = np.ascontiguousarray(self.change_of_basis[:, self.trivial_coordinates])
        freeze(B)
        set_(self, "invariant_basis", B)

    # ---- immutability and pickling --------------------------------------------------------
    def __setattr__(self, key, value):
        raise AttributeError("FieldStructure is immutable")

    def __reduce__(self):
        return (FieldStructure, (self.field_type,))

    def __eq__(self, other):
        if not isinstance(other, FieldStructure):
            return NotImplemented
        return self.field_type == other.field_type

    def __hash__(self):
        return hash(("FieldStructure", self.field_type))

    def __repr__(self):
        return f"FieldStructure({self.field_type!r})"

    # ---- sizes ----------------------------------------------------------------------------
    @property
    def n_fields(self) -> int:
        return len(self.field_type)

    @property
    def size(self) -> int:
        return self.field_type.size

    def channels(self, field: int) -> np.ndarray:
        """The channel indices of field number ``field``."""
        t = self.field_type
        o = int(t.field_offsets[field])
        return np.arange(o, o + int(t.field_sizes[field]))

    @property
    def size_order(self) -> np.ndarray:
        """The fields sorted by size (stable): the order of e2cnn's per-field parameters of
        modules that group fields by size (e.g. NormNonLinearity's ``log_bias``)."""
        return np.concatenate([g.fields for g in self.by_size])

    # ---- checks ---------------------------------------------------------------------------
    def describe(self, field: int) -> str:
        """``field 1 ('irrep_1', channels 4..5)``: a field as error messages name it."""
        c = self.channels(field)
        rep = self.field_type.representations[field]
        return f"field {field} ({rep.name!r}, channels {c[0]}..{c[-1]})"

    def require_pointwise(self, what: str, alternatives: str, fields=None) -> None:
        """Refuse (ValueError naming the first offending field) unless every field of
        ``fields`` (default: all) is pointwise."""
        for f in range(self.n_fields) if fields is None else fields:
            if not self.pointwise[f]:
                raise ValueError(
                    f"{what} needs pointwise fields (ρ(g) a permutation matrix of the field's "
                    f"channels for every g: regular, quotient or trivial representations), but "
                    f"{self.describe(f)} of {self.field_type!r} is not; {alternatives}")

    def require_trivial(self, what: str, fields, hint: str = "") -> None:
        """Refuse unless every field of ``fields`` is trivial (ρ(g) = I) of size 1."""
        for f in fields:
            if not self.trivial[f] or self.field_type.field_sizes[f] != 1:
                raise ValueError(f"{what} must be trivial fields of size 1 (ρ(g) = 1), but "
                                 f"{self.describe(f)} of {self.field_type!r} is not{hint}")
