#!/usr/bin/env bash
# Install the Node peers (npm socket.io 4 and ws) into bench/peers/node/node_modules.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/node"
npm install --no-audit --no-fund --silent
node -e 'console.log("socket.io", require("socket.io/package.json").version, "ws", require("ws/package.json").version)'
