"""No GPU test compares float32 results that went through TF32 (checked without a GPU).

PyTorch lets cuDNN use TF32 for float32 convolutions by default
(``torch.backends.cudnn.allow_tf32``): its 10-bit mantissa rounds 7–100× beyond the 1e-4
tolerances of the GPU tests, so a test that runs a torch convolution (or matmul) on CUDA and
compares it with the CPU must switch TF32 off (``torch.backends.cudnn.flags(allow_tf32=False)``,
``torch.backends.cuda.matmul.allow_tf32 = False``, ``fp32_precision = "ieee"``) or compare
filters instead. CuPy's cuBLAS uses TF32 only with ``CUPY_TF32=1``: the padded path's GPU tests
refuse to run under it. This scans every GPU test of the suite (AST + source)."""
from __future__ import annotations

import ast
import re

import pytest

from _paths import REPO

TESTS = REPO / "tests"
# a torch computation on CUDA that cuDNN / cuBLAS may run in TF32
_CUDA = re.compile(r"\.cuda\(|device=[\"']cuda|torch\.device\([\"']cuda")
_TF32_PRONE = re.compile(r"Conv|conv[23]d|conv_transpose|matmul|\.mm\(|F\.linear|nn\.Linear")
_TF32_OFF = re.compile(r"allow_tf32\s*=\s*False|fp32_precision\s*=\s*[\"']ieee|"
                       r"set_float32_matmul_precision\([\"']highest")


def _is_gpu(node, module_gpu: bool) -> bool:
    return module_gpu or any("gpu" in ast.unparse(d) for d in node.decorator_list)


def _gpu_tests():
    for path in sorted(TESTS.rglob("test_*.py")):
        text = path.read_text()
        tree = ast.parse(text)
        module_gpu = any(isinstance(n, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in n.targets)
            and "gpu" in ast.unparse(n.value) for n in tree.body)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_") \
                    and _is_gpu(node, module_gpu):
                yield path.relative_to(REPO), node.name, ast.get_source_segment(text, node)


GPU_TESTS = list(_gpu_tests())


def test_the_scan_finds_the_gpu_tests():
    names = {name for _, name, _ in GPU_TESTS}
    assert {"test_random_layers", "test_grouped_on_cuda_matches_cpu"} <= names


@pytest.mark.parametrize("path, name, source", GPU_TESTS,
                         ids=[f"{p}::{n}" for p, n, _ in GPU_TESTS])
def test_torch_cuda_comparisons_switch_tf32_off(path, name, source):
    if _CUDA.search(source) and _TF32_PRONE.search(source):
        assert _TF32_OFF.search(source), (
            f"{path}::{name} runs a torch convolution/matmul on CUDA and compares it with "
            f"TF32 allowed (cuDNN's default): wrap the CUDA part in "
            f"`with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):` or compare "
            f"the filters instead")


def test_padded_gpu_tests_refuse_cupy_tf32():
    source = (TESTS / "backends" / "test_cupy_gpu.py").read_text()
    assert "CUPY_TF32" in source
