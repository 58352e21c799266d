#!/usr/bin/env bash
# Install the Jac Cloud peer (PyPI jac-cloud 0.2.11, Python 3.12) into bench/peers/.jac-venv and
# write the seed 000 chat example to bench/peers/jac/app.jac.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
py="${PYTHON312:-/root/.pyenv/versions/3.12.1/bin/python3.12}"
venv="$here/.jac-venv"
if [ ! -x "$venv/bin/jac" ]; then
  "$py" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q 'jac-cloud==0.2.11' sniffio
fi
"$here/jac/extract-seed.sh"
echo "jac-cloud installed: $venv/bin/jac"
