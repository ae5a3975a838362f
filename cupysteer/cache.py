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
import stat
import tempfile
import threading
import warnings
import zipfile
from pathlib import Path

import numpy as np

from ._memory import check_host
from .pair_basis import PairBasis

__all__ = ["BasisCache", "default_cache", "CACHE_VERSION", "pair_key", "pair_keys", "points_digest"]

CACHE_VERSION = 1
_FIELDS = ("values", "ring", "frequency", "gamma", "s", "offset", "scale")


def points_digest(points: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(points, np.float64).tobytes()).hexdigest()


def pair_key(in_irrep, out_irrep, settings, points) -> str:
    """The content key of one sampled irreps-pair basis (a plain string). The points' SHA-256
    covers the kernel sizes, dilation and per-axis spacing of a grid (its physical points):
    unit spacing gives the keys of the k×…×k grid, any other spacing other keys."""
    return pair_keys([(in_irrep, out_irrep)], settings, points)[0]


def pair_keys(pairs, settings, points) -> list:
    """:func:`pair_key` of several pairs; the settings and the points digest are formatted
    once (the same strings)."""
    tail = f"|{settings!r}|{points_digest(points)}"
    ids: dict = {}  # id(object) → its cache_id / id, formatted once per group and irrep

    def name(x, attr):
        s = ids.get(id(x))
        if s is None:
            s = ids[id(x)] = str(getattr(x, attr))
        return s
    return [f"v{CACHE_VERSION}|{name(a.group, 'cache_id')}|{name(a, 'id')}|{name(b, 'id')}{tail}"
            for a, b in pairs]


def _checksum(arrays: dict) -> str:
    h = hashlib.sha256()
    for k in _FIELDS:
        a = np.ascontiguousarray(arrays[k])
        h.update(k.encode() + str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
    return h.hexdigest()


#: the members of an entry, each an uncompressed .npy
_MEMBERS = frozenset(f"{k}.npy" for k in ("key", "version", "checksum") + _FIELDS)
#: largest entry read (bytes); bigger files are not cupysteer's and are ignored (rebuilt)
MAX_ENTRY_BYTES = 1 << 32
#: largest key / version / checksum member: plain strings and a scalar
_SMALL_MEMBER = 1 << 16


def _open_regular(path) -> int:
    """A read-only descriptor of ``path`` if it is a regular file, opened without blocking
    (a FIFO or device at an entry's path must not hang the reader); OSError otherwise."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path} is not a regular file")
        if st.st_size > MAX_ENTRY_BYTES:
            raise OSError(f"{path} is larger than any cache entry ({st.st_size} bytes)")
        check_host(st.st_size, lambda: f"reading the cache entry {path}",
                   "clear the cache directory")
        return fd
    except BaseException:
        os.close(fd)
        raise


def _member(zf: zipfile.ZipFile, name: str) -> np.ndarray:
    with zf.open(name) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def _read_entry(path, key: str) -> dict | None:
    """The arrays of the entry at ``path`` if it is a regular, uncompressed .npz of exactly
    the expected members whose stored key and version match (compared before any basis array
    is read) and whose checksum matches; None otherwise."""
    fd = _open_regular(path)
    with os.fdopen(fd, "rb") as f, zipfile.ZipFile(f) as zf:
        infos = zf.infolist()
        size = os.fstat(f.fileno()).st_size
        if ({i.filename for i in infos} != _MEMBERS or len(infos) != len(_MEMBERS)
                or any(i.compress_type != zipfile.ZIP_STORED or i.file_size != i.compress_size
                       for i in infos)
                or sum(i.file_size for i in infos) > size):
            return None  # compressed, oversized or foreign members: decided from the headers
        if any(zf.getinfo(f"{k}.npy").file_size > _SMALL_MEMBER
               for k in ("key", "version", "checksum")):
            return None
        if str(_member(zf, "key.npy")) != key or int(_member(zf, "version.npy")) != CACHE_VERSION:
            return None
        arrays = {k: _member(zf, f"{k}.npy") for k in _FIELDS}
        if str(_member(zf, "checksum.npy")) != _checksum(arrays):
            return None
    return arrays


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
        self._mode_checked = False
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
        keys = pair_keys(pairs, settings, points)
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
        self._check_directory_mode()
        try:
            arrays = _read_entry(self._path(key), key)
        except Exception:  # missing, corrupt, truncated, foreign, hostile: rebuild it
            return None
        if arrays is None:
            return None
        v = arrays["values"]
        ok = (v.ndim == 4 and v.dtype == np.float64
              and v.shape[1:3] == (out_irrep.dim, in_irrep.dim)
              and (num_points is None or v.shape[3] == num_points)
              and all(arrays[k].ndim == 1 and len(arrays[k]) == len(v) for k in _FIELDS[1:])
              and bool(np.isfinite(v).all()))
        if not ok:
            return None
        for a in arrays.values():
            a.setflags(write=False)
        return PairBasis(in_irrep, out_irrep, **arrays)

    def _check_directory_mode(self) -> None:
        """Warn once when others may write the cache directory (they could change the bases
        this process gets)."""
        if self._mode_checked:
            return
        self._mode_checked = True
        try:
            st = os.stat(self.directory)
        except OSError:
            return
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            warnings.warn(f"cupysteer: the basis cache directory {self.directory} is writable "
                          f"by other users (mode {stat.filemode(st.st_mode)}): whoever can write "
                          f"it can change the bases this process loads; use a private "
                          f"directory (chmod go-w, or CUPYSTEER_CACHE_DIR=default)",
                          RuntimeWarning, stacklevel=4)

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
