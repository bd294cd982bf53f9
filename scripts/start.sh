#!/usr/bin/env bash
# Set up (idempotent) and start the app; it opens on a built-in example clip.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$(bash "$root/scripts/setup.sh" | tail -n 1)"
cd "$root"
port="${PORT:-8501}"
echo "DiffRes Explorer: open http://localhost:$port" >&2
exec "$venv/bin/streamlit" run app.py --server.port "$port" --server.headless true \
  --browser.gatherUsageStats false "$@"
