"""Every lab page stays thin: prose and calls to panels, the decisions in the lab's actions.

A page that grows its own branches is a page whose logic no test reaches without a browser.
So each ``views/lab*.py`` stays under :data:`MAX_LINES` lines, with at most :data:`MAX_BRANCHES`
places where it chooses (``if``, ``for``, ``while``, ``and``/``or``, a ternary, a comprehension's
``for`` and ``if``, a ``match`` case, an ``except``), counted from its syntax tree.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PAGES = sorted((ROOT / "views").glob("lab*.py"))
MAX_LINES = 130
MAX_BRANCHES = 12


def branches(tree: ast.AST) -> list[str]:
    """Each place the code chooses, as ``line: what``; ``a and b and c`` counts twice, like two ``if``s."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.If | ast.IfExp | ast.For | ast.AsyncFor | ast.While):
            found.append((node.lineno, type(node).__name__))
        elif isinstance(node, ast.match_case):
            found.append((node.pattern.lineno, "case"))
        elif isinstance(node, ast.ExceptHandler):
            found.append((node.lineno, "except"))
        elif isinstance(node, ast.BoolOp):
            found += [(node.lineno, type(node.op).__name__.lower())] * (len(node.values) - 1)
        elif isinstance(node, ast.comprehension):
            found += [(node.target.lineno, "comprehension for")] + [(c.lineno, "comprehension if") for c in node.ifs]
    return [f"{line}: {what}" for line, what in sorted(found)]


def test_the_branch_counter_counts_what_it_says() -> None:
    code = "if a and b or c:\n    x = [i for i in y if i]\nelse:\n    z = 1 if q else 2\nfor k in w:\n    pass\n"
    assert len(branches(ast.parse(code))) == 1 + 2 + 2 + 1 + 1, branches(ast.parse(code))


def test_there_are_lab_pages_to_check() -> None:
    assert len(PAGES) >= 5, [p.name for p in PAGES]


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_a_lab_page_is_prose_and_panels(page: Path) -> None:
    text = page.read_text()
    lines = len(text.splitlines())
    found = branches(ast.parse(text))
    problems = []
    if lines >= MAX_LINES:
        problems.append(f"{lines} lines (a page stays under {MAX_LINES}): move its panels to source/web")
    if len(found) > MAX_BRANCHES:
        problems.append(
            f"{len(found)} places where it chooses (at most {MAX_BRANCHES}): move the decisions to the lab's "
            f"actions and the widgets to source/web: {found}"
        )
    assert not problems, f"{page.name}: " + "; ".join(problems)
