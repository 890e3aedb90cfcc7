"""The benchmarks keep the package's own rules: short modules, no import circle, no private
name taken from another module, and one direction of dependency: the scripts in
`benchmarks/` import `benchmarks.lib`, which imports `repaint`, never the other way.

The helpers are small local twins of tests/test_architecture.py's: importing that module
would run `repaint.cli`, tying this test to the whole command line."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
LIB = "benchmarks.lib"
MAX_LINES = 400
NOT_IMPORTABLE = ("tests", "e2e")  # first-party code that is no library of the benchmarks


def imported_names(tree: ast.AST, importer: str, is_package: bool) -> set[str]:
    """Every module (or module.name) a file imports, at any depth; relative imports resolved
    against `importer`. (The benchmarks have no `if TYPE_CHECKING:` imports to skip.)"""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = importer.split(".")[: None if is_package else -1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for child in sorted(graph[node]):
            if state.get(child) == 1:
                return [*path[path.index(child) :], child]
            if child not in state and (cycle := visit(child)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def benchmark_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(BENCHMARKS.rglob("*.py"))}


def imports_of(name: str, source: str, is_package: bool = False) -> set[str]:
    return imported_names(ast.parse(source), name, is_package)


def nearest_module(name: str, modules: dict[str, Path]) -> str:
    """`benchmarks.lib.methods.Method` -> `benchmarks.lib.methods`: the module it names."""
    parts = name.split(".")
    while len(parts) > 1 and ".".join(parts) not in modules:
        parts.pop()
    return ".".join(parts)


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Edges importer -> benchmark module, with the packages that importing it runs."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for importer, path in modules.items():
        for name in imports_of(importer, path.read_text(), path.name == "__init__.py"):
            if name.split(".")[0] != "benchmarks":
                continue
            target = nearest_module(name, modules)
            parts = target.split(".")
            for depth in range(1, len(parts) + 1):
                module = ".".join(parts[:depth])
                if module != importer and not importer.startswith(module + "."):
                    graph[importer].add(module)
    return graph


def private_imports(source: str) -> list[str]:
    """Underscored names taken from another module (`from m import _x`, `import m._x`)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            found += [alias.name for alias in node.names if alias.name.startswith("_")]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if any(p.startswith("_") and not p.endswith("__") for p in parts):
                    found.append(alias.name)
    return found


def forbidden_imports(name: str, source: str, modules: dict[str, Path]) -> list[str]:
    """First-party imports other than `repaint` and `benchmarks.lib` (a script, a test)."""
    found = []
    for imported in sorted(imports_of(name, source)):
        top = imported.split(".")[0]
        if top in NOT_IMPORTABLE:
            found.append(imported)
        elif top == "benchmarks":
            target = nearest_module(imported, modules)
            if target != "benchmarks" and target != LIB and not target.startswith(LIB + "."):
                found.append(imported)
    return found


def test_the_checks_find_what_they_look_for():
    modules = benchmark_modules()
    assert {"benchmarks.quality", "benchmarks.lib.runner", "benchmarks.lib.study"} <= set(modules)
    source = (
        "from __future__ import annotations\n"
        "from benchmarks import quality\n"
        "from benchmarks.lib.runner import chunks, _sample\n"
        "import benchmarks.lib._hidden\n"
        "def f():\n"
        "    from tests.conftest import SHORT\n"
    )
    assert private_imports(source) == ["_sample", "benchmarks.lib._hidden"]
    found = forbidden_imports("benchmarks.speed", source, modules)
    assert found == ["benchmarks.quality", "tests.conftest", "tests.conftest.SHORT"]
    assert "benchmarks.lib.methods" in import_graph(modules)["benchmarks.quality"]
    assert imports_of("benchmarks.lib.study", "from .. import runner", True) >= {
        "benchmarks.lib.runner"
    }
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_benchmark_module_is_longer_than_400_lines():
    modules = benchmark_modules()
    lengths = {name: len(path.read_text().splitlines()) for name, path in modules.items()}
    offenders = {name: n for name, n in lengths.items() if n > MAX_LINES}
    assert not offenders, f"modules over {MAX_LINES} lines: {offenders}"


def test_no_import_cycle_among_the_benchmark_modules():
    cycle = find_cycle(import_graph(benchmark_modules()))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_underscored_name_is_imported_from_another_module():
    offenders = {
        name: found
        for name, path in benchmark_modules().items()
        if (found := private_imports(path.read_text()))
    }
    assert not offenders, f"private names imported: {offenders}"


def test_benchmarks_import_only_repaint_and_their_library():
    modules = benchmark_modules()
    offenders = {
        name: found
        for name, path in modules.items()
        if (found := forbidden_imports(name, path.read_text(), modules))
    }
    assert not offenders, f"scripts or tests imported (only benchmarks.lib may be): {offenders}"


SCRIPTS = sorted(path.name for path in BENCHMARKS.glob("*.py") if path.name != "__init__.py")


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_runs_from_anywhere(script, tmp_path):
    """`python benchmarks/<script> --help` from another folder: the script finds its library."""
    if script == "web_memory.py" and importlib.util.find_spec("fastapi") is None:
        pytest.skip("fastapi is not installed")
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:")
