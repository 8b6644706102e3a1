"""Import circles among the project's modules: `python scripts/import_cycles.py [ROOT] [PREFIX] [--all]`.

Builds the graph of imports between the apps' modules (migrations left out) and prints every
circle (strongly connected component). By default only module-level imports count (what Python
runs at import time); `--all` counts imports inside functions too, which is where a circle hides.
PREFIX (e.g. `ops`) keeps the circles touching those modules. Exit status 1 when one is found.
"""

import ast
import sys
from pathlib import Path

PACKAGES = [
    "audit",
    "approvals",
    "betting",
    "ledger",
    "rounds",
    "withdrawals",
    "marketdata",
    "risk",
    "ops",
    "common",
    "config",
]


def modules(root: Path) -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports_of(path: Path, *, everywhere: bool) -> list[str]:
    tree = ast.parse(path.read_text())
    nodes = (
        ast.walk(tree)
        if everywhere
        else (
            n
            for top in tree.body
            if not isinstance(top, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            for n in ast.walk(top)
        )
    )
    names = []
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return names


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in graph[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for module in graph:
        if module not in index:
            visit(module)
    return found


def main(argv: list[str]) -> int:
    everywhere = "--all" in argv
    positional = [arg for arg in argv if arg != "--all"]
    root = Path(positional[0]) if positional else Path(".")
    prefix = positional[1] if len(positional) > 1 else ""
    known = modules(root)

    def resolve(name: str) -> str:
        while name and name not in known:
            name = name.rsplit(".", 1)[0] if "." in name else ""
        return name

    graph = {
        module: {
            target for name in imports_of(path, everywhere=everywhere) if (target := resolve(name)) not in ("", module)
        }
        for module, path in known.items()
    }
    found = [circle for circle in circles(graph) if not prefix or any(m.startswith(prefix) for m in circle)]
    for circle in found:
        print("circle:", " <-> ".join(circle))
    scope = "all imports" if everywhere else "module-level imports"
    print(f"{len(found)} import circle(s) among {scope}" + (f" touching {prefix}" if prefix else ""))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
