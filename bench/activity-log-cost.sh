#!/usr/bin/env bash
# The activity log's cost (issue 13: recording may cost at most 5% of fan-out throughput): one
# release server binary run with `[stats] activity_log = true` and `= false`, a fresh server per
# run, the two alternating (on, off in odd repetitions, off, on in even ones) so both see the same
# machine load.
#
#   bench/activity-log-cost.sh [--wall] [--instructions] [--reps N] [--scenarios fanout,rpc,relay]
#                              [--secs S] [--sizes "N1 N2"]
#
# --wall (the default): wall clock as bench/run.sh measures it, the server pinned to core
#   $SERVER_CPU (default 0), the generator to $GEN_CPU (default 1), a 200-connection warm-up, then
#   --secs (default 5) of load; deliveries (calls) per second and the server process's CPU time
#   (every thread) per delivery (call). --reps (default 5) runs of each setting.
# --instructions: the server under `valgrind --tool=callgrind` (every thread counted), a fixed
#   amount of work instead of a fixed time, then SIGTERM so callgrind writes its totals. Each
#   scenario runs at two sizes (--sizes, a multiplier of the base amount, default "1 2"); the
#   instructions per delivery (call) are (I(big) - I(small)) / (D(big) - D(small)), which cancels
#   start-up, the connections, the login and shut-down. --reps (default 3) runs of each setting
#   and size. Needs valgrind; about 15 minutes for the three scenarios.
#   Base amounts: fanout 500 messages (500,000 deliveries), rpc 10,000 calls, relay 400 messages
#   per publisher (20,000 deliveries).
#
# Scenarios (Jac dialect, bench/configs/switchboard.toml plus the [stats] switch):
#   fanout  `fanout`: 1,000 subscribers of one channel, one publisher. Each message is recorded
#           twice (received from the publisher, sent to the channel) and delivered 1,000 times.
#   rpc     `rpc`: 50 clients calling the demo's `chat_service` walker (logged in), one call in
#           flight each. Each call is recorded once (received, `walker:chat_service`) and answered
#           to its caller alone.
#   relay   `rooms`: 50 channels of one subscriber, one publisher each. Each message is recorded
#           twice (received, sent) and delivered once: the most recording per delivery.
#
# Records: $BENCH_OUT or bench/records/<UTC date>-activity-log-<wall|instructions>/ with
# results/*.json (the generator's records), command.txt, machine.txt, load.txt (`uptime` before
# each run), summary.txt (the figures BENCHMARKS.md quotes) and, per run, the activity-log drops
# the server logged (wall: drops.txt; instructions: in instructions.txt, with callgrind's total
# per run); wall mode also syscalls.txt (the server's read and write system calls over each run).
# Server logs and callgrind.out files stay in work/ and logs/, which are not committed.
# Port $BENCH_PORT (default 18700). BENCH_SERVER_BIN=PATH measures that server binary instead.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
# As bench/run.sh: a session of our own with a raised weight (see bench/lib.sh).
own_session "$0" "$@"
repo="$(cd "$here/.." && pwd)"
modes=()
reps=""
scenarios="fanout,rpc,relay"
secs=5
sizes="1 2"
args_given="$*"
while [ $# -gt 0 ]; do
  case "$1" in
    --wall) modes+=(wall) ;;
    --instructions) modes+=(instructions) ;;
    --reps) reps="$2"; shift ;;
    --scenarios) scenarios="$2"; shift ;;
    --secs) secs="$2"; shift ;;
    --sizes) sizes="$2"; shift ;;
    -h|--help) sed -n 2,38p "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
