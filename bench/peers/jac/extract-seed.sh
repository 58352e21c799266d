#!/usr/bin/env bash
# Build app.jac from the seed 000 document: every ```jac block that declares a walker
# Comments in // form are removed (jaclang 0.9 rejects them).
# (chat_service from "Step 1" and the two walkers of the "Complete Example").
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
seed="$(ls ${SEEDS_DIR:-/work/shared/seeds}/000_*.txt | head -1)"
awk '
  /^```jac/ { inblock = 1; buf = ""; next }
  /^```/ && inblock { inblock = 0; if (buf ~ /walker /) blocks = blocks buf "\n"; next }
  inblock { buf = buf $0 "\n" }
  END {
    # imports first (once), then the walkers; the module docstring of the example is dropped
    n = split(blocks, lines, "\n")
    for (i = 1; i <= n; i++) if (lines[i] ~ /^import /) { print lines[i]; break }
    for (i = 1; i <= n; i++) {
      if (lines[i] ~ /^import / || lines[i] ~ /^"""/) continue
      # jaclang 0.9 (pinned by jac-cloud 0.2.11) has no // comments; the seed uses them
      line = lines[i]; sub(/[ \t]*\/\/.*$/, "", line)
      print line
    }
  }' "$seed" > "$here/app.jac"
echo "wrote $here/app.jac from $seed"
