"""Caches of sampled irreps-pair bases and of whole layer bases.

* Memory: keyed by content (group, irreps, resolved settings, sample points), thread-safe.
* Disk (optional): one ``.npz`` per irreps-pair basis under a directory, written to a
  temporary file and renamed (atomic), versioned, and verified on load: the file must hold
  plain arrays (``allow_pickle=False``), its stored key must equal the expected key and its
  SHA-256 checksum must match. Anything else is treated as a miss and rebuilt.

The process-wide :func:`default_cache` keeps memory only, unless the environment variable
``CUPYSTEER_CACHE_DIR`` names a directory (``CUPYSTEER_CACHE_DIR=default`` means
``$XDG_CACHE_HOME/cupysteer`` or ``~/.cache/cupysteer``).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np

from .pair_basis import PairBasis

__all__ = ["BasisCache", "default_cache", "CACHE_VERSION", "pair_key", "points_digest"]

CACHE_VERSION = 1
_FIELDS = ("values", "ring", "frequency", "gamma", "s", "offset", "scale")


def points_digest(points: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(points, np.float64).tobytes()).hexdigest()


def pair_key(in_irrep, out_irrep, settings, points) -> str:
    """The content key of one sampled irreps-pair basis (a plain string)."""
    return (f"v{CACHE_VERSION}|{in_irrep.group.cache_id}|{in_irrep.id}|{out_irrep.id}|{settings!r}|"
            f"{points_digest(points)}")


def _checksum(arrays: dict) -> str:
    h = hashlib.sha256()
    for k in _FIELDS:
        a = np.ascontiguousarray(arrays[k])
        h.update(k.encode() + str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
    return h.hexdigest()


def _default_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cupysteer"


class BasisCache:
    """Memory (and optionally disk) cache of sampled irreps-pair bases and layer bases.

    Parameters
    ----------
    directory : str or Path, optional
        Where to keep ``.npz`` files; ``None`` keeps everything in memory.
    """

    def __init__(self, directory: str | os.PathLike | None = None):
        self.directory = None if directory is None else Path(directory)
        self._pairs: dict = {}
        self._layers: dict = {}
        self._lock = threading.RLock()
        self._warned = False
        self.hits = self.misses = self.disk_hits = 0

    def __getstate__(self):
        return {"directory": self.directory}

    def __setstate__(self, state):
        self.__init__(state["directory"])

    def clear(self):
        with self._lock:
            self._pairs.clear()
            self._layers.clear()

    # ---- irreps-pair bases ---------------------------------------------------------------
    def pair_basis(self, in_irrep, out_irrep, settings, points) -> PairBasis:
        """The sampled basis of one irreps pair: from memory, else from disk, else sampled
        (and stored)."""
        return self.pair_bases([(in_irrep, out_irrep)], settings, points)[0]

    def pair_bases(self, pairs, settings, points) -> list:
        """:meth:`pair_basis` for several pairs; the misses are sampled together
        (by the group's space, ``space.sample_pair_bases``: one buffer for groups on R³)."""
        keys = [pair_key(a, b, settings, points) for a, b in pairs]
        out = [None] * len(pairs)
        missing = []
        for i, ((a, b), key) in enumerate(zip(pairs, keys)):
            with self._lock:
                hit = self._pairs.get(key)
            if hit is not None:
                self.hits += 1
                out[i] = hit
                continue
            pb = self._load(key, a, b, len(points))
            if pb is None:
                missing.append(i)
            else:
                self.disk_hits += 1
                with self._lock:
                    out[i] = self._pairs.setdefault(key, pb)
        todo = [pairs[i] for i in missing]
        sampled = todo[0][0].group.space.sample_pair_bases(todo, settings, points) if todo else []
        for i, pb in zip(missing, sampled):
            self.misses += 1
            self._store(keys[i], pb)
            with self._lock:
                out[i] = self._pairs.setdefault(keys[i], pb)
        return out

    def _path(self, key: str) -> Path:
        digest = hashlib.sha256(key.encode()).hexdigest()[:40]
        return self.directory / f"pair-v{CACHE_VERSION}-{digest}.npz"

    def _load(self, key, in_irrep, out_irrep, num_points=None) -> PairBasis | None:
        if self.directory is None:
            return None
        path = self._path(key)
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in _FIELDS}
                ok = (str(z["key"]) == key and int(z["version"]) == CACHE_VERSION
                      and str(z["checksum"]) == _checksum(arrays)
                      and arrays["values"].ndim == 4 and arrays["values"].dtype == np.float64
                      and arrays["values"].shape[1:3] == (out_irrep.dim, in_irrep.dim)
                      and (num_points is None or arrays["values"].shape[3] == num_points)
                      and bool(np.isfinite(arrays["values"]).all())
                      and all(len(arrays[k]) == len(arrays["values"]) for k in _FIELDS))
        except FileNotFoundError:
            return None
        except Exception:  # corrupt, truncated or foreign file: rebuild it
            return None
        if not ok:
            return None
        for a in arrays.values():
            a.setflags(write=False)
        return PairBasis(in_irrep, out_irrep, **arrays)

    def _store(self, key, pb: PairBasis) -> None:
        if self.directory is None:
            return
        arrays = {k: np.asarray(getattr(pb, k)) for k in _FIELDS}
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    np.savez(f, key=np.array(key), version=np.array(CACHE_VERSION),
                             checksum=np.array(_checksum(arrays)), **arrays)
                os.replace(tmp, self._path(key))
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            if not self._warned:
                self._warned = True
                warnings.warn(f"cupysteer: cannot write the basis cache in {self.directory} "
                              f"({exc}); caching in memory only", RuntimeWarning, stacklevel=3)

    # ---- layer bases ------------------------------------------------------------------
    def layer_state(self, key):
        with self._lock:
            return self._layers.get(key)

    def store_layer_state(self, key, state):
        with self._lock:
            return self._layers.setdefault(key, state)


_DEFAULT: dict = {}
_DEFAULT_LOCK = threading.Lock()


def default_cache() -> BasisCache:
    """The process-wide cache (memory; disk too if ``CUPYSTEER_CACHE_DIR`` is set)."""
    env = os.environ.get("CUPYSTEER_CACHE_DIR")
    directory = None if not env else (_default_dir() if env == "default" else Path(env))
    with _DEFAULT_LOCK:
        if directory not in _DEFAULT:
            _DEFAULT[directory] = BasisCache(directory)
        return _DEFAULT[directory]
