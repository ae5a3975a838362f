"""The one conftest of the suite, which mirrors the package: core/, r2/, r3/, backends/,
frontends/, cli/, contracts/.

The shared helpers live at the top of tests/ (``_helpers``, ``_strategies``,
``_plan_strategies``, ``_r3_fixtures``, ``_paths``, the ``cuda_emulation`` harness); every test
imports them by name, so this directory is put on ``sys.path`` once, here.
"""
from __future__ import annotations

import sys
from pathlib import Path

TESTS = str(Path(__file__).resolve().parent)
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
