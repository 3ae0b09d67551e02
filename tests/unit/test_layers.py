"""The layers of DESIGN.md hold: no import cycle, and no layer imports one above it.

The graph is read from the source (every ``import``/``from`` statement, inside functions
and ``TYPE_CHECKING`` blocks too), so a lazy import that reaches up a layer fails here
as surely as one at the top of a module.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import switchover

ROOT = Path(switchover.__file__).parent

LAYERS: dict[str, int] = {
    "errors": 0,
    "core": 1,
    "store": 2,
    "settings": 2,
    # services
    "access": 3,
    "agents": 3,
    "control": 3,
    "data": 3,
    "metrics": 3,
    "openfeature": 3,
    "rollout": 3,
    "sdk": 3,
    "worker": 3,
    "livekit": 3,
    "pipecat": 3,
    "": 3,  # the package itself: the SDK's public surface
    "bootstrap": 4,
    "commands": 5,
    "demo": 5,
    # entry points
    "api": 6,
    "web": 6,
    "cli": 6,
    "proxy": 6,
    "__main__": 6,
}
NAMES = {0: "errors", 1: "core", 2: "store", 3: "services", 4: "bootstrap", 5: "commands"}
NAMES[6] = "entry points"


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()

    def known(name: str) -> str | None:
        while name:
            if name in modules:
                return name
            name = name.rpartition(".")[0]
        return None

    edges: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                targets = [f"{base}.{a.name}" for a in node.names]
            for target in targets:
                found = known(target) if target.startswith("switchover") else None
                if found and found != module:
                    edges[module].add(found)
    return edges


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    assert top in LAYERS, f"{module}: add its package to LAYERS in this test (and DESIGN.md)"
    return LAYERS[top]


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
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
                found.append(sorted(component))

    for v in sorted(set(edges) | {w for ws in edges.values() for w in ws}):
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_another_in_a_circle() -> None:
    assert _cycles(_graph()) == []


def test_no_layer_imports_a_layer_above_it() -> None:
    upward = sorted(
        f"{module} ({NAMES[_layer(module)]}) imports {target} ({NAMES[_layer(target)]})"
        for module, targets in _graph().items()
        for target in targets
        if _layer(target) > _layer(module)
    )
    assert upward == []


def test_the_core_imports_only_the_standard_library_and_pure_helpers() -> None:
    allowed = {"mmh3", "ddsketch", "scipy", "numpy", "yaml", "orjson", "switchover"}
    foreign = set()
    for path in (ROOT / "core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                if top not in allowed and not _stdlib(top):
                    foreign.add(f"{path.name}: {name}")
    assert foreign == set()


def _stdlib(name: str) -> bool:
    import sys

    return name in sys.stdlib_module_names or name == "__future__"


def test_the_guard_sees_an_upward_import_and_a_cycle() -> None:
    edges = {
        "switchover.core.a": {"switchover.store.b"},
        "switchover.store.b": {"switchover.core.a"},
    }
    assert _cycles(edges) == [["switchover.core.a", "switchover.store.b"]]
    assert _layer("switchover.store.b") > _layer("switchover.core.a")
