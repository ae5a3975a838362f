"""Packaging check: build the wheel from the repository and inspect it.

Runs in CI on every machine (not marked slow, never skipped): it needs only
setuptools and wheel, which come with the ``test`` extra.
"""
from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import zipfile
from email.parser import Parser

import pytest

from _paths import REPO  # noqa: E402

EXTRAS = ("cuda12", "cuda13", "torch", "jax", "test", "plot")
KERNEL_SUFFIXES = (".cu", ".cuh", ".h")


def _require_build_tools() -> None:
    problems = []
    for dist, minimum in (("setuptools", 68), ("wheel", None)):
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"{dist} is not installed")
            continue
        if minimum is not None and int(version.split(".")[0]) < minimum:
            problems.append(f"{dist} {version} is older than {minimum}")
    if problems:
        pytest.fail(
            "cannot build the wheel without build isolation: "
            + "; ".join(problems)
            + f" in {sys.executable}. Install the test extra: "
            'python3 -m pip install -e ".[test]"',
            pytrace=False,
        )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    _require_build_tools()
    tmp = tmp_path_factory.mktemp("wheel")
    # Keep setuptools' build/ and *.egg-info out of the repository, so that a
    # stale build/lib cannot smuggle files into the wheel (or hide missing ones).
    extra_cfg = tmp / "extra.cfg"
    extra_cfg.write_text(
        f"[build]\nbuild_base = {tmp / 'build'}\n[egg_info]\negg_base = {tmp}\n"
    )
    out = tmp / "dist"
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps",
           "--no-build-isolation", "--disable-pip-version-check",
           "-w", str(out), str(REPO)]
    env = dict(os.environ, DIST_EXTRA_CONFIG=str(extra_cfg), PIP_NO_INPUT="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                          timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"wheel build failed ({' '.join(cmd)}):\n"
                    f"{proc.stdout}\n{proc.stderr}", pytrace=False)
    wheels = sorted(out.glob("cupysteer-*.whl"))
    assert len(wheels) == 1, f"expected one cupysteer wheel, got {wheels}"
    with zipfile.ZipFile(wheels[0]) as zf:
        yield zf


def _metadata(zf: zipfile.ZipFile):
    [name] = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
    return Parser().parsestr(zf.read(name).decode("utf-8"))


def test_wheel_ships_package_and_kernels(wheel):
    names = set(wheel.namelist())
    for required in ("cupysteer/__init__.py",
                     "cupysteer/kernels/__init__.py",
                     "cupysteer/kernels/common.cuh"):
        assert required in names, f"{required} missing from wheel"
    # Every CUDA source in kernels/ ships, and every subpackage of cupysteer/.
    for src in sorted((REPO / "kernels").iterdir()):
        if src.suffix in KERNEL_SUFFIXES:
            assert f"cupysteer/kernels/{src.name}" in names, src.name
    for init in sorted((REPO / "cupysteer").rglob("__init__.py")):
        rel = init.relative_to(REPO).as_posix()
        assert rel in names, f"subpackage {rel} missing from wheel"


def test_wheel_has_no_tests_or_stray_top_levels(wheel):
    tops = {n.split("/", 1)[0] for n in wheel.namelist()}
    assert all(t == "cupysteer" or t.endswith((".dist-info", ".data"))
               for t in tops), sorted(tops)
    assert not any(n.startswith("tests/") or "/tests/" in n
                   for n in wheel.namelist())


def test_wheel_metadata(wheel):
    meta = _metadata(wheel)
    assert meta["Name"] == "cupysteer"
    requires = meta.get_all("Requires-Dist") or []
    base = [r for r in requires if "extra ==" not in r]
    assert any(r.startswith("numpy") for r in base), requires
    assert any(r.startswith("scipy") for r in base), requires
    extras = set(meta.get_all("Provides-Extra") or [])
    missing = set(EXTRAS) - extras
    assert not missing, f"extras missing from METADATA: {sorted(missing)}"
