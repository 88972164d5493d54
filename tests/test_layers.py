"""The package's layers as a newcomer reads them from the tree, checked: no import cycle, no layer reaching up.

``platform`` (config, loop, engines, sandboxes), ``domain`` (models, DTOs, repositories) and
``instruments`` (recorders and probes) know nothing of Streamlit, of the labs or of the web
glue; the labs know nothing of Streamlit; only ``source/web`` does. Pages import ``source``,
never SQLAlchemy or redis themselves.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

from tests.conftest import ROOT

SOURCE = ROOT / "source"
FOUNDATIONS = ("source.platform", "source.domain", "source.instruments")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_modules() -> dict[str, Path]:
    return {
        module_name(p): p
        for p in sorted(SOURCE.rglob("*.py"))
        if "migrations" not in p.relative_to(SOURCE).parts  # Alembic loads those files itself
    }


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Every module ``path`` imports when it runs (imports under ``if TYPE_CHECKING:`` never run)."""
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and _type_checking_only(node):
                visit(node.orelse)
                continue
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    submodule = f"{node.module}.{alias.name}"
                    found.add(submodule if submodule in known else node.module)
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    visit([child])

    visit(ast.parse(path.read_text()).body)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = source_modules()
    known = set(modules)
    return {name: imports_of(path, known) for name, path in modules.items()}


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    within = {name: {m for m in imported if m in graph and m != name} for name, imported in graph.items()}
    try:
        order = list(TopologicalSorter(within).static_order())
    except CycleError as exc:
        pytest.fail(f"import cycle: {' → '.join(exc.args[1])}")
    assert set(order) == set(graph)


def reaches(imported: str, forbidden: tuple[str, ...]) -> bool:
    return any(imported == f or imported.startswith(f + ".") for f in forbidden)


def test_foundations_know_nothing_of_streamlit_the_web_glue_or_the_labs() -> None:
    graph = import_graph()
    offences = [
        f"{name} imports {imported}"
        for name, imports in graph.items()
        if reaches(name, FOUNDATIONS)
        for imported in imports
        if reaches(imported, ("streamlit", "source.web", "source.labs", "views"))
    ]
    assert not offences, offences


def test_only_the_web_glue_knows_streamlit() -> None:
    graph = import_graph()
    offences = [
        f"{name} imports {imported}"
        for name, imports in graph.items()
        if not reaches(name, ("source.web",))
        for imported in imports
        if reaches(imported, ("streamlit", "source.web"))
    ]
    assert not offences, offences


def test_pages_call_source_and_never_a_driver() -> None:
    pages = sorted((ROOT / "views").glob("*.py"))
    assert pages
    offences = [
        f"{page.name} imports {imported}"
        for page in pages
        for imported in imports_of(page, set())
        if reaches(imported, ("sqlalchemy", "redis", "asyncpg", "aiosqlite", "fakeredis"))
    ]
    assert not offences, offences


#: Imports each module first in a clean slate of ``source`` modules, so a cycle that only bites
#: when that module is the entry point shows up as the ImportError a learner's notebook would get.
IMPORT_EACH_FIRST = """
import importlib, sys
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "source" or m.startswith("source.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{name}: {type(exc).__name__}: {exc}")
print("\\n".join(failed))
"""


def test_every_module_imports_on_its_own() -> None:
    names = sorted(source_modules())
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH_FIRST, *names],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "", done.stdout
