"""Community Cloud readiness: secrets from st.secrets alone, bounded requirements, nothing written outside temp."""

from __future__ import annotations

import os
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from source import Settings
from tests.conftest import (
    PG_URL,
    REDIS_URL,
    ROOT,
    assert_no_exception,
    configure_app,
    open_app,
    page_text,
    unavailable,
)
from tests.test_lab1_page import create_user
from tests.test_learning_create import GOOD, fill

CACHES = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}


def test_backends_come_from_streamlit_secrets_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    from streamlit.testing.v1 import AppTest

    secrets = {"DATABASE_URL": PG_URL.replace("postgresql+asyncpg://", "postgres://"), "REDIS_URL": REDIS_URL}
    configure_app(secrets)  # the URL as hosts hand it out
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    for key, value in secrets.items():
        at.secrets[key] = value
    at.run()
    assert_no_exception(at)
    text = page_text(at)
    if "unreachable" in text:
        unavailable("PostgreSQL or Redis unreachable from the app")
    assert "PostgreSQL ·" in text
    assert "Redis ·" in text
    assert "fakeredis" not in text
    assert "You are looking around" in text, "a visit takes no seat"
    at.switch_page("views/lab1_data_models.py").run()
    create_user(at, "secrets@example.com", "Secrets")  # the first action takes one
    assert "schema `plab_" in " ".join(c.value for c in at.sidebar.caption), "the learner's sandbox is a schema"


def test_the_secrets_example_documents_both_urls() -> None:
    example = tomllib.loads((ROOT / ".streamlit" / "secrets.toml.example").read_text())
    assert set(example) == {"DATABASE_URL", "REDIS_URL"}
    settings = Settings.load(example) if not (os.environ.get("DATABASE_URL") or os.environ.get("REDIS_URL")) else None
    if settings is not None:
        assert settings.database_url is not None
        assert settings.database_url.startswith("postgresql+asyncpg://")
    assert ".streamlit/secrets.toml" in (ROOT / ".gitignore").read_text(), "the real secrets file is never committed"


def test_requirements_have_both_bounds_and_hold_what_is_tested() -> None:
    lines = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if line and not line.startswith("#")]
    for line in lines:
        requirement = Requirement(line)
        operators = {spec.operator for spec in requirement.specifier}
        assert {">=", "<"} <= operators, f"{line}: needs a lower and an upper bound"
        assert requirement.specifier.contains(version(requirement.name)), f"{line}: the tested version is outside"


def _files(root: Path) -> set[Path]:
    """Every file under ``root``, without caches, git's own files and the test script's virtual environments."""
    found: set[Path] = set()
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in CACHES and d != ".git" and not d.startswith(".venv")]
        found.update(Path(folder, name) for name in files if name != ".git")
    return found


def test_nothing_is_written_outside_the_temporary_directory(app_env: str, tmp_path: Path) -> None:
    home = Path.home()
    watched = [ROOT, home / ".streamlit", home / ".cache"]
    before = {root: _files(root) for root in watched}
    at = create_user(open_app("views/lab1_data_models.py"), "disk@example.com", "Disk")
    at.switch_page("views/lab2_connectivity.py").run()
    at.checkbox(key="lab2_compare").set_value(False)
    at.number_input(key="lab2_k").set_value(20)
    at.button(key="lab2_run").click().run()
    at.switch_page("views/create_exercise.py").run()
    at = fill(at, GOOD)
    at.switch_page("views/instructor.py").run()
    at.button(key="ins_seed").click().run()
    assert_no_exception(at)
    for root in watched:
        assert _files(root) - before[root] == set(), f"new files under {root}"
