"""Nothing in the suite is skipped without a printed reason.

Statically: every ``pytest.skip`` / ``pytest.xfail`` call passes a non-empty reason, every
``pytest.mark.skip`` / ``skipif`` / ``xfail`` mark has ``reason=``, no bare ``@pytest.mark.skip``
(``pytest.importorskip`` always says which module is missing). And pytest is configured to
print them: ``-ra`` (or ``-rs``) in the project's ``addopts``.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

from _paths import REPO  # noqa: E402

ROOT = REPO  # the repository root
SOURCES = sorted(p for p in (ROOT / "tests").rglob("*.py"))


def _dotted(node) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _has_reason(call: ast.Call, positional_ok: bool) -> bool:
    args = list(call.args) if positional_ok else []
    args += [k.value for k in call.keywords if k.arg in ("reason", "msg")]
    for a in args:
        if isinstance(a, ast.Constant) and isinstance(a.value, str):
            if a.value.strip():
                return True
        elif not (isinstance(a, ast.Constant) and a.value is None):
            return True  # an expression (f-string, variable): assumed to be a message
    return False


def violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    out = []
    decorators = {id(d) for n in ast.walk(tree)
                  if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                  for d in n.decorator_list}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name in ("pytest.skip", "pytest.xfail") and not _has_reason(node, True):
                out.append(f"{path.name}:{node.lineno}: {name}() without a reason")
            if name in ("pytest.mark.skip", "pytest.mark.xfail") and not _has_reason(node, True):
                out.append(f"{path.name}:{node.lineno}: {name}() without reason=")
            if name == "pytest.mark.skipif" and not _has_reason(node, False):
                out.append(f"{path.name}:{node.lineno}: pytest.mark.skipif without reason=")
        elif isinstance(node, ast.Attribute) and id(node) in decorators \
                and _dotted(node) in ("pytest.mark.skip", "pytest.mark.xfail"):
            out.append(f"{path.name}:{node.lineno}: bare @{_dotted(node)} (no reason)")
    return out


def test_every_skip_has_a_reason():
    assert len(SOURCES) > 20
    bad = [v for p in SOURCES for v in violations(p)]
    assert not bad, "\n".join(bad)


def test_the_checker_catches_missing_reasons(tmp_path):
    f = tmp_path / "test_x.py"
    f.write_text("import pytest\n"
                 "@pytest.mark.skip\ndef test_a(): pass\n"
                 "@pytest.mark.skipif(True)\ndef test_b(): pass\n"
                 "def test_c():\n    pytest.skip()\n"
                 "def test_d():\n    pytest.skip('')\n"
                 "@pytest.mark.skipif(True, reason='ok')\ndef test_e(): pass\n"
                 "def test_f():\n    pytest.skip(f'{1}')\n")
    assert len(violations(f)) == 4


def test_skip_reasons_are_printed():
    cfg = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    addopts = re.search(r'^addopts\s*=\s*"([^"]*)"', cfg, re.M)
    assert addopts and re.search(r"-r\w*[as]", addopts.group(1)), \
        "pytest must print skip reasons (-ra or -rs in addopts)"