[ ${#modes[@]} -eq 0 ] && modes=(wall)
read -r -a size_list <<<"$sizes"
if [ "${#size_list[@]}" -ne 2 ]; then echo "--sizes takes two multipliers" >&2; exit 2; fi

SERVER_CPU="${SERVER_CPU:-0}"
GEN_CPU="${GEN_CPU:-1}"
port="${BENCH_PORT:-18700}"
SOURCES="${BENCH_SOURCES:-127.0.0.2,127.0.0.3,127.0.0.4}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"

echo "== building (nice 15, target $CARGO_TARGET_DIR)"
(cd "$repo" && nice -n 15 cargo build --release -q -p switchboard-server -p switchboard-bench) || exit 1
sb="${BENCH_SERVER_BIN:-$CARGO_TARGET_DIR/release/switchboard}"
bench="$CARGO_TARGET_DIR/release/switchboard-bench"
revision="$(cd "$repo" && git rev-parse --short HEAD)$(cd "$repo" && git diff --quiet HEAD -- crates || echo ' + uncommitted changes')"
revision="$revision; server binary $sb built $(date -u -r "$sb" '+%Y-%m-%d %H:%M UTC')"

server_pid=""
# stop_server SECONDS: stop the server (under callgrind, SIGTERM lets it write its totals).
stop_server() {
  local pid="$server_pid"
  server_pid=""
  stop_pid "$pid" "${1:-10}"
}
trap 'stop_server 5' EXIT

# write_configs DIR [EXTRA]: DIR/on.toml and DIR/off.toml, the bench config with the log
# switched on and off, and EXTRA (TOML) appended to both.
write_configs() {
  local dir="$1" extra="${2:-}" log
  mkdir -p "$dir"
  for log in on off; do
    {
      cat "$here/configs/switchboard.toml"
      printf '\n[stats]\nactivity_log = %s\n' "$([ "$log" = on ] && echo true || echo false)"
      [ -n "$extra" ] && printf '\n%s\n' "$extra"
    } >"$dir/$log.toml"
  done
}

# The order of the two settings in repetition REP: on, off, then off, on (drift cancels).
order() { if [ $(($1 % 2)) -eq 1 ]; then echo "on off"; else echo "off on"; fi; }

# Events the activity log dropped (its queue full), from the server's log: it warns at the first
# drop and every 10,000th with the count so far, so this is the largest count warned (0: none),
# short of the true count by at most 9,999. With drops, the log-on figure is the cost of a log
# that misses those events.
drops_in() {
  local n
  n="$(grep 'activity log queue full' "$1" 2>/dev/null | grep -o 'dropped=[0-9]*' | cut -d= -f2 | sort -n | tail -1)"
  echo "${n:-0}"
}

# scenario_args SCENARIO MODE SIZE: the generator's command line for one run. Wall: for --secs;
# instructions: a fixed amount of work (SIZE times the base), with time limits that never bind.
scenario_args() {
  local scenario="$1" mode="$2" size="$3"
  case "$scenario/$mode" in
    fanout/wall) echo "fanout --tag s1000-flat --subscribers 1000 --window 64 --duration $secs --drain 3" ;;
    fanout/instructions)
      echo "fanout --tag s1000-m$((500 * size)) --subscribers 1000 --window 16 --max-messages $((500 * size))" \
        "--duration 3600 --drain 30 --concurrency 20 --handshake-timeout 300" ;;
    rpc/wall) echo "rpc --tag c50 --clients 50 --duration $secs --login" ;;
    rpc/instructions)
      echo "rpc --tag c50-calls$((10000 * size)) --clients 50 --max-calls $((10000 * size)) --duration 3600" \
        "--login --handshake-timeout 300" ;;
    relay/wall) echo "rooms --tag m50k1-flat --rooms 50 --per-room 1 --window 64 --duration $secs --drain 3" ;;
    relay/instructions)
      echo "rooms --tag m50k1-m$((400 * size)) --rooms 50 --per-room 1 --window 64 --max-messages $((400 * size))" \
        "--duration 3600 --drain 30 --handshake-timeout 300" ;;
    *) echo "unknown scenario: $scenario" >&2; return 1 ;;
  esac
}

# prepare OUT MODE: the record directory, command.txt and machine.txt.
prepare() {
  local out="$1" mode="$2"
  rm -rf "$out/results" "$out/logs" "$out/work"
  mkdir -p "$out/results" "$out/logs" "$out/work"
  rm -f "$out/load.txt" "$out/instructions.txt" "$out/drops.txt" "$out/syscalls.txt"
  {
    echo "bench/activity-log-cost.sh $args_given"
    echo "# this directory: --$mode; started $(date -u '+%Y-%m-%d %H:%M:%S UTC'); SERVER_CPU=$SERVER_CPU" \
      "GEN_CPU=$GEN_CPU BENCH_PORT=$port BENCH_SOURCES=$SOURCES"
    echo "# revision: $revision"
    [ "$mode" = instructions ] && echo "# $(valgrind --version 2>&1)"
  } >"$out/command.txt"
  {
    echo '$ grep -m1 "model name" /proc/cpuinfo'; grep -m1 'model name' /proc/cpuinfo
    echo '$ lscpu | head -20'; lscpu 2>/dev/null | head -20
    echo '$ nproc'; nproc
    echo '$ uname -r'; uname -r
    echo '$ free -m'; free -m 2>/dev/null
    echo '$ uptime (at the start)'; uptime
  } >"$out/machine.txt"
}

log_load() { echo "$1 $(uptime)" >>"$2/load.txt"; }

# syscalls_of PID: the server's read and write system calls so far (syscr syscw of
# /proc/PID/io; sockets' read/write/readv/writev count, sendmsg/recvmsg do not). The log itself
# makes none, but it changes the order tasks run in, and so how many frames go out per write.
syscalls_of() { awk '/^syscr:/ {r = $2} /^syscw:/ {w = $2} END {print r + 0, w + 0}' "/proc/$1/io" 2>/dev/null || echo "0 0"; }

