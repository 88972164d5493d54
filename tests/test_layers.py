"""The package's layers as a newcomer reads them from the tree, checked: no import cycle, no layer reaching up.

From the bottom: ``domain`` (models, DTOs, repositories, errors), ``platform`` (config, loop,
engines, sandboxes, jobs), ``instruments`` (query recorder, probes), ``services`` (units of work
several labs share), ``learning`` (questions, measurements, progress, the Create exercise), the
labs (one package each, never importing another), ``course`` (which labs there are) and the
public names in ``source/__init__``, then ``web`` (the only Streamlit glue) and the pages.
Imports under ``if TYPE_CHECKING:`` count too: a cycle a type checker needs is still a cycle.
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
#: Bottom to top; a module may import its own layer and the ones below it, never one above.
LAYERS = (
    ("source.domain",),
    ("source.platform",),
    ("source.instruments",),
    ("source.services",),
    ("source.learning",),
    ("source.labs",),
    ("source.course", "source"),
    ("source.web",),
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_modules() -> dict[str, Path]:
    """Every module of the package, the migrations included (Alembic loads them, but they import models)."""
    return {module_name(p): p for p in sorted(SOURCE.rglob("*.py"))}


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path, known: set[str], *, type_checking: bool = True) -> set[str]:
    """Every module ``path`` imports, those under ``if TYPE_CHECKING:`` included unless ``type_checking`` is off."""
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and _type_checking_only(node) and not type_checking:
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


def layer_of(module: str) -> int | None:
    """The index in :data:`LAYERS` of the most specific layer ``module`` belongs to (``source`` itself last)."""
    best: tuple[int, int] | None = None  # (length of the matching prefix, layer)
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            inside = module == prefix or (prefix != "source" and module.startswith(prefix + "."))
            if inside and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return None if best is None else best[1]


def test_every_module_belongs_to_a_layer() -> None:
    homeless = [name for name in source_modules() if layer_of(name) is None]
    assert not homeless, homeless


def test_no_layer_imports_one_above_it() -> None:
    graph = import_graph()
    offences = [
        f"{name} ({LAYERS[layer_of(name) or 0][0]}) imports {imported} ({LAYERS[above][0]})"
        for name, imports in graph.items()
        for imported in imports
        if imported in graph and (above := layer_of(imported)) is not None and above > (layer_of(name) or 0)
    ]
    assert not offences, offences


def lab_of(module: str) -> str | None:
    """``source.labs.<lab>`` for a module inside a lab's package; ``None`` elsewhere."""
    parts = module.split(".")
    return ".".join(parts[:3]) if len(parts) >= 3 and parts[:2] == ["source", "labs"] else None


def test_no_lab_imports_another_lab() -> None:
    graph = import_graph()
    offences = [
        f"{name} imports {imported}"
        for name, imports in graph.items()
        if (mine := lab_of(name)) is not None
        for imported in imports
        if (theirs := lab_of(imported)) is not None and theirs != mine
    ]
    assert not offences, offences


def test_no_page_or_web_glue_waits_with_time_sleep() -> None:
    """Long work runs as a job on the event loop: a script thread that sleeps is cut short by the next click."""
    scripts = [*sorted((ROOT / "views").glob("*.py")), *sorted((SOURCE / "web").rglob("*.py")), ROOT / "app.py"]
    offences = []
    for script in scripts:
        for node in ast.walk(ast.parse(script.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) in ("time.sleep", "sleep"):
                offences.append(f"{script.relative_to(ROOT)}:{node.lineno}")
    assert not offences, offences


def test_every_fragment_is_drawn_without_taking_a_seat() -> None:
    """A fragment's own rerun does not run ``app.py`` (which draws the page inside ``drawing()``): every
    ``st.fragment`` goes through ``source.web.seats.fragment``, so redrawing one never takes a seat."""
    scripts = [*sorted((ROOT / "views").glob("*.py")), *sorted((SOURCE / "web").rglob("*.py")), ROOT / "app.py"]
    wrapper = SOURCE / "web" / "seats.py"
    offences, wrapped = [], 0
    for script in scripts:
        for node in ast.walk(ast.parse(script.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "fragment" and ast.unparse(node.value) == "st":
                if script != wrapper:
                    offences.append(f"{script.relative_to(ROOT)}:{node.lineno}")
            elif isinstance(node, ast.Name) and node.id == "fragment" and script != wrapper:
                wrapped += 1
    assert not offences, offences
    assert wrapped >= 9, "the pages' fragments are drawn through the wrapper"


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
        for imported in imports_of(page, set(), type_checking=False)
        if reaches(imported, ("sqlalchemy", "redis", "asyncpg", "aiosqlite", "fakeredis"))
    ]
    assert not offences, offences


#: Imports each module first in a clean slate of ``source`` modules, so a cycle that only bites
#: when that module is the entry point shows up as the ImportError a learner's notebook would get.
#:
#: Python runs a module's parent packages before the module, so whichever module comes first,
#: ``source/__init__`` runs first, the same way each time: a module that a clean ``import source``
#: already loads is entered exactly as ``import source`` is, and that is tried once. Every other
#: module is imported first in a clean slate of its own.
IMPORT_EACH_FIRST = """
import importlib, sys

def forget_source():
    for loaded in [m for m in sys.modules if m == "source" or m.startswith("source.")]:
        del sys.modules[loaded]

def attempt(name):
    forget_source()
    try:
        importlib.import_module(name)
    except Exception as exc:
        return f"{name}: {type(exc).__name__}: {exc}"
    return None

names = sys.argv[1:]
first = attempt("source")
entered_by_source = {m for m in sys.modules if m == "source" or m.startswith("source.")} if first is None else set()
failed = [] if first is None else [first]
for name in names:
    if name not in entered_by_source and (message := attempt(name)) is not None:
        failed.append(message)
print("\\n".join(failed))
"""
#: The modules are shared out between this many interpreters, run side by side.
IMPORT_WORKERS = 2


def test_every_module_imports_on_its_own() -> None:
    names = sorted(n for n in source_modules() if ".migrations" not in n)  # Alembic runs those, inside a migration
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", IMPORT_EACH_FIRST, *names[share::IMPORT_WORKERS]],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for share in range(IMPORT_WORKERS)
    ]
    failed: list[str] = []
    try:
        for worker in workers:
            out, err = worker.communicate(timeout=300)
            assert worker.returncode == 0, err[-2000:]
            failed.extend(line for line in out.splitlines() if line.strip())
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    assert not failed, "\n".join(failed)
