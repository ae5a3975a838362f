"""The import rules of the package layout (README "How it is built"), enforced by an AST scan.

* the generic core never names a space, a backend or a front end at module level (a
  :class:`~cupysteer.LayerBasis` reaches its backend by a lazy import inside the method that
  runs it: the one allowed lazy import of cupysteer's own code);
* r2/ and r3/ build on the core only (r3's axial groups are built on planar groups: r3 may use
  r2); backends/ execute plans and know no space; front ends may use everything;
* no function-local import of cupysteer's own modules elsewhere (optional third-party
  libraries — torch, jax, cupy, matplotlib, scipy submodules — may be imported lazily);
* module-level imports form no cycle.
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import cupysteer

ROOT = Path(cupysteer.__file__).resolve().parent
PKG = "cupysteer"

CORE = {"group", "space", "representation", "field_type", "settings", "pair_basis", "layout",
        "reference", "basis", "plan", "init", "equivariance", "cache", "fieldwise", "_checks",
        "restriction", "_memory", "_spelling", "_version", "pointconv",
        "fourier"}
# the module paths of 0.1, kept by one package-level module (imports anything, like __init__)
PACKAGE_LEVEL = {"_moved"}
FRONTENDS = {"torch", "jax", "cli", "io", "dlpack", "gallery", "fields_spec", "compat",
             "__main__", "flax", "equinox", "jax_nn"}
SPACES = {"r2", "r3"}
# (importer kind → kinds it must not import)
FORBIDDEN = {
    "core": SPACES | {"backends"} | FRONTENDS,
    "r2": {"r3", "backends"} | FRONTENDS,
    "r3": {"backends"} | FRONTENDS,
    "backends": SPACES | FRONTENDS,
}
# function-local imports of cupysteer's own code that are allowed: (importer, imported prefix)
LAZY_ALLOWED = {("cupysteer.basis", "cupysteer.backends"),  # LayerBasis runs its backend
                ("cupysteer.pointconv", "cupysteer.backends"),  # PointConvBasis.apply
                ("cupysteer.cli.bench", "cupysteer.backends")}  # times CuPy when present


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        yield ".".join(parts), is_pkg, path


MODULES = {name: (is_pkg, path) for name, is_pkg, path in _modules()}


def _kind(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "package"
    top = parts[1]
    if top in PACKAGE_LEVEL:
        return "package"
    if top in CORE:
        return "core"
    if top in SPACES or top == "backends":
        return top
    if top in FRONTENDS:
        return "frontend"
    if top == "kernels":
        return "data"
    raise AssertionError(f"{module}: not classified in tests/contracts/test_import_rules.py; "
                         f"add it to CORE or FRONTENDS (and to the README's module table)")


def _resolve(importer: str, is_pkg: bool, node) -> list[str]:
    """The cupysteer modules an import statement loads (empty for third-party imports). A name
    imported from a package (``from cupysteer import CyclicGroup``) counts as an import of the
    module that defines it; ``import cupysteer`` itself stays ``cupysteer``."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == PKG]
    if node.level == 0:
        base = node.module or ""
        if base.split(".")[0] != PKG:
            return []
    else:
        pkg = importer.split(".") if is_pkg else importer.split(".")[:-1]
        pkg = pkg[:len(pkg) - (node.level - 1)]
        base = ".".join(pkg + ([node.module] if node.module else []))
    out = []
    for a in node.names:
        sub = f"{base}.{a.name}"
        if sub in MODULES:
            out.append(sub)
        elif MODULES.get(base, (False,))[0]:  # a name re-exported by a package
            defined = getattr(importlib.import_module(base), a.name, None)
            home = getattr(defined, "__module__", None)
            out.append(home if home in MODULES else base)
        else:
            out.append(base)
    return out


def _in_function(node, parents) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return True
    return False


def _imports(module: str):
    """(imported module, is module level, line) for every import of cupysteer code; an import
    is lazy only when it sits inside a function (one in a ``try:``/``if`` block at module or
    class level runs at import time)."""
    is_pkg, path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for target in _resolve(module, is_pkg, node):
                yield target, not _in_function(node, parents), node.lineno


def test_every_module_is_classified():
    for m in MODULES:
        _kind(m)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_layer_rules(module):
    kind = _kind(module)
    bad = FORBIDDEN.get(kind, set())
    for target, module_level, line in _imports(module):
        parts = target.split(".")
        if len(parts) < 2:
            # the package itself re-exports r2, r3 and more: layers below it must not use it
            assert kind not in FORBIDDEN, (f"{module}:{line} imports the cupysteer package; "
                                           f"import the module that defines the name")
            continue
        top = parts[1]
        if module_level or (module, ".".join(parts[:2])) not in LAZY_ALLOWED:
            assert top not in bad, (f"{module}:{line} imports {target}: the {kind} must not "
                                    f"depend on {top} (see the README's import rules)")


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_function_local_imports_of_own_code(module):
    for target, module_level, line in _imports(module):
        if module_level:
            continue
        allowed = any(module == imp and target.startswith(prefix)
                      for imp, prefix in LAZY_ALLOWED)
        assert allowed, (f"{module}:{line} imports {target} inside a function: import it at "
                         f"module level (restructure if that makes a cycle)")


def test_no_import_cycles():
    graph = {m: sorted({t for t, top, _ in _imports(m) if top and t != m and t in MODULES})
             for m in MODULES}
    # a package's __init__ is executed before its submodules: an edge into a package is only
    # a cycle when the package's own imports lead back
    state, stack = {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for t in graph[m]:
            if state.get(t) == 1:
                cycle = stack[stack.index(t):] + [t]
                if not all(MODULES[c][0] for c in cycle[:-1]):  # package-only chains are fine
                    raise AssertionError("import cycle: " + " -> ".join(cycle))
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
