"""Structural guarantees of the package: no import circles, short modules, a light command
line, and imports without side effects."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import repaint
from repaint.cli import main

PACKAGE = Path(repaint.__file__).resolve().parent
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_names(tree: ast.AST, importer: str, is_package: bool) -> set[str]:
    """Every module (or module.name) a file imports, at any depth, except under
    `if TYPE_CHECKING:`; relative imports resolved against `importer`."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = importer.split(".")
                if not is_package:
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    """Edges importer -> imported module among the package's modules."""
    modules = package_modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for importer, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for name in imported_names(tree, importer, path.name == "__init__.py"):
            if name != "repaint" and not name.startswith("repaint."):
                continue
            # `from repaint.x import y` is the submodule repaint.x.y if that file exists,
            # else a name in repaint.x; the nearest module that exists is the target.
            parts = name.split(".")
            while ".".join(parts) not in modules:
                parts.pop()
            target = ".".join(parts)
            targets = {target}
            # Importing repaint.a.b first runs the package repaint.a, unless the importer
            # is itself inside repaint.a (Python's ordinary package structure).
            for depth in range(1, len(parts)):
                parent = ".".join(parts[:depth])
                if importer != parent and not importer.startswith(parent + "."):
                    targets.add(parent)
            graph[importer].update(t for t in targets if t != importer)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
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


def test_the_import_graph_is_read_from_every_module():
    graph = import_graph()
    assert {"repaint", "repaint.cli", "repaint.cli.inpaint", "repaint.regions"} <= set(graph)
    assert "repaint.cli.inpaint" in graph["repaint.cli"]
    assert "repaint.cli.common" in graph["repaint.cli.inpaint"]
    assert "repaint.errors" in graph["repaint.regions"]
    # Function-level imports count too: `repaint schedule --plot` imports outputs when run.
    assert "repaint.outputs" in graph["repaint.cli.schedule"]


def test_cycle_finder_reports_a_real_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_relative_and_type_checking_imports_are_resolved():
    source = (
        "from typing import TYPE_CHECKING\n"
        "from . import errors\n"
        "from .schedule import JumpSchedule\n"
        "if TYPE_CHECKING:\n"
        "    from repaint.jobs import Job\n"
        "def f():\n"
        "    import repaint.io\n"
    )
    names = imported_names(ast.parse(source), "repaint.cli.run", is_package=False)
    assert {"repaint.cli.errors", "repaint.cli.schedule", "repaint.io"} <= names
    assert not any(name.startswith("repaint.jobs") for name in names)


def test_no_import_cycle_among_the_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


ARCHITECTURE = PACKAGE.parents[1] / "docs" / "architecture.md"


def documented_floors() -> list[tuple[str, set[str]]]:
    """The floors table of docs/architecture.md, lowest floor first."""
    text = ARCHITECTURE.read_text().split("## Floors", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 2 and "`" in cells[1]:
            rows.append((cells[0], {name.strip(" `") for name in cells[1].split(",")}))
    return rows[::-1]


def floor_of(module: str, floors: list[tuple[str, set[str]]]) -> int | None:
    parts = module.split(".")[1:]  # without the leading `repaint`
    head = parts[0] if parts else "__init__"
    return next((i for i, (_, names) in enumerate(floors) if head in names), None)


def test_every_import_goes_to_its_own_floor_or_below():
    floors = documented_floors()
    assert [name for name, _ in floors][:2] == ["ground", "core"] and len(floors) >= 8
    graph = import_graph()
    unplaced = sorted(module for module in graph if floor_of(module, floors) is None)
    assert not unplaced, f"modules on no floor of docs/architecture.md: {unplaced}"
    upward = [
        f"{importer} ({floors[floor_of(importer, floors)][0]}) imports {target} "
        f"({floors[floor_of(target, floors)][0]})"
        for importer, targets in graph.items()
        for target in targets
        if floor_of(target, floors) > floor_of(importer, floors)
    ]
    assert not upward, upward


def test_the_floor_check_finds_an_upward_import():
    floors = [("ground", {"errors"}), ("core", {"samplers"}), ("doors", {"cli"})]
    assert floor_of("repaint.samplers.ddnm", floors) == 1
    assert floor_of("repaint.cli", floors) == 2 and floor_of("repaint.io", floors) is None
    assert floor_of("repaint.cli", floors) > floor_of("repaint.errors", floors)


def test_the_web_app_has_no_long_function():
    tree = ast.parse((PACKAGE / "web" / "app.py").read_text())
    lengths = {
        node.name: node.end_lineno - node.lineno + 1
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    assert lengths and max(lengths.values()) <= 60, lengths


def test_no_module_is_longer_than_400_lines():
    lengths = {name: len(path.read_text().splitlines()) for name, path in package_modules().items()}
    offenders = {name: n for name, n in lengths.items() if n > MAX_LINES}
    assert not offenders, f"modules over {MAX_LINES} lines: {offenders}"


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


HELP_PROBE = """
import sys
from repaint.cli import main
try:
    main({argv!r})
except SystemExit as exit:
    code = exit.code
else:
    code = None
print()
print(code, 'torch' in sys.modules)
"""


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["--help"], "0"),
        (["inpaint", "--help"], "0"),
        (["train", "--help"], "0"),
        (["train", "--data", "digits", "--out", "o", "--grad-accum", "two"], "2"),
        (["inpaint", "--num-samples", "notanumber"], "2"),
        (["schedule", "--t-T", "ten"], "2"),
        (["nosuchcommand"], "2"),
    ],
)
def test_help_and_argument_errors_do_not_import_torch(argv, code):
    result = run_python(HELP_PROBE.format(argv=argv))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"{code} False"
    if code == "2":
        assert "Traceback" not in result.stderr
        assert argv[-1] in result.stderr


