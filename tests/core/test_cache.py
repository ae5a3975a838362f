"""Memory and disk caches of sampled bases."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import cupysteer as cs


def _types(N=4, n=2):
    G = cs.CyclicGroup(N)
    t = cs.FieldType(G, [G.regular_representation] * n)
    return t, t


def test_memory_cache_is_keyed_by_content():
    cache = cs.BasisCache()
    tin, tout = _types()
    a = cs.LayerBasis(tin, tout, 5, cache=cache)
    # equal but separately built field types hit the same entry
    tin2, tout2 = _types()
    b = cs.LayerBasis(tin2, tout2, 5, cache=cache)
    assert b.plan is a.plan
    c = cs.LayerBasis(tin, tout, 5, sigma=0.5, cache=cache)
    assert c.plan is not a.plan


def test_uncached_build_equals_cached():
    tin, tout = _types()
    a = cs.LayerBasis(tin, tout, 5, cache=False)
    b = cs.LayerBasis(tin, tout, 5, cache=cs.BasisCache())
    np.testing.assert_array_equal(a.plan.basis, b.plan.basis)
    np.testing.assert_array_equal(a.plan.weight_index, b.plan.weight_index)


def test_threads_share_one_cache():
    cache = cs.BasisCache()
    G = cs.DihedralGroup(4)

    def build(n):
        t = cs.FieldType(G, [G.regular_representation] * (1 + n % 3))
        b = cs.LayerBasis(t, t, 5, cache=cache)
        return b.expand(np.ones(b.dim))

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(build, range(24)))
    for n, r in enumerate(results):
        np.testing.assert_array_equal(r, results[n % 3])


def test_disk_round_trip(tmp_path):
    tin, tout = _types(8)
    first = cs.BasisCache(tmp_path)
    a = cs.LayerBasis(tin, tout, 5, cache=first)
    files = list(tmp_path.glob("*.npz"))
    assert files and first.misses == len(files)
    assert not list(tmp_path.glob("*.tmp"))
    second = cs.BasisCache(tmp_path)
    b = cs.LayerBasis(tin, tout, 5, cache=second)
    assert second.misses == 0 and second.disk_hits == len(files)
    np.testing.assert_array_equal(a.plan.basis, b.plan.basis)


@pytest.mark.parametrize("damage", ["garbage", "truncate", "foreign"])
def test_corrupt_or_foreign_files_are_rebuilt(tmp_path, damage):
    tin, tout = _types(8)
    a = cs.LayerBasis(tin, tout, 5, cache=cs.BasisCache(tmp_path))
    files = sorted(tmp_path.glob("*.npz"))
    victim = files[0]
    if damage == "garbage":
        victim.write_bytes(b"not an npz file")
    elif damage == "truncate":
        victim.write_bytes(victim.read_bytes()[:100])
    else:  # a valid file with another entry's content under this name
        victim.write_bytes(files[1].read_bytes())
    cache = cs.BasisCache(tmp_path)
    b = cs.LayerBasis(tin, tout, 5, cache=cache)
    assert cache.misses == 1
    np.testing.assert_array_equal(a.plan.basis, b.plan.basis)
    # and the rebuilt file is valid again
    again = cs.BasisCache(tmp_path)
    cs.LayerBasis(tin, tout, 5, cache=again)
    assert again.misses == 0


def test_unwritable_directory_warns_once(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cache = cs.BasisCache(blocker / "sub")  # cannot create a directory below a file
    tin, tout = _types(8)
    with pytest.warns(RuntimeWarning, match="memory only") as record:
        b = cs.LayerBasis(tin, tout, 5, cache=cache)
    assert len([w for w in record if "memory only" in str(w.message)]) == 1
    assert b.dim == 88 * 4


def test_default_cache_follows_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("CUPYSTEER_CACHE_DIR", raising=False)
    assert cs.default_cache().directory is None
    monkeypatch.setenv("CUPYSTEER_CACHE_DIR", str(tmp_path))
    assert cs.default_cache().directory == tmp_path
    assert cs.default_cache() is cs.default_cache()
