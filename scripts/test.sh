#!/usr/bin/env bash
# Set up (idempotent), check lint, format and types, then run the whole test suite: unit, app
# (AppTest) and browser tests.  Arguments go to pytest (e.g. a file and -x for a quick loop).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$(bash "$root/scripts/setup.sh" | tail -n 1)"
cd "$root"
checked=(diffres ui pages app.py)
"$venv/bin/ruff" check "${checked[@]}"
"$venv/bin/ruff" format --check "${checked[@]}"
"$venv/bin/mypy"  # files and settings: [tool.mypy] in pyproject.toml
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "$venv/bin/python" -m pytest "$@"
