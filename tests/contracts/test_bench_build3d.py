"""benchmarks/bench_build3d.py without escnn: the module imports on the project's python, its
config table matches escnn's weight counts (reference steerable-bases-3d.md §5), the arguments
parse, and (once cupysteer.compat.escnn exists) the cupysteer side builds a small config with
escnn's weight count. No escnn process is started and no timing is asserted."""
from __future__ import annotations

import importlib.util

import pytest

from _paths import REPO  # noqa: E402

BENCH = REPO / "benchmarks" / "bench_build3d.py"

# weights with the R3Conv defaults (steerable-bases-3d.md §5 / §9)
EXPECTED_WEIGHTS = {
    "octa_regular_k3": 240, "octa_regular_k5": 456, "octa_regularx4_k5": 7296,
    "fullocta_regular_k3": 480, "ico_regular_k3": 600, "ico_regular_k5": 1140,
    "so3_irreps012_k5": 33, "so3_irreps0123_k7": 86, "o3_irreps_all2_k3": 36,
    "c4z_regular_k5": 76,
}


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_build3d", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_config_table(bench):
    assert set(bench.CONFIGS) == set(EXPECTED_WEIGHTS)
    assert set(bench.DESCRIPTION) == set(bench.CONFIGS)
    for name, spec in bench.CONFIGS.items():
        assert spec["weights"] == EXPECTED_WEIGHTS[name], name
        assert spec["group"] in ("so3", "o3", "octa", "fullocta", "ico", "fullico", "c4z")
        assert spec["kernel_size"] in (3, 5, 7) and str(spec["kernel_size"]) in name
        assert spec["mult"] >= 1
        f = spec["fields"]
        assert f == "regular" or (isinstance(f, list) and all(isinstance(i, list) for i in f))
    # the field sizes of the irreps configs (C_in in the reference table)
    so3 = bench.CONFIGS["so3_irreps0123_k7"]["fields"]
    assert sum(2 * l + 1 for (l,) in so3) == 16
    o3 = bench.CONFIGS["o3_irreps_all2_k3"]["fields"]
    assert sorted(map(tuple, o3)) == [(j, l) for j in range(2) for l in range(3)]
    assert sum(2 * l + 1 for _, l in o3) == 18


def test_argument_parsing(bench):
    a = bench.parse_args([])
    assert a.config_names == list(bench.CONFIGS)
    assert a.repeat == 5 and not a.no_escnn and a.json is None
    a = bench.parse_args(["--configs", "c4z_regular_k5,so3_irreps012_k5", "--repeat", "2",
                          "--no-escnn", "--json", "x.json", "--cold-runs", "1"])
    assert a.config_names == ["c4z_regular_k5", "so3_irreps012_k5"]
    assert (a.repeat, a.no_escnn, a.json, a.cold_runs) == (2, True, "x.json", 1)
    for bad in (["--configs", "nope_k3"], ["--repeat", "-1"], ["--cold-runs", "0"],
                ["--no-escnn", "--no-cupysteer"]):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)


def test_table_without_measurements(bench):
    """The report code copes with a skipped side (no numbers: dashes, no ratio)."""
    r = {"name": "c4z_regular_k5", "cupysteer": {"error": "x"}, "escnn": None}
    row = bench.summarize(r)
    assert row["r_cold"] is None and row["r_bytes"] is None
    assert "c4z_regular_k5" in bench.make_table([r])
    assert bench.make_escnn_table([r]) == ""


def test_cupysteer_side_small_config(bench):
    ce, reason = bench.cupysteer_api()
    if ce is None:
        pytest.skip(f"3D compatibility API not there yet: {reason}")
    import numpy as np
    spec = bench.CONFIGS["so3_irreps012_k5"]
    _, _, B = bench.cupysteer_build(ce, spec)
    assert B.dim == spec["weights"]
    f = B.expand(np.zeros(B.dim, np.float32))
    assert np.shape(f) == (9, 9, 5, 5, 5)
    assert B.stored_bytes > 0 and B.padded_bytes > 0
