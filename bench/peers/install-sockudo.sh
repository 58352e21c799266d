#!/usr/bin/env bash
# Install the Sockudo peer (Rust, Pusher protocol) from crates.io into bench/peers/.sockudo.
# Needs protoc (Debian package protobuf-compiler). Long: a full release build of sockudo.
# A binary installed before the Redis and NATS adapters were asked for cannot run `cluster`:
# delete bench/peers/.sockudo and run this again.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/.sockudo"
if [ -x "$root/bin/sockudo" ]; then echo "sockudo already installed: $root/bin/sockudo"; exit 0; fi
if ! command -v protoc >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler
fi
# A target dir of its own so the build never blocks the workspace's.
export CARGO_TARGET_DIR="${SOCKUDO_TARGET_DIR:-/work/target-sockudo}"
# The Redis and NATS adapters are cargo features (the default build is single node only); the
# `cluster` scenario runs Sockudo over both.
features=redis,nats
nice -n 15 cargo install --locked sockudo --version '^5.2' --features "$features" --root "$root" \
  || nice -n 15 cargo install sockudo --version '^5.2' --features "$features" --root "$root"
"$root/bin/sockudo" --version || true
