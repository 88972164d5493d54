"""The curriculum's section 6 runs as written outside the app: CachedUserRepository with the
notebook's own Redis client, miss then hit, and a miss again after invalidation."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REDIS_URL, ROOT
from tests.test_course_api import course_env  # noqa: F401 - the notebook's environment, per backend

SCRIPT = ROOT / "tests" / "course" / "curriculum_section_6.py"


def test_curriculum_section_6_runs_as_written(course_env: dict[str, str]) -> None:  # noqa: F811
    env = dict(course_env)
    if "DATABASE_URL" in env:  # the services run: the notebook's client talks to the real Redis
        env["REDIS_URL"] = REDIS_URL
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout)
    assert seen["first"] == ["miss", "Alex Smith", True]
    assert seen["second"] == ["hit", "Alex Smith"]
    assert seen["score_first"] == ["miss", 85.5]
    assert seen["score_second"] == ["hit", 85.5]
    assert seen["after_invalidation"] == ["miss", "Alex Smith"]
    assert seen["counts"] == {"hits": 2, "misses": 3}
