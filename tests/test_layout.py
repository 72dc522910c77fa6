"""The package's layout shows its layers, and the imports keep to them:

- the API and the CLI sit on top: nothing below imports them;
- ``plutino.native`` (loading plugins) knows nothing of the engine, packages or processes;
- only ``plutino.dataplane`` starts processes that run plugin code;
- no import cycles between modules (function-level imports count too: one that closes a
  cycle is a hidden one). A package's lazy ``__getattr__`` accessor (``plutino.Engine``,
  ``plutino.api.create_app``) is not an import: it runs only when asked."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "host" / "plutino"


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found: set[str] = set()
        lazy = {id(n) for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == "__getattr__"
                for n in ast.walk(f)}
        for node in ast.walk(tree):
            if id(node) in lazy:  # a package's lazy accessor (``plutino.Engine``, ``plutino.api.create_app``)
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rsplit(".", 1)[0] if "." in target else ""
                if target and target != name and not name.startswith(target + "."):
                    found.add(target)  # a module's own packages are imported before it anyway
        graph[name] = found
    return graph


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_nothing_below_the_api_and_the_cli_imports_them():
    for module, targets in _imports().items():
        if _layer(module) in ("api", "cli", "__main__"):
            continue
        upward = sorted(t for t in targets if _layer(t) in ("api", "cli"))
        assert not upward, f"{module} imports {upward}: the core must not depend on the API or the CLI"


def test_native_knows_nothing_of_the_engine_packages_or_processes():
    for module, targets in _imports().items():
        if _layer(module) != "native":
            continue
        upper = ("engine", "packages", "dataplane", "io", "api", "cli", "host")
        wrong = sorted(t for t in targets if _layer(t) in upper)
        assert not wrong, f"{module} imports {wrong}"


def test_only_the_data_plane_starts_processes_that_load_plugins():
    for path in PACKAGE.rglob("*.py"):
        module = _module(path)
        text = path.read_text(encoding="utf-8")
        if "plutino.dataplane.worker" in text or "plutino.dataplane.probe\"" in text:
            assert _layer(module) == "dataplane", f"{module} starts a worker or probe process itself"


def test_there_are_no_import_cycles():
    graph = _imports()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
