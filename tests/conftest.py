"""The one conftest of the suite, which mirrors the package: core/, r2/, r3/, backends/,
frontends/, cli/, contracts/.

The shared helpers live at the top of tests/ (``_helpers``, ``_strategies``,
``_plan_strategies``, ``_r3_fixtures``, ``_paths``, the ``cuda_emulation`` harness); every test
imports them by name, so this directory is put on ``sys.path`` once, here.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = str(Path(__file__).resolve().parent)
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)


def _global_numeric_state() -> dict:
    """Process-wide numeric switches a test may flip: torch's default dtype and JAX's x64
    flag (only for libraries already imported)."""
    state = {}
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_default_dtype"):
        state["torch default dtype"] = torch.get_default_dtype()
    jax = sys.modules.get("jax")
    if jax is not None and hasattr(jax, "config"):
        state["jax_enable_x64"] = bool(jax.config.jax_enable_x64)
    return state


@pytest.fixture(autouse=True, scope="module")
def _module_restores_global_numeric_state():
    """A test file that flips torch's default dtype or JAX's x64 flag for good changes what
    every later file computes (a float64 JAX leaking into a float32 test once failed two
    unrelated files): each module must leave them as it found them."""
    before = _global_numeric_state()
    yield
    after = _global_numeric_state()
    changed = {k: (before[k], after[k]) for k in before if k in after and before[k] != after[k]}
    assert not changed, (f"this test module left process-wide numeric state changed "
                         f"{changed}; use a fixture that restores it (torch.set_default_dtype "
                         f"in a yield fixture, `with jax.enable_x64(True):`)")


@pytest.fixture
def float64():
    """torch's default dtype float64 for one test (restored afterwards): the exact-equivariance
    tests of the torch front end run in double precision."""
    torch = pytest.importorskip("torch", reason="the float64 fixture sets torch's default dtype")
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)
