#!/usr/bin/env bash
# The same fan-out through the Jac dialect (`fanout`) and the channel dialect (`channel`),
# alternating, a fresh server for every run, so both see the same machine state:
#
#   bench/tools/fanout-vs-channel.sh [PAIRS] [SUBSCRIBERS]     (default 4 pairs, S = 1000)
#
# Server on core 0, generator on core 1, in a session of its own with a raised autogroup weight
# (as bench/run.sh), with bench/configs/switchboard.toml. Records: bench/records/<UTC date>-fanout-vs-channel-s<S>/results/.
# Build first: cargo build --release -p switchboard-server -p switchboard-bench
set -u
if [ -z "${BENCH_SESSION:-}" ] && command -v setsid >/dev/null; then
  BENCH_SESSION=1 exec setsid -w "$0" "$@"
fi
[ -w /proc/self/autogroup ] && echo -10 >/proc/self/autogroup
pairs="${1:-4}"
subscribers="${2:-1000}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"
out="bench/records/$(date -u +%Y-%m-%d)-fanout-vs-channel-s$subscribers"
mkdir -p "$out/results"
echo "bench/tools/fanout-vs-channel.sh $pairs $subscribers  # $(date -u '+%Y-%m-%d %H:%M UTC'), $(git rev-parse --short HEAD)" >"$out/command.txt"
data="$(mktemp -d)"
for rep in $(seq 1 "$pairs"); do
  for scenario in fanout channel; do
    rm -rf "$data/server"
    taskset -c 0 target/release/switchboard --listen 127.0.0.1:18620 --data-dir "$data/server" \
      --config bench/configs/switchboard.toml >/dev/null 2>&1 &
    pid=$!
    sleep 1
    timeout 120 taskset -c 1 target/release/switchboard-bench "$scenario" --addr 127.0.0.1:18620 \
      --server-pid "$pid" --label switchboard --tag "s$subscribers-flat" --sources 127.0.0.2,127.0.0.3,127.0.0.4 \
      --subscribers "$subscribers" --window 64 --duration 10 --drain 3 \
      --out "$out/results/$scenario-s$subscribers-flat-switchboard-$rep.json"
    kill "$pid"
    wait "$pid" 2>/dev/null
    sleep 1
  done
done
rm -rf "$data"
