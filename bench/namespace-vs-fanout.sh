#!/usr/bin/env bash
# The namespace envelope's cost: Switchboard's Jac channel fan-out and the same fan-out in namespace
# envelopes (`namespace` scenario), against one server process, alternating the two scenarios in
# every repetition so both see the same machine load.
#
#   bench/namespace-vs-fanout.sh [--reps N] [--subscribers "1000 10000"] [--secs 10]
#
# Server pinned to core $SERVER_CPU (default 0), generator to $GEN_CPU (default 1), port
# $BENCH_PORT (default 18600). Records: $BENCH_OUT (default bench/records/<UTC date-time>-namespace)
# /results/<scenario>-s<S>-flat-switchboard-<rep>.json, with command.txt, machine.txt and
# report.md (medians with min-max, as BENCHMARKS.md shows them).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
reps=3
subscribers="1000 10000"
secs=10
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) reps="$2"; shift ;;
    --subscribers) subscribers="$2"; shift ;;
    --secs) secs="$2"; shift ;;
    -h|--help) sed -n 2,12p "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
SERVER_CPU="${SERVER_CPU:-0}"
GEN_CPU="${GEN_CPU:-1}"
port="${BENCH_PORT:-18600}"
SOURCES="${BENCH_SOURCES:-127.0.0.2,127.0.0.3,127.0.0.4}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
out="${BENCH_OUT:-$here/records/$(date -u +%Y-%m-%d-%H%M)-namespace}"
mkdir -p "$out/results" "$out/work"
(cd "$repo" && nice -n 15 cargo build --release -q -p switchboard-server -p switchboard-bench)
sb="$CARGO_TARGET_DIR/release/switchboard"
bench="$CARGO_TARGET_DIR/release/switchboard-bench"
{
  echo "bench/namespace-vs-fanout.sh --reps $reps --subscribers \"$subscribers\" --secs $secs"
  echo "# started $(date -u '+%Y-%m-%d %H:%M:%S UTC'); SERVER_CPU=$SERVER_CPU GEN_CPU=$GEN_CPU"
  echo "# revision: $(cd "$repo" && git rev-parse --short HEAD)$(cd "$repo" && git diff --quiet HEAD -- crates || echo ' + uncommitted changes')"
} >"$out/command.txt"
{ lscpu 2>/dev/null | head -20; nproc; uname -r; } >"$out/machine.txt"

taskset -c "$SERVER_CPU" "$sb" --listen "127.0.0.1:$port" --data-dir "$out/work/data" \
  --config "$here/configs/switchboard.toml" >"$out/work/server.log" 2>&1 &
server_pid=$!
trap 'kill $server_pid 2>/dev/null; wait $server_pid 2>/dev/null' EXIT
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
taskset -c "$GEN_CPU" "$bench" connect --addr "127.0.0.1:$port" --connections 200 --concurrency 50 \
  --sources "$SOURCES" >/dev/null 2>&1 || true

for s in $subscribers; do
  for rep in $(seq 1 "$reps"); do
    for scenario in fanout namespace; do
      taskset -c "$GEN_CPU" "$bench" "$scenario" --addr "127.0.0.1:$port" --server-pid "$server_pid" \
        --label switchboard --tag "s$s-flat" --sources "$SOURCES" --subscribers "$s" --window 64 \
        --duration "$secs" --drain 3 --out "$out/results/$scenario-s$s-flat-switchboard-$rep.json"
      sleep 1
    done
  done
done
"$bench" report --results "$out/results" --out "$out/report.md" --charts "$out/charts" \
  --command "bench/namespace-vs-fanout.sh --reps $reps --subscribers \"$subscribers\" --secs $secs"
echo "report: $out/report.md"
