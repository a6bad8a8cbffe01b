"""The package's shape, checked: every module imports alone in a fresh interpreter, imports
run one way (no cycle, counting imports inside functions and not those under
``if TYPE_CHECKING:``), package ``__init__`` modules import nothing of their own package (so
importing one submodule never runs its siblings), no package folder shadows pypa's ``build``
or a ``dist`` output, modules stay short and say what they own, and the README's exit-status
table is the one the errors define."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from wheelhouse.errors import exit_statuses

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "wheelhouse"
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(name: str, *, module_level_only: bool = False) -> set[str]:
    """The wheelhouse modules ``name`` imports: each import names the module it reads (for
    ``from pkg import name``, ``pkg.name`` when that is a module, else ``pkg``)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit_one(other)
                continue
            visit_one(child)

    def visit_one(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
        if module_level_only and isinstance(
                node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            return
        visit(node)

    visit(ast.parse(path.read_text()))
    return {m for m in found if m in MODULES and m != name}


def test_every_module_imports_alone() -> None:
    def try_import(name: str) -> tuple[str, str] | None:
        proc = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True,
                              text=True, check=False)
        return None if proc.returncode == 0 else (name, proc.stderr.strip().splitlines()[-1])

    with ThreadPoolExecutor(4) as pool:
        # wheelhouse.__main__ is the command itself: importing it runs it.
        names = [m for m in MODULES if m != "wheelhouse.__main__"]
        failures = [f for f in pool.map(try_import, names) if f is not None]
    assert failures == []


def test_imports_run_one_way() -> None:
    graph = {name: _imports(name) for name in MODULES}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt):], nxt])
            elif nxt not in state:
                walk(nxt)
        path.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            walk(name)
    assert [" -> ".join(c) for c in cycles] == []


def test_package_inits_import_nothing_of_their_package() -> None:
    offenders = {}
    for name, path in MODULES.items():
        if path.name != "__init__.py":
            continue
        own = {m for m in _imports(name, module_level_only=True)
               if m == name or m.startswith(name + ".")}
        if own:
            offenders[name] = sorted(own)
    assert offenders == {}


def test_no_package_named_like_a_build_tool_output() -> None:
    assert [p for p in PACKAGE.rglob("*") if p.is_dir() and p.name in ("build", "dist")] == []


def test_modules_are_short_and_say_what_they_own() -> None:
    long = {n: len(p.read_text().splitlines()) for n, p in MODULES.items()
            if len(p.read_text().splitlines()) > MAX_LINES}
    undocumented = [n for n, p in MODULES.items()
                    if not ast.get_docstring(ast.parse(p.read_text()))
]
    assert (long, undocumented) == ({}, [])


def test_readme_exit_status_table_is_the_errors_table() -> None:
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| (\d+) \| (.+?) \|$", readme, re.M)
    assert [(int(code), text) for code, text in rows] == exit_statuses()


@pytest.mark.parametrize("code", [code for code, _ in exit_statuses()])
def test_help_lists_every_exit_status(code: int) -> None:
    from click.testing import CliRunner

    from wheelhouse.cli.root import cli

    out = CliRunner().invoke(cli, ["--help"]).output
    assert re.search(rf"^\s*{code}  \S", out, re.M)


def test_contributings_module_map_matches_the_tree() -> None:
    """Every module and package of wheelhouse has its row in CONTRIBUTING.md's map, every
    submodule is named in its package's row, and the map names nothing that is gone."""
    text = (ROOT / "CONTRIBUTING.md").read_text()
    rows = {}
    for line in text.splitlines():
        cells = line.split("|")
        if line.startswith("| `") and len(cells) > 3:
            for name in re.findall(r"`([\w./]+)`", cells[1]):
                rows[name] = cells[2]
    top = sorted({p.name if p.is_file() else p.name + "/" for p in PACKAGE.iterdir()
                  if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))
                  and p.name not in ("__init__.py", "__main__.py")})
    assert [t for t in top if t not in rows] == []
    missing = {}
    for package in (t for t in top if t.endswith("/")):
        subs = sorted(p.stem for p in (PACKAGE / package).glob("*.py") if p.stem != "__init__")
        named = set(re.findall(r"`(\w+)`", rows[package]))
        if [s for s in subs if s not in named]:
            missing[package] = [s for s in subs if s not in named]
    assert missing == {}
    gone = [n for n in rows if n.endswith((".py", "/"))
            and not (PACKAGE / n.rstrip("/")).exists()]
    assert gone == []
