"""The shape of the house, read from the source with ``ast`` (nothing is imported): imports
run one way, functions stay short enough to read, and the choices are written in one place."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "superres"


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, whether it is a package's __init__)."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def _owner(name: str, modules) -> str | None:
    """The module that ``name`` (a module, or a name inside one) lives in."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """Module -> the superres modules it imports anywhere in its file (at module level, inside
    functions, under TYPE_CHECKING: every import counts). Importing ``a.b.c`` from outside
    ``a.b`` also runs ``a/__init__`` and ``a/b/__init__``, so those count too; a module's own
    parent packages do not (they are already importing when it runs)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in modules.items():
        targets: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets |= {_owner(a.name, modules) for a in node.names if a.name.split(".")[0] == "superres"}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                if source.split(".")[0] != "superres":
                    continue
                for alias in node.names:
                    full = f"{source}.{alias.name}"
                    targets.add(full if full in modules else _owner(source, modules))
        edges = set()
        for target in targets - {None, name}:
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                ancestor = ".".join(parts[:i])
                if ancestor in modules and ancestor != name and not name.startswith(ancestor + "."):
                    edges.add(ancestor)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_import_graph_sees_every_kind_of_import():
    graph = import_graph()
    assert "superres.inference.upscaler" in graph["superres.inference"]  # inside __getattr__
    assert "superres.attribution" in graph["superres"]
    assert "superres.inference.upscaler" in graph["superres.inference.batch"]  # under TYPE_CHECKING


def test_superres_imports_have_no_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


_SUFFIX = re.compile(r"\.(png|jpe?g|webp|tiff?|bmp|gif)", re.IGNORECASE)


def _string_literals(tree: ast.AST):
    """Every string constant of ``tree`` but docstrings."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node


def test_image_format_suffixes_are_written_in_one_module():
    """".png", ".tif" and the rest, as values of their own (a file name that ends in one,
    "demo.png", is a name, not a choice of format), are literals of superres.options only;
    everything else reads them from there."""
    holders = {}
    for path in PACKAGE.rglob("*.py"):
        for node in _string_literals(ast.parse(path.read_text(encoding="utf-8"))):
            if _SUFFIX.fullmatch(node.value):
                holders.setdefault(str(path.relative_to(SRC)), []).append(f"{node.lineno}: {node.value!r}")
    assert list(holders) == ["superres/options.py"], holders


def test_help_imports_no_torch():
    """The choices ``--help`` shows come from superres.options, which imports nothing heavy."""
    code = (
        "import sys\n"
        "from superres.cli import main\n"
        "for argv in (['--help'], ['upscale', '--help'], ['explain', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = sorted(m for m in ('torch', 'numpy', 'PIL', 'fastapi') if m in sys.modules)\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(SRC)}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--precision {auto,fp32,fp16,bf16}" in done.stdout and "{png,jpg,webp,tif,bmp,gif}" in done.stdout
    assert "HEAVY []" in done.stderr, done.stderr


def test_the_package_ships_its_annotations_and_ci_checks_them():
    import tomllib

    project = tomllib.loads((SRC.parent / "pyproject.toml").read_text(encoding="utf-8"))
    assert (PACKAGE / "py.typed").is_file()
    assert "py.typed" in project["tool"]["setuptools"]["package-data"]["superres"]
    assert any(r.startswith("pyright") for r in project["project"]["optional-dependencies"]["test"])
    lines = (SRC.parent / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    readme = lines.index('python3 -m venv .venv && .venv/bin/pip install -q -e ".[test]" && .venv/bin/python -m pytest -q')
    assert ".venv/bin/pyright" in lines[readme + 1 :]


def test_kept_files_are_written_atomically():
    """Reports, configs, study tables and plots, explanation maps: written through
    superres.atomic (a temporary file renamed into place), never opened over the kept name."""
    for module in ("zoo_report.py", "training/tune.py", "training/run.py", "cli.py"):
        tree = ast.parse((PACKAGE / module).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            name = node.func.attr
            assert name not in ("write_text", "write_bytes"), f"{module}:{node.lineno} {name}"
            atomic_already = isinstance(node.func.value, ast.Name) and node.func.value.id == "ckpt_format"  # checkpoint.save
            if name in ("savefig", "save") and node.args and not atomic_already:
                target = node.args[0]
                assert isinstance(target, ast.Name) and target.id in ("temp", "buffer"), f"{module}:{node.lineno} {name}"


def _long_functions() -> dict[tuple[str, str], int]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        module = path.relative_to(PACKAGE).as_posix()
        limit = 60 if module.startswith("serve/") else 80
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > limit:
                found[(module, node.name)] = node.end_lineno - node.lineno + 1
    return found


def test_no_function_is_too_long_to_read():
    """At most 80 lines a function (docstring included), 60 in the web app."""
    assert _long_functions() == {}
