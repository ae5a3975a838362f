"""The disk cache against a hostile directory (issue 16): a FIFO or a device at an entry's
path never blocks the reader (only regular files are opened, without blocking); the stored
key and version are compared before any basis array is read; compressed, oversized or foreign
members are refused from the zip headers alone; a directory others may write gives one
warning. Every case is a miss that is rebuilt, with the same basis as without a cache.
"""
from __future__ import annotations

import io
import os
import stat
import threading
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

import cupysteer as cs
from cupysteer import cache as C


def _types():
    G = cs.CyclicGroup(4)
    t = cs.FieldType(G, [G.regular_representation])
    return t, t


def _fill(directory) -> list[Path]:
    cs.LayerBasis(*_types(), 3, cache=cs.BasisCache(directory))
    files = sorted(Path(directory).glob("*.npz"))
    assert files
    return files


def _rebuilt(directory):
    """A fresh cache on ``directory`` builds the reference basis; (misses, disk hits)."""
    c = cs.BasisCache(directory)
    b = cs.LayerBasis(*_types(), 3, cache=c)
    ref = cs.LayerBasis(*_types(), 3, cache=False)
    np.testing.assert_array_equal(b.plan.basis, ref.plan.basis)
    return c.misses, c.disk_hits


def _in_thread(fn, timeout=60):
    """Run ``fn`` in a thread; fail (instead of hanging the suite) if it blocks."""
    out = {}
    th = threading.Thread(target=lambda: out.setdefault("r", fn()), daemon=True)
    th.start()
    th.join(timeout)
    assert not th.is_alive(), "the cache blocked"
    return out["r"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_at_an_entry_path_does_not_block(tmp_path):
    files = _fill(tmp_path)
    files[0].unlink()
    os.mkfifo(files[0])
    misses, hits = _in_thread(lambda: _rebuilt(tmp_path))
    assert misses == 1 and hits == len(files) - 1


def test_symlink_to_a_device_is_not_read(tmp_path):
    files = _fill(tmp_path)
    files[0].unlink()
    os.symlink("/dev/zero", files[0])  # reading it would never end
    misses, _ = _in_thread(lambda: _rebuilt(tmp_path))
    assert misses == 1


def test_directory_at_an_entry_path_is_a_miss(tmp_path):
    files = _fill(tmp_path)
    files[0].unlink()
    files[0].mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the store fails: memory only
        misses, _ = _rebuilt(tmp_path)
    assert misses == 1


def _rewrite(path: Path, compress=zipfile.ZIP_STORED, extra=None, drop=None, replace=None):
    """Rewrite the entry at ``path`` member by member."""
    with zipfile.ZipFile(path) as z:
        members = {i.filename: z.read(i.filename) for i in z.infolist()}
    if drop:
        members.pop(drop)
    if replace:
        members.update(replace)
    if extra:
        members.update(extra)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compress) as z:
        for name, data in members.items():
            z.writestr(name, data)
    path.write_bytes(buf.getvalue())


def _npy(a) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


@pytest.mark.parametrize("attack", ["compressed", "extra member", "missing member",
                                    "huge key", "other key", "other version", "bomb"])
def test_bad_members_are_refused_before_inflating(tmp_path, attack, monkeypatch):
    files = _fill(tmp_path)
    target = files[0]
    if attack == "compressed":
        _rewrite(target, compress=zipfile.ZIP_DEFLATED)
    elif attack == "extra member":
        _rewrite(target, extra={"evil.npy": _npy(np.zeros(3))})
    elif attack == "missing member":
        _rewrite(target, drop="scale.npy")
    elif attack == "huge key":
        _rewrite(target, replace={"key.npy": _npy(np.array("k" * 100_000))})
    elif attack == "other key":
        _rewrite(target, replace={"key.npy": _npy(np.array("not the key"))})
    elif attack == "other version":
        _rewrite(target, replace={"version.npy": _npy(np.array(999))})
    else:  # 50 MB of zeros deflated to ~50 KB under the name of the values
        _rewrite(target, compress=zipfile.ZIP_DEFLATED,
                 replace={"values.npy": _npy(np.zeros(50 << 17))})
    read = []
    real = C._member
    monkeypatch.setattr(C, "_member", lambda z, name: read.append(name) or real(z, name))
    misses, _ = _rebuilt(tmp_path)
    assert misses == 1
    n = len(files)
    assert read.count("values.npy") == n - 1  # the bad entry's basis is never inflated
    if attack in ("other key", "other version"):
        assert read.count("key.npy") == n  # read, compared, refused
    else:  # refused from the zip headers: not one member of it read
        assert read.count("key.npy") == n - 1


def test_key_is_compared_before_any_basis_array(tmp_path, monkeypatch):
    files = _fill(tmp_path)
    _rewrite(files[0], replace={"key.npy": _npy(np.array("another layer"))})
    read = []
    real = C._member
    monkeypatch.setattr(C, "_member", lambda z, name: read.append(name) or real(z, name))
    c = cs.BasisCache(tmp_path)
    cs.LayerBasis(*_types(), 3, cache=c)
    assert c.misses == 1
    # every entry starts with its key; the bad one stops there
    assert read.count("key.npy") == len(files)
    assert read.count("values.npy") == len(files) - 1


def test_oversized_entry_is_refused_from_its_size(tmp_path, monkeypatch):
    files = _fill(tmp_path)
    monkeypatch.setattr(C, "MAX_ENTRY_BYTES", 100)
    misses, _ = _rebuilt(tmp_path)
    assert misses == len(files)


def test_member_sizes_beyond_the_file_are_refused(tmp_path):
    files = _fill(tmp_path)
    data = bytearray(files[0].read_bytes())
    # the central directory's uncompressed size of the first member: claim 4 GiB
    cd = data.rfind(b"PK\x01\x02", 0, len(data))
    first = data.find(b"PK\x01\x02")
    assert cd >= first > 0
    data[first + 24:first + 28] = (0xFFFFFFF0).to_bytes(4, "little")
    files[0].write_bytes(bytes(data))
    misses, _ = _rebuilt(tmp_path)
    assert misses == 1


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o1777])
def test_directory_writable_by_others_warns_once(tmp_path, mode):
    d = tmp_path / "shared"
    d.mkdir()
    os.chmod(d, mode)
    c = cs.BasisCache(d)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        cs.LayerBasis(*_types(), 3, cache=c)
        cs.LayerBasis(*_types(), 5, cache=c)
    msgs = [str(w.message) for w in rec if "writable by other users" in str(w.message)]
    assert len(msgs) == 1 and str(d) in msgs[0] and "chmod go-w" in msgs[0]


def test_private_directory_does_not_warn(tmp_path):
    d = tmp_path / "private"
    d.mkdir()
    os.chmod(d, 0o700)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cs.LayerBasis(*_types(), 3, cache=cs.BasisCache(d))
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