def test_import_repaint_does_not_import_torch():
    result = run_python("import sys, repaint; print(repaint.__version__, 'torch' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [repaint.__version__, "False"]


IMPORT_PROBE = """
import importlib, importlib.util, json, os, pkgutil, sys, warnings

data = [os.path.realpath({data!r})]
opened = []

def hook(event, args):
    if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.abspath(os.fsdecode(args[0]))
        if any(path == d or path.startswith(d + os.sep) for d in data):
            opened.append(path)

sys.addaudithook(hook)

backend_calls = []
try:
    import matplotlib
except ImportError:
    matplotlib = None
else:
    real_use = matplotlib.use
    def recording_use(*args, **kwargs):
        backend_calls.append(repr(args))
        return real_use(*args, **kwargs)
    matplotlib.use = recording_use
    backend_before = dict.__getitem__(matplotlib.rcParams, "backend")

os.umask(0o027)
showwarning = warnings.showwarning

import repaint
data.append(os.path.abspath(os.path.join(os.path.dirname(repaint.__file__), "data")))
web = importlib.util.find_spec("fastapi") is not None
failed, imported = [], []

def skip(name):
    return name == "repaint.__main__" or (not web and name.startswith("repaint.web."))

for info in pkgutil.walk_packages(repaint.__path__, "repaint.", onerror=failed.append):
    if skip(info.name):
        continue
    try:
        importlib.import_module(info.name)
        imported.append(info.name)
    except Exception as error:
        failed.append(f"{{info.name}}: {{type(error).__name__}}: {{error}}")

umask = os.umask(0o022)
os.umask(umask)
print(json.dumps({{
    "imported": imported,
    "failed": [str(f) for f in failed],
    "umask": umask,
    "showwarning_kept": warnings.showwarning is showwarning,
    "backend_calls": backend_calls,
    "backend_kept": matplotlib is None
    or dict.__getitem__(matplotlib.rcParams, "backend") == backend_before,
    "opened": opened,
}}))
"""


def test_importing_every_module_has_no_side_effects():
    result = run_python(IMPORT_PROBE.format(data=str(PACKAGE / "data")))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert not report["failed"], report["failed"]
    assert {"repaint.cli", "repaint.regions", "repaint.io", "repaint.networks.unet"} <= set(
        report["imported"]
    )
    assert "repaint.__main__" not in report["imported"]
    assert report["umask"] == 0o027, oct(report["umask"])
    assert report["showwarning_kept"], "an import replaced warnings.showwarning"
    assert not report["backend_calls"], f"matplotlib.use called at import: {report}"
    assert report["backend_kept"], "an import changed the matplotlib backend"
    assert not report["opened"], f"package data read at import: {report['opened']}"


def test_main_restores_the_warning_hook(capsys):
    before = warnings.showwarning
    assert main(["schedule", "--t-T", "10", "--jump-length", "2", "--jump-n-sample", "2"]) == 0
    assert warnings.showwarning is before
    assert "model evaluations" in capsys.readouterr().out
    assert main(["schedule", "--t-T", "0"]) == 2  # the error path restores it too
    assert warnings.showwarning is before
    assert "t_T" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--t-T", "1000000000"], "more than 1,000,000"),
        (["--num-samples", "0"], "--num-samples"),
        (["--eta", "2"], "--eta"),
    ],
)
def test_a_bad_request_is_refused_before_torch_is_imported(flags, words):
    """The request is checked from the flags alone, so a hopeless run answers at once."""
    argv = ["inpaint", "photo.png", "--mask", "mask.png", "--out", "out", *flags]
    probe = f"import sys\nfrom repaint.cli import main\ncode = main({argv!r})\n"
    probe += "print()\nprint(code, 'torch' in sys.modules)"
    result = run_python(probe)
    assert result.stdout.splitlines()[-1] == "2 False", result.stderr
    assert words in result.stderr and "Traceback" not in result.stderr
