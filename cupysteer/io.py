"""The ``.npz`` filter-bank format (:data:`NPZ_FORMAT`) that ``cupysteer basis`` writes:
:func:`basis_arrays` (a layer's basis, plan and settings as plain arrays), :func:`save_bank`
and :func:`load_bank`.

Every array is a plain NumPy array (numbers and unicode strings), readable with
``np.load(path, allow_pickle=False)``::

    >>> import cupysteer as cs
    >>> from cupysteer.io import basis_arrays, load_bank, save_bank
    >>> G = cs.CyclicGroup(4)
    >>> t = cs.FieldType(G, [G.regular_representation])
    >>> arrays = basis_arrays(cs.LayerBasis(t, t, kernel_size=3))
    >>> str(arrays["format"]), str(arrays["group"]), int(arrays["dim"])
    ('cupysteer.basis/1', 'C4', 24)

The keys: format, cupysteer_version, group, in_fields, out_fields, kernel_size (k of a
k×…×k grid; -1 for a non-cubic grid or explicit points: see filter_shape), dilation, spacing
(the physical step per filter axis, 1.0 on unit grids; files written before spacing existed
load with unit spacing), dim, filter_shape, num_bias, points (physical), settings_* (rings,
sigma, cutoff_per_ring, maximum_frequency, maximum_offset: -1 = none), in/out_field_names,
in/out_change_of_basis, pair_in_irrep, pair_out_irrep, pair_count, per irreps pair t:
pair<t>_values (n, d_out, d_in, *filter_shape),
pair<t>_radius/_ring/_frequency/_gamma/_s/_offset/_scale; weight_block_*; plan_* (every
ExpansionPlan array); element_* (per weight); he_std. ``cupysteer basis --weights`` adds
weights, filters, bias_expansion and weights_source.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import fields as dc_fields
from pathlib import Path

import numpy as np

from ._version import __version__
from .fields_spec import format_field_type, format_group

__all__ = ["NPZ_FORMAT", "basis_arrays", "save_bank", "load_bank", "atomic_write"]

NPZ_FORMAT = "cupysteer.basis/1"


def _layer_arrays(basis, dilation: int) -> dict:
    """The layer's spelling, sizes, settings, field types and weight blocks."""
    s = basis.settings
    kh = basis.filter_shape
    d = np.asarray(basis.points).shape[1]
    cubic = len(kh) == d and len(set(kh)) == 1
    spacing = np.ones(d) if basis.spacing is None else np.asarray(basis.spacing, np.float64)
    return {
        "format": np.array(NPZ_FORMAT), "cupysteer_version": np.array(__version__),
        "group": np.array(format_group(basis.in_type.group)),
        "in_fields": np.array(format_field_type(basis.in_type)),
        "out_fields": np.array(format_field_type(basis.out_type)),
        "kernel_size": np.array(kh[0] if cubic else -1),
        "dilation": np.array(dilation if basis.dilation is None else basis.dilation),
        "spacing": spacing,
        "dim": np.array(basis.dim), "filter_shape": np.array(kh, np.int64),
        "num_bias": np.array(basis.num_bias), "points": np.asarray(basis.points),
        "settings_rings": np.asarray(s.rings), "settings_sigma": np.asarray(s.sigma),
        "settings_cutoff_per_ring": np.asarray(s.cutoff_per_ring),
        "settings_maximum_frequency": np.array(s.maximum_frequency),
        "settings_maximum_offset": np.array(-1 if s.maximum_offset is None else
                                            s.maximum_offset),
        "in_field_names": np.array([r.name for r in basis.in_type.representations]),
        "out_field_names": np.array([r.name for r in basis.out_type.representations]),
        "in_change_of_basis": np.asarray(basis.in_type.change_of_basis),
        "out_change_of_basis": np.asarray(basis.out_type.change_of_basis),
        "pair_in_irrep": np.array([a.name for a, _ in basis.irreps_pairs]),
        "pair_out_irrep": np.array([b.name for _, b in basis.irreps_pairs]),
        "pair_count": np.array([len(basis.pair_basis(*p)) for p in basis.irreps_pairs],
                               np.int64),
        "weight_block_in": np.array([b[0] for b in basis.weight_blocks]),
        "weight_block_out": np.array([b[1] for b in basis.weight_blocks]),
        "weight_block_range": np.array([b[2:] for b in basis.weight_blocks], np.int64)
        .reshape(-1, 5),
        "he_std": basis.he_std(),
    }


def _pair_arrays(basis) -> dict:
    """pair<t>_values and the attributes of every element of irreps pair t."""
    out = {}
    rings = np.asarray(basis.settings.rings)
    for t, p in enumerate(basis.irreps_pairs):
        pb = basis.pair_basis(*p)
        out[f"pair{t}_values"] = np.asarray(pb.values).reshape(pb.values.shape[:3]
                                                               + basis.filter_shape)
        out[f"pair{t}_radius"] = rings[np.asarray(pb.ring)]
        for key in ("ring", "frequency", "gamma", "s", "offset", "scale"):
            out[f"pair{t}_{key}"] = np.asarray(getattr(pb, key))
    return out


def _plan_arrays(basis) -> dict:
    """plan_<field> of every ExpansionPlan array and element_<key> of every weight."""
    out = {f"plan_{f.name}": np.asarray(getattr(basis.plan, f.name))
           for f in dc_fields(basis.plan)}
    for key, v in basis.element_attributes.items():
        out[f"element_{key}"] = np.asarray(v.astype(str) if v.dtype == object else v)
    return out


def basis_arrays(basis, dilation: int = 1) -> dict:
    """Every array written by ``cupysteer basis`` except the weights and filters: plain
    NumPy arrays (numbers and unicode strings), loadable with ``allow_pickle=False``."""
    return {**_layer_arrays(basis, dilation), **_pair_arrays(basis), **_plan_arrays(basis)}


def atomic_write(path, write) -> Path:
    """Call ``write(binary file)`` on a temporary file next to ``path`` and rename it to
    exactly ``path`` (``os.replace``: atomic; an existing file is only replaced by a complete
    one, a failed write leaves it untouched). OSError when it cannot be written."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".",
                               prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _mode_of(path))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _mode_of(path: Path) -> int:
    """The permission bits of the file being replaced; for a new one what ``open()`` would
    give (0o666 less the process umask)."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask: from /proc/self/status where it is listed (no change to the
    process-wide value), else by setting and restoring it."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save_bank(path, arrays: dict) -> None:
    """Write ``arrays`` (e.g. :func:`basis_arrays` plus weights and filters) to exactly the
    file ``path`` (no ``.npz`` is appended), uncompressed as ``np.savez``, atomically
    (:func:`atomic_write`); OSError when it cannot be written."""
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_bank(path) -> dict:
    """The arrays of a .npz written by :func:`save_bank` / ``cupysteer basis``, as a dict
    (``allow_pickle=False``); ValueError when the file is no cupysteer bank. Banks written
    before anisotropic grids get ``spacing`` ones (their grids had unit steps)."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    fmt = str(arrays.get("format", ""))
    if not fmt.startswith(NPZ_FORMAT.split("/")[0] + "/"):
        raise ValueError(f"{path} is no cupysteer filter bank (format {fmt!r}, expected "
                         f"{NPZ_FORMAT!r})")
    if "spacing" not in arrays and np.ndim(arrays.get("points")) == 2:  # written before it
        arrays["spacing"] = np.ones(np.shape(arrays["points"])[1])
    return arrays