run_wall() {
  local out="${BENCH_OUT:-$here/records/$(date -u +%Y-%m-%d)-activity-log-wall}"
  local r="${reps:-5}" rep scenario log args name logf
  prepare "$out" wall
  write_configs "$out/work"
  for rep in $(seq 1 "$r"); do
    for scenario in ${scenarios//,/ }; do
      for log in $(order "$rep"); do
        name="$scenario-log-$log-$rep"
        logf="$out/logs/$name.log"
        rm -rf "$out/work/data"
        (cd "$out/work" && exec taskset -c "$SERVER_CPU" "$sb" --listen "127.0.0.1:$port" \
          --data-dir "$out/work/data" --config "$out/work/$log.toml") >"$logf" 2>&1 &
        server_pid=$!
        if ! wait_ready "$port" "$server_pid" 30; then echo "   $name: server did not start; see $logf" >&2; stop_server; continue; fi
        taskset -c "$GEN_CPU" "$bench" connect --addr "127.0.0.1:$port" --connections 200 \
          --concurrency 50 --sources "$SOURCES" >/dev/null 2>&1
        sleep 1
        log_load "$name" "$out"
        read -r -a args <<<"$(scenario_args "$scenario" wall 1)"
        io_before="$(syscalls_of "$server_pid")"
        timeout 300 taskset -c "$GEN_CPU" "$bench" "${args[@]}" --addr "127.0.0.1:$port" \
          --server-pid "$server_pid" --label "log-$log" --sources "$SOURCES" \
          --out "$out/results/$name.json" || echo "   $name failed (exit $?)"
        echo "$name $io_before $(syscalls_of "$server_pid")" >>"$out/syscalls.txt"
        stop_server 10
        echo "$name activity_log_dropped_at_least=$(drops_in "$logf")" >>"$out/drops.txt"
      done
    done
  done
  summarize wall "$out"
}

run_instructions() {
  command -v valgrind >/dev/null || { echo "--instructions needs valgrind" >&2; return 1; }
  local out="${BENCH_OUT:-$here/records/$(date -u +%Y-%m-%d)-activity-log-instructions}"
  local r="${reps:-3}" rep scenario log size args name logf cg total
  prepare "$out" instructions
  # No heartbeat pings during a run: under valgrind a run takes minutes, and pings every 30 s
  # would add work in proportion to the time taken instead of the messages sent.
  write_configs "$out/work" "$(printf '[heartbeat]\ninterval_ms = 3600000')"
  echo "# scenario log size rep instructions units (deliveries or calls) activity_log_dropped_at_least" \
    >"$out/instructions.txt"
  for rep in $(seq 1 "$r"); do
    for scenario in ${scenarios//,/ }; do
      for size in "${size_list[@]}"; do
        for log in $(order "$rep"); do
          name="$scenario-x$size-log-$log-$rep"
          logf="$out/logs/$name.log"
          cg="$out/work/callgrind.out.$name"
          rm -rf "$out/work/data"
          (cd "$out/work" && exec taskset -c "$SERVER_CPU" valgrind --tool=callgrind \
            --collect-atstart=yes --callgrind-out-file="$cg" --log-file="$out/logs/$name.valgrind.log" \
            "$sb" --listen "127.0.0.1:$port" --data-dir "$out/work/data" \
            --config "$out/work/$log.toml") >"$logf" 2>&1 &
          server_pid=$!
          if ! wait_ready "$port" "$server_pid" 300; then echo "   $name: server did not start; see $logf" >&2; stop_server; continue; fi
          log_load "$name" "$out"
          read -r -a args <<<"$(scenario_args "$scenario" instructions "$size")"
          timeout 3600 taskset -c "$GEN_CPU" "$bench" "${args[@]}" --addr "127.0.0.1:$port" \
            --server-pid "$server_pid" --label "log-$log" --sources "$SOURCES" \
            --out "$out/results/$name.json" || echo "   $name failed (exit $?)"
          stop_server 300
          # `totals:` is the instruction count of the whole process, every thread (valgrind's
          # "Collected" figure); user space only: the kernel's work for the sockets is not in it.
          total="$(grep -m1 '^totals:' "$cg" 2>/dev/null | awk '{print $2}')"
          echo "$scenario $log $size $rep ${total:-missing} $(units "$out/results/$name.json") $(drops_in "$logf")" \
            >>"$out/instructions.txt"
          echo "   $name: ${total:-missing} instructions"
        done
      done
    done
  done
  summarize instructions "$out"
}

# units RECORD: deliveries received (fanout, relay) or calls answered (rpc).
units() {
  jq -r '.metrics | (.deliveries_received // .calls // "missing")' "$1" 2>/dev/null || echo missing
}

summarize() {
  local mode="$1" out="$2"
  python3 "$here/tools/activity_log_summary.py" "$mode" "$out" >"$out/summary.txt"
  {
    echo '$ uptime (at the end)'; uptime
  } >>"$out/machine.txt"
  cat "$out/summary.txt"
  echo "== records in ${out#"$repo"/} (logs/ and work/ are not committed)"
}

for mode in "${modes[@]}"; do
  case "$mode" in
    wall) run_wall ;;
    instructions) run_instructions ;;
  esac
done
