"""The SDK's import graph: no cycle, and no heavy import before a backend needs it.

The graph is read from the source: every ``import`` and ``from`` statement, at any
depth (functions and ``if TYPE_CHECKING:`` blocks included).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import switchover.sdk

SDK = Path(switchover.sdk.__file__).parent
PACKAGE = "switchover.sdk"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SDK).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((PACKAGE, *parts))


def _imports(path: Path, name: str) -> set[str]:
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            # "from package import module" imports the module
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in SDK.rglob("*.py")}
    return {
        name: {m for m in _imports(path, name) if m in modules and m != name}
        for name, path in modules.items()
    }


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_sdk_modules_import_each_other_without_a_cycle() -> None:
    graph = _graph()
    assert "switchover.sdk.client" in graph and "switchover.sdk.router" in graph
    # the package __init__ re-exports the client: leave it out, as every import-linter does
    inner = {k: v - {PACKAGE} for k, v in graph.items() if k != PACKAGE}
    assert _cycle(inner) is None, " -> ".join(_cycle(inner) or [])


def test_the_router_does_not_import_the_client() -> None:
    graph = _graph()
    assert "switchover.sdk.client" not in graph["switchover.sdk.router"]
    assert PACKAGE not in graph["switchover.sdk.router"]
    assert "switchover.sdk.types" in graph["switchover.sdk.router"]


def test_importing_the_sdk_imports_neither_sqlalchemy_nor_httpx() -> None:
    code = (
        "import sys, switchover, switchover.sdk\n"
        "from switchover.sdk import MemoryBackend, connect\n"
        "heavy = sorted(m for m in ('sqlalchemy', 'httpx') if m in sys.modules)\n"
        "print(heavy)\n"
        "import switchover.sdk.backends.http\n"
        "print('sqlalchemy' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    # the SDK alone: neither; the server backend: httpx, still not SQLAlchemy
    assert out == ["[]", "False"], out
