#!/usr/bin/env bash
# Run the example backend in its own venv (created on first run): ./run.sh [port]
set -euo pipefail
cd "$(dirname "$0")"
VENV="${VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r requirements.txt
fi
PORT="${1:-${PORT:-9000}}" exec "$VENV/bin/python" app.py
