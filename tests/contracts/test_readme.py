"""The README's Python snippets run and print what they claim."""
import re

import pytest

from _paths import REPO  # noqa: E402

README = (REPO / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_readme_has_snippets():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_snippet_runs(code, capsys):
    for framework in ("torch", "jax"):
        if re.search(rf"^import {framework}|^from cupysteer import {framework}", code, re.M):
            pytest.importorskip(framework, reason=f"{framework} not installed")
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)


def test_ten_line_example_is_equivariant(capsys):
    code = BLOCKS[0]
    assert "equivariance_errors" in code
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert max(namespace["errors"].values()) < 1e-12
    assert namespace["filt"].shape == (64, 1, 5, 5)
