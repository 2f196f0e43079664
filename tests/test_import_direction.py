"""Dependencies point one way (ARCHITECTURE.md): cli -> reporting -> {nas, predictors, devices} -> hwprof, nas -> predictors.

Walks every import statement of the first-party packages with ``ast`` (also
those inside functions: a lazy import is still a dependency) and checks the
layer rules (type-only imports included) and that no two modules import each
other at run time through any chain.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hwprof", "devices", "predictors", "nas", "reporting")

# layer -> first-party packages it must not import
FORBIDDEN = {
    "hwprof": ("devices", "predictors", "nas", "reporting"),  # the core (hwprof.cli excepted)
    "devices": ("predictors", "nas", "reporting"),
    "predictors": ("nas", "reporting"),
    "nas": ("reporting",),
    "reporting": (),  # the top layer: only hwprof.cli imports it
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            out[_module_name(path)] = path
    return out


def _type_only_nodes(tree: ast.AST) -> set[int]:
    """ids of the import nodes inside ``if TYPE_CHECKING:`` blocks (never executed)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            out.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return out


def _imports(path: Path, name: str, known: set[str], runtime_only: bool = False) -> set[str]:
    """First-party modules imported by the module at ``path`` (anywhere in it; ``runtime_only``:
    leaving out ``TYPE_CHECKING`` blocks, which matter for layers but cannot make an import cycle)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_package = path.name == "__init__.py"
    skip = _type_only_nodes(tree) if runtime_only else set()
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import a.b.c` of a package path -> deepest known module
                target = target.rpartition(".")[0]
            if target and target.split(".")[0] in PACKAGES:
                found.add(target)
    found.discard(name)
    return found


def _graph(runtime_only: bool = False) -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(path, name, known, runtime_only) for name, path in modules.items()}


def _layer(module: str) -> str | None:
    if module == "hwprof.cli" or module.startswith("hwprof.cli."):
        return None  # the CLI may import anything
    return module.split(".")[0]


def test_layers_import_downwards_only():
    violations = []
    for module, targets in sorted(_graph().items()):
        layer = _layer(module)
        if layer is None:
            continue
        for target in sorted(targets):
            if target.split(".")[0] in FORBIDDEN[layer]:
                violations.append(f"{module} imports {target}")
    assert not violations, "imports against the layer rules:\n" + "\n".join(violations)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    cycles = _cycles(_graph(runtime_only=True))
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_walker_sees_lazy_and_relative_imports(tmp_path):
    """The check itself: an import inside a function and a relative import are both found."""
    pkg = tmp_path / "hwprof"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import hwprof.c\n"
        "def f():\n    from nas.search import x\n    from . import b\n"
    )
    (pkg / "b.py").write_text("")
    known = {"hwprof", "hwprof.a", "hwprof.b", "hwprof.c", "nas", "nas.search"}
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert _imports(pkg / "a.py", "hwprof.a", known) == {"nas.search", "hwprof.b", "hwprof.c"}
        assert _imports(pkg / "a.py", "hwprof.a", known, runtime_only=True) == {"nas.search", "hwprof.b"}
    finally:
        ROOT = saved
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
