#!/usr/bin/env bash
# Install what the tests need, then run the whole suite: lint, types, tests.
#
#   PYTHON=python3.12 bash scripts/test.sh            # the suite on one interpreter (default: python3)
#   RENDER_PYTHONS="python3.11 python3.13" bash scripts/test.sh
#                                                     # first, every page renders on each of those too
#
# Each interpreter gets its own virtual environment, venv-<major.minor>/ under $PLAB_VENV_HOME (default
# ~/.cache/persistence-lab, so a fresh clone reuses it), holding requirements-dev.txt. It is made once and reused: pip runs again only when a requirements file or
# the interpreter changes (their hash is kept in the environment), so a second run starts testing at once.
# PostgreSQL/Redis tests run against TEST_DATABASE_URL / TEST_REDIS_URL (defaults: the local servers);
# without them they are skipped, unless PLAB_REQUIRE_SERVICES=1.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
RENDER_PYTHONS="${RENDER_PYTHONS:-}"
VENV_HOME="${PLAB_VENV_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/persistence-lab}"
mkdir -p "$VENV_HOME"

# The environment for one interpreter, made or brought up to date; prints its folder.
venv_for() {
  local python="$1" version venv stamp want
  if ! version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)"; then
    echo "scripts/test.sh: '$python' is not a Python interpreter on this machine (PATH: $PATH)." >&2
    return 1
  fi
  venv="$VENV_HOME/venv-$version"
  stamp="$venv/.requirements.sha256"
  want="$({ "$python" -VV; cat requirements.txt requirements-dev.txt; } | sha256sum | cut -d' ' -f1)"
  if ! "$venv/bin/python" -c '' 2>/dev/null || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "Python $version: installing requirements-dev.txt into $venv/ (once; reused until a requirements file changes)" >&2
    "$venv/bin/python" -c '' 2>/dev/null || "$python" -m venv --clear "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt >&2
    echo "$want" >"$stamp"
  fi
  echo "$venv"
}

# The browser test drives Debian's Chromium (never a browser downloaded by a test tool). Its screenshots
# need a colour emoji font, or every emoji on a page shows as a missing-glyph box.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
dpkg-query -W -f='${Status}' fonts-noto-color-emoji 2>/dev/null | grep -q "install ok installed" ||
  missing+=(fonts-noto-color-emoji)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  elif ! command -v chromium >/dev/null 2>&1; then
    echo "chromium is not installed: the real-browser test will be skipped (apt-get install chromium)."
  else
    echo "fonts-noto-color-emoji is not installed: emoji in screenshots show as boxes."
  fi
fi

# Every page renders on each other interpreter (the tests marked `render`: fast, no browser).
for python in $RENDER_PYTHONS; do
  venv="$(venv_for "$python")"
  echo "== $("$venv/bin/python" --version): every page renders (pytest -m render)"
  PATH="$venv/bin:$PATH" VIRTUAL_ENV="$venv" "$venv/bin/python" -m pytest -q -m render -p no:cacheprovider
done

# The whole suite on the main interpreter. Its environment comes first on PATH, so anything the tests
# start by name (the notebook's kernel) runs on the same interpreter and packages.
venv="$(venv_for "$PYTHON")"
export PATH="$venv/bin:$PATH" VIRTUAL_ENV="$venv"
echo "== $(python --version): lint, types and the whole suite"
python -m ruff check .
python -m ruff format --check .
python -m mypy
python -m pytest --durations=25 "$@"
