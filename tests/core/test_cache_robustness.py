"""The disk cache under failure: killed writers, stray temporary files, read-only or
unwritable directories, concurrent writers (threads and processes), and hostile files.
(tests/core/test_cache.py covers the round trip, corrupt/truncated/foreign files, a directory
below a file and threads sharing one memory cache.)

CI runs as root, where ``chmod`` does not stop writes: a read-only directory is emulated by
making ``os.replace`` or ``tempfile.mkstemp`` raise PermissionError; the real ``chmod``
variant runs only for other users (skipped, with the reason, as root).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import cupysteer as cs
from cupysteer import cache as C

from _paths import REPO  # noqa: E402

ROOT = REPO


def _types(N=8, n=2):
    G = cs.CyclicGroup(N)
    t = cs.FieldType(G, [G.regular_representation] * n)
    return t, t


def _reference():
    tin, tout = _types()
    return cs.LayerBasis(tin, tout, 5, cache=False)


def _build(cache):
    tin, tout = _types()
    return cs.LayerBasis(tin, tout, 5, cache=cache)


def _same(a, b):
    np.testing.assert_array_equal(a.plan.basis, b.plan.basis)
    np.testing.assert_array_equal(a.plan.weight_index, b.plan.weight_index)


def _all_valid(directory) -> int:
    """Every .npz in ``directory`` loads as a disk hit; returns their number."""
    files = sorted(Path(directory).glob("*.npz"))
    again = cs.BasisCache(directory)
    _same(_build(again), _reference())
    assert again.misses == 0 and again.disk_hits == len(files) > 0
    return len(files)


def _cache_warnings(record):
    return [w for w in record if issubclass(w.category, RuntimeWarning)
            and "basis cache" in str(w.message)]


# ---- killed writers ----------------------------------------------------------------------------

WRITER = textwrap.dedent("""
    import os, sys
    import numpy as np
    import cupysteer as cs
    directory, mode = sys.argv[1], sys.argv[2]
    if mode == "before-rename":      # the whole file written, killed before os.replace
        os.replace = lambda *a, **k: os._exit(9)
    else:                            # killed in the middle of np.savez
        def savez(f, **arrays):
            f.write(b"PK\\x03\\x04" + b"\\0" * 64)
            f.flush()
            os._exit(9)
        np.savez = savez
    G = cs.CyclicGroup(8)
    t = cs.FieldType(G, [G.regular_representation] * 2)
    cs.LayerBasis(t, t, 5, cache=cs.BasisCache(directory))
    sys.exit(0)  # not reached
