#!/usr/bin/env bash
# Install what the tests need, then run the whole suite: lint, types, tests.
# PostgreSQL/Redis tests run against TEST_DATABASE_URL / TEST_REDIS_URL (defaults: the
# local servers); without them they are skipped, unless PLAB_REQUIRE_SERVICES=1.
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt

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

python -m ruff check .
python -m ruff format --check .
python -m mypy
python -m pytest --durations=25 "$@"
