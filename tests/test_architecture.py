"""The house rules of the package's layout (issue 25): what a newcomer can rely on."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "embedding_projector"
MAX_TOP_LEVEL_MODULES = 12
MAX_MODULE_LINES = 600


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(path: Path, modules: set[str]) -> set[str]:
    """Modules of the package that ``path`` imports when it runs (function-level included,
    ``if TYPE_CHECKING:`` blocks left out), with the packages each import executes."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {
        id(sub)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for child in node.body
        for sub in ast.walk(child)
    }
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                child = f"{source}.{alias.name}"
                found.add(child if child in modules else source)
    # Importing a.b.c runs a and a.b first; the importer's own packages are already running.
    own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    edges = set()
    for target in found:
        parts = target.split(".")
        for cut in range(1, len(parts) + 1):
            head = ".".join(parts[:cut])
            if head in modules and head != name and head not in own:
                edges.add(head)
    return edges


def test_at_most_12_modules_beside_the_packages() -> None:
    top = sorted(p.name for p in SRC.glob("*.py") if p.name != "__init__.py")
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_no_module_over_600_lines() -> None:
    lines = {p: len(p.read_text(encoding="utf-8").splitlines()) for p in SRC.rglob("*.py")}
    long = {str(p.relative_to(SRC)): n for p, n in lines.items() if n > MAX_MODULE_LINES}
    assert not long, long


def test_no_import_cycle() -> None:
    paths = {module_name(p): p for p in SRC.rglob("*.py")}
    graph = {name: runtime_imports(path, set(paths)) for name, path in paths.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycle = [*stack[stack.index(target) :], target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