""")


@pytest.mark.parametrize("mode", ["before-rename", "mid-write"])
def test_writer_killed_mid_write(tmp_path, mode):
    """A process killed while writing leaves at most a *.tmp file, never a partial .npz; the
    next process ignores the stray file, rebuilds and writes valid entries."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", WRITER, str(tmp_path), mode], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 9, r.stderr[-2000:]
    stray = list(tmp_path.glob("*.tmp"))
    assert len(stray) == 1 and not list(tmp_path.glob("*.npz"))
    cache = cs.BasisCache(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning: nothing is wrong with the directory
        _same(_build(cache), _reference())
    assert cache.disk_hits == 0 and cache.misses > 0
    n = _all_valid(tmp_path)
    assert n == cache.misses
    assert set(tmp_path.glob("*.tmp")) == set(stray)  # left alone, never read as an entry


def test_stray_temporary_files_are_ignored(tmp_path):
    """*.tmp files of dead writers, including one holding a complete valid entry and one named
    like an entry, neither break nor feed the cache."""
    first = cs.BasisCache(tmp_path)
    _build(first)
    entries = sorted(tmp_path.glob("*.npz"))
    (tmp_path / "pair-v1-deadbeef.npz.tmp").write_bytes(entries[0].read_bytes())
    (tmp_path / "tmpabc123.tmp").write_bytes(b"\0" * 1000)
    entries[0].unlink()
    cache = cs.BasisCache(tmp_path)
    _same(_build(cache), _reference())
    assert cache.misses == 1 and cache.disk_hits == len(entries) - 1
    assert _all_valid(tmp_path) == len(entries)


# ---- read-only or unwritable directories ------------------------------------------------------

def _deny(*args, **kwargs):
    raise PermissionError(13, "Permission denied (emulated read-only directory)")


@pytest.mark.parametrize("where", ["replace", "mkstemp"])
def test_read_only_directory_falls_back_to_memory_with_one_warning(tmp_path, monkeypatch,
                                                                   where):
    monkeypatch.setattr(C.os if where == "replace" else C.tempfile,
                        "replace" if where == "replace" else "mkstemp", _deny)
    cache = cs.BasisCache(tmp_path)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        a = _build(cache)
        G = cs.DihedralGroup(4)  # more misses, more failed writes
        t = cs.FieldType(G, [G.regular_representation])
        cs.LayerBasis(t, t, 5, cache=cache)
    msgs = _cache_warnings(record)
    assert len(msgs) == 1, [str(m.message) for m in record]
    assert "Permission denied" in str(msgs[0].message) and "memory only" in str(msgs[0].message)
    assert cache.misses > 3
    _same(a, _reference())
    assert not list(tmp_path.iterdir())  # no .npz, and no .tmp left behind
    # the memory side still works: the same layer again is a hit, silently
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = _build(cache)
    assert b.plan is a.plan


def test_read_only_directory_with_valid_entries_is_read(tmp_path, monkeypatch):
    _build(cs.BasisCache(tmp_path))
    n = len(list(tmp_path.glob("*.npz")))
    monkeypatch.setattr(C.tempfile, "mkstemp", _deny)
    cache = cs.BasisCache(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to write: no warning
        _same(_build(cache), _reference())
    assert cache.disk_hits == n and cache.misses == 0


def test_entry_path_taken_by_a_directory(tmp_path):
    """A directory where an entry should be: not loadable (rebuilt), not replaceable (one
    warning), results unchanged."""
    first = cs.BasisCache(tmp_path)
    _build(first)
    entries = sorted(tmp_path.glob("*.npz"))
    entries[0].unlink()
    entries[0].mkdir()
    cache = cs.BasisCache(tmp_path)
    with pytest.warns(RuntimeWarning, match="memory only") as record:
        _same(_build(cache), _reference())
    assert len(_cache_warnings(record)) == 1 and cache.misses == 1
    assert not list(tmp_path.glob("*.tmp"))


def test_default_cache_in_unwritable_place_warns_once(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("CUPYSTEER_CACHE_DIR", str(blocker / "cache"))
    monkeypatch.setattr(C, "_DEFAULT", {})
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        a = _build(None)  # cache=None: the process-wide default cache
        G = cs.CyclicGroup(6)
        t = cs.FieldType(G, [G.regular_representation])
        cs.LayerBasis(t, t, 3)
    assert len(_cache_warnings(record)) == 1
    _same(a, _reference())


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="running as root: chmod does not stop root from writing (the "
                           "read-only case is emulated by the PermissionError tests above)")
def test_real_read_only_directory(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    try:
        cache = cs.BasisCache(d)
        with pytest.warns(RuntimeWarning, match="memory only") as record:
            _same(_build(cache), _reference())
        assert len(_cache_warnings(record)) == 1
    finally:
        d.chmod(0o700)


# ---- concurrent writers ------------------------------------------------------------------------

def test_threads_writing_one_directory(tmp_path):
    """8 threads, each with its own BasisCache on one directory (like separate processes),
    build overlapping layers at once: same results, valid files, no temporary left."""
    G = cs.DihedralGroup(4)

    def work(i):
        t = cs.FieldType(G, [G.regular_representation] * (1 + i % 2))
        b = cs.LayerBasis(t, t, 5, cache=cs.BasisCache(tmp_path))
        return b.expand(np.ones(b.dim))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with ThreadPoolExecutor(8) as pool:
            out = list(pool.map(work, range(16)))
    for i, K in enumerate(out):
        np.testing.assert_array_equal(K, out[i % 2])
    assert not list(tmp_path.glob("*.tmp"))
    cache = cs.BasisCache(tmp_path)
    t = cs.FieldType(G, [G.regular_representation])
    cs.LayerBasis(t, t, 5, cache=cache)
    assert cache.misses == 0 and cache.disk_hits > 0


def test_processes_writing_one_directory(tmp_path):
    code = textwrap.dedent("""
        import sys, hashlib
        import cupysteer as cs
        G = cs.CyclicGroup(8)
        t = cs.FieldType(G, [G.regular_representation] * 2)
        b = cs.LayerBasis(t, t, 5, cache=cs.BasisCache(sys.argv[1]))
        print(hashlib.sha256(b.plan.basis.tobytes()).hexdigest())
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               PYTHONWARNINGS="error::RuntimeWarning")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    import hashlib
    ref = hashlib.sha256(_reference().plan.basis.tobytes()).hexdigest()
    assert {o[0].strip() for o in outs} == {ref}
    assert not list(tmp_path.glob("*.tmp"))
    _all_valid(tmp_path)


# ---- hostile or stale files ----------------------------------------------------------------------

class _Boom:
    """Unpickling this would create the marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _rewrite(path: Path, **changes):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(changes)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize("attack", ["pickle", "checksum", "version", "points", "nan"])
def test_hostile_or_stale_entries_are_rebuilt_never_executed(tmp_path, attack):
    _build(cs.BasisCache(tmp_path))
    victim = sorted(tmp_path.glob("*.npz"))[0]
    marker = tmp_path / "pwned"
    with np.load(victim, allow_pickle=False) as z:
        values = z["values"].copy()
    if attack == "pickle":  # an object array: loading it would unpickle
        obj = np.empty(1, object)
        obj[0] = _Boom(marker)
        _rewrite(victim, values=obj)
    elif attack == "checksum":  # same key, values changed: the checksum no longer matches
        _rewrite(victim, values=values * 1.0001)
    elif attack == "version":
        _rewrite(victim, version=np.array(C.CACHE_VERSION + 1))
    elif attack == "points":  # checksum recomputed, but the wrong number of points
        bad = {k: values[..., :-1] if k == "values" else None for k in ("values",)}
        with np.load(victim, allow_pickle=False) as z:
            arrays = {k: z[k] for k in C._FIELDS}
        arrays.update(bad)
        _rewrite(victim, values=bad["values"], checksum=np.array(C._checksum(arrays)))
    else:  # checksum recomputed over NaN values
        with np.load(victim, allow_pickle=False) as z:
            arrays = {k: z[k] for k in C._FIELDS}
        arrays["values"] = np.full_like(values, np.nan)
        _rewrite(victim, values=arrays["values"], checksum=np.array(C._checksum(arrays)))
    cache = cs.BasisCache(tmp_path)
    _same(_build(cache), _reference())
    assert cache.misses == 1
    assert not marker.exists()
    _all_valid(tmp_path)  # the entry was rewritten correctly
