#!/usr/bin/env bash
# Side-by-side benchmarks: Switchboard against Sockudo, Socket.IO 4, a bare `ws` server and
# Jac Cloud, on this machine, in one run, with the same scenarios, pinning and warm-up.
#
#   bench/run.sh [--quick | --full] [--servers switchboard,sockudo,socketio,ws,jaccloud] [--reps N]
#                [--scenarios idle,connect,fanout,namespace,rooms,rpc,channel,presence,publish,cluster]
#
# --quick (default): 264 s of scenarios for Switchboard with Jac Cloud before idle also ran with
# --deflate (its connects are slow);
# more with every peer. --full runs the issue's whole matrix (S up to 18k).
# Every server is started fresh, pinned to core $SERVER_CPU (default 0); the generator runs on core
# $GEN_CPU (default 1). Each (scenario, server) pair runs $REPS times; BENCHMARKS.md reports the
# median with min-max. Peers that are not installed are reported as n/a; install them with
# bench/peers/install-*.sh. Records: bench/records/<UTC date-time>-<mode>/results/*.json (one per
# repetition) with command.txt and machine.txt beside them; commit that directory with BENCHMARKS.md,
# which names the record files behind each table. Server logs (logs/, work/) are not committed.
# BENCH_SERVER_BIN=PATH runs that Switchboard binary instead of this checkout's (BENCH_SERVER_REVISION
# names it in the records), so two builds can be compared under the same generator.
# Charts: bench/charts/*.svg.
# `publish` feeds a channel through each server's HTTP publish API (Switchboard's /api/publish,
# Sockudo's Pusher events API), one item and $PUBLISH_BATCHES items per request. `cluster` starts
# 2 and 3 nodes of each server joined by the local Redis (127.0.0.1:6379) or NATS (127.0.0.1:4222),
# Switchboard's accounts in PostgreSQL ($BENCH_DATABASE_URL, default the local `test` database),
# and the same load on one node; without those services it is reported n/a. The matrix of both can
# be narrowed with PUBLISH_BATCHES, CLUSTER_S, CLUSTER_NODES, CLUSTER_BACKPLANES, CLUSTER_PACES
# and CLUSTER_DELIVERIES, their lengths with PUBLISH_SECS and CLUSTER_SECS.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
own_session "$0" "$@"
repo="$(cd "$here/.." && pwd)"
mode=quick
servers="switchboard,sockudo,socketio,ws,jaccloud"
all_scenarios="idle,connect,fanout,namespace,rooms,rpc,channel,presence,publish,cluster"
scenarios=$all_scenarios
reps=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) mode=quick ;;
    --full) mode=full ;;
    --servers) servers="$2"; shift ;;
    --reps) reps="$2"; shift ;;
    --scenarios) scenarios="$2"; shift ;;
    -h|--help) sed -n 2,12p "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
command_line="bench/run.sh --$mode${reps:+ --reps $reps} --servers $servers"
[ "$scenarios" != "$all_scenarios" ] && command_line="$command_line --scenarios $scenarios"
wants() { case ",$scenarios," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

SERVER_CPU="${SERVER_CPU:-0}"
GEN_CPU="${GEN_CPU:-1}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
# Records go where they can be committed: every published figure must point at its records.
out="${BENCH_OUT:-$here/records/$(date -u +%Y-%m-%d-%H%M)-$mode}"
results="$out/results"
logs="$out/logs"
rm -rf "$results" "$logs"
mkdir -p "$results" "$logs"
{
  echo "$command_line"
  echo "# started $(date -u '+%Y-%m-%d %H:%M:%S UTC'); SERVER_CPU=${SERVER_CPU:-0} GEN_CPU=${GEN_CPU:-1}" \
    "BENCH_SOURCES=${BENCH_SOURCES:-default} BENCH_OUT=${BENCH_OUT:-default}" \
    "BENCH_EXTRA_RESULTS=${BENCH_EXTRA_RESULTS:-}"
  # The publish and cluster matrix, when narrowed or lengthened from the environment.
  env | grep -E '^(PUBLISH_(SECS|BATCHES)|CLUSTER_(S|SECS|NODES|BACKPLANES|PACES|DELIVERIES)|BENCH_DATABASE_URL)=' \
    | sort | sed 's/^/# environment: /'
} >"$out/command.txt"
{
  echo '$ lscpu | head -20'; lscpu 2>/dev/null | head -20
  echo '$ nproc'; nproc
  echo '$ uname -r'; uname -r
  echo '$ free -m'; free -m 2>/dev/null
} >"$out/machine.txt"

if [ "$mode" = quick ]; then
  reps="${reps:-3}"
  IDLE_N=5000; CONNECT_N=3000
  FANOUT_S="1000"; FANOUT_SECS=2
  CHANNEL_S="1000"; PRESENCE_N=1000
  RATE_S=1000; RATE=20
  ROOMS=100; PER_ROOM=10; ROOMS_RATE=10
  RPC_C=50; RPC_SECS=2
  PUBLISH_S=1000; PUBLISH_SECS="${PUBLISH_SECS:-2}"
  CLUSTER_S_DEFAULT="1000"; CLUSTER_SECS="${CLUSTER_SECS:-2}"
else
  reps="${reps:-5}"
  IDLE_N=18000; CONNECT_N=18000
  FANOUT_S="100 1000 10000 18000"; FANOUT_SECS=10
  CHANNEL_S="1000 10000"; PRESENCE_N=1000
  RATE_S=1000; RATE=50
  ROOMS=1000; PER_ROOM=10; ROOMS_RATE=5
  RPC_C=50; RPC_SECS=10
  PUBLISH_S=1000; PUBLISH_SECS="${PUBLISH_SECS:-10}"
  CLUSTER_S_DEFAULT="1000 10000"; CLUSTER_SECS="${CLUSTER_SECS:-10}"
fi
PUBLISH_BATCHES="${PUBLISH_BATCHES:-1 100}"
# A bench-only key, the one bench/configs/switchboard.toml declares.
PUBLISH_API_KEY=bench-publish-key-not-a-secret
CLUSTER_S="${CLUSTER_S:-$CLUSTER_S_DEFAULT}"
# The fixed-rate pass publishes CLUSTER_DELIVERIES / S messages per second (the same delivery
# load at every S); the flat-out pass keeps $WINDOW messages per subscriber in flight.
CLUSTER_DELIVERIES="${CLUSTER_DELIVERIES:-100000}"
CLUSTER_PACES="${CLUSTER_PACES:-flat rate}"
CLUSTER_NODES="${CLUSTER_NODES:-2 3}"
CLUSTER_BACKPLANES="${CLUSTER_BACKPLANES:-redis nats}"
CLUSTER_DATABASE_URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
WINDOW=64
# Client sockets come from these loopback addresses, the generator choosing source ports itself
# (the kernel's own choice scans the port range on every connect once thousands are in use).
SOURCES="${BENCH_SOURCES:-127.0.0.2,127.0.0.3,127.0.0.4}"

echo "== building (nice 15, target $CARGO_TARGET_DIR)"
if ! (cd "$repo" && nice -n 15 cargo build --release -q -p switchboard-server -p switchboard-bench); then
  if [ -x "$CARGO_TARGET_DIR/release/switchboard" ] && [ -x "$CARGO_TARGET_DIR/release/switchboard-bench" ]; then
    echo "   build failed (the tree is being edited?); using the binaries already in $CARGO_TARGET_DIR" >&2
  else
    exit 1
  fi
fi
revision="$(cd "$repo" && git rev-parse --short HEAD 2>/dev/null)$(cd "$repo" && git diff --quiet HEAD -- crates 2>/dev/null || echo ' + uncommitted changes')"
revision="$revision; switchboard binary built $(date -u -r "$CARGO_TARGET_DIR/release/switchboard" '+%Y-%m-%d %H:%M UTC')"
sb_bin="$CARGO_TARGET_DIR/release/switchboard"
if [ -n "${BENCH_SERVER_BIN:-}" ]; then
  # Another build of the server under the same generator (a before/after comparison).
  sb_bin="$BENCH_SERVER_BIN"
  revision="server $sb_bin${BENCH_SERVER_REVISION:+ (revision $BENCH_SERVER_REVISION)}; generator $revision"
fi
echo "# revision: $revision" >>"$out/command.txt"
bench="$CARGO_TARGET_DIR/release/switchboard-bench"

port_of() {
  case "$1" in
    switchboard) echo 18000 ;; sockudo) echo 18001 ;; socketio) echo 18002 ;; ws) echo 18003 ;; jaccloud) echo 18004 ;;
  esac
}
protocol_of() {
  case "$1" in
    switchboard|jaccloud) echo jac ;; sockudo) echo pusher ;; socketio) echo sio ;; ws) echo ws ;;
  esac
}
installed() {
  case "$1" in
    switchboard) [ -x "$sb_bin" ] ;;
    sockudo) [ -x "$here/peers/.sockudo/bin/sockudo" ] ;;
    socketio|ws) [ -d "$here/peers/node/node_modules/socket.io" ] && [ -d "$here/peers/node/node_modules/ws" ] ;;
    jaccloud) [ -x "$here/peers/.jac-venv/bin/jac" ] ;;
  esac
}

server_pid=""
start_server() {
  local name="$1" port; port="$(port_of "$1")"
  local log="$logs/$name-$(date +%s%N).log"
  local work="$out/work/$name"
  rm -rf "$work"; mkdir -p "$work"
  case "$name" in
    switchboard)
      (cd "$work" && exec taskset -c "$SERVER_CPU" "$sb_bin" --listen "127.0.0.1:$port" \
        --data-dir "$work/data" --config "$here/configs/switchboard.toml") >"$log" 2>&1 &
      ;;
    sockudo)
      (cd "$work" && set -a && . "$here/peers/sockudo.env" && PORT="$port" && set +a &&
        exec taskset -c "$SERVER_CPU" "$here/peers/.sockudo/bin/sockudo") >"$log" 2>&1 &
      ;;
    socketio)
      (cd "$work" && exec taskset -c "$SERVER_CPU" node "$here/peers/node/sio-server.js" "$port") >"$log" 2>&1 &
      ;;
    ws)
      (cd "$work" && exec taskset -c "$SERVER_CPU" node "$here/peers/node/ws-server.js" "$port") >"$log" 2>&1 &
      ;;
    jaccloud)
      "$here/peers/jac/extract-seed.sh" >/dev/null
      cp "$here/peers/jac/app.jac" "$work/app.jac"
      (cd "$work" && exec taskset -c "$SERVER_CPU" "$here/peers/.jac-venv/bin/jac" serve app.jac \
        --host 127.0.0.1 --port "$port") >"$log" 2>&1 &
      ;;
  esac
  server_pid=$!
  wait_ready "$port" "$server_pid" && return 0
  echo "   $name did not start; see $log" >&2
  stop_server
  return 1
}

stop_server() {
  stop_pid "$server_pid"
  server_pid=""
}

# Several nodes of one server for `cluster`, on consecutive ports from 18100 (Switchboard) or
# 18200 (Sockudo), every one pinned to $SERVER_CPU like a single server.
node_pids=()
node_port() { case "$1" in switchboard) echo $((18100 + $2)) ;; sockudo) echo $((18200 + $2)) ;; esac; }
backplane_url() { case "$1" in redis) echo redis://127.0.0.1:6379 ;; nats) echo nats://127.0.0.1:4222 ;; esac; }
backplane_port() { case "$1" in redis) echo 6379 ;; nats) echo 4222 ;; esac; }
# The pid of the process listening on the backplane's port (its CPU time is reported).
backplane_pid() {
  ss -Hltnp "sport = :$(backplane_port "$1")" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2
}
# start_nodes SERVER COUNT BACKPLANE (none: one plain node, no backplane)
start_nodes() {
  local name="$1" count="$2" backplane="$3" url i port work log
  url="$(backplane_url "$backplane")"
  for ((i = 0; i < count; i++)); do
    port="$(node_port "$name" "$i")"
    # Absolute: the node runs in it, and $out may be relative (BENCH_OUT=bench/records/...).
    work="$(cd "$out" && pwd)/work/$name-node-$i"
    log="$logs/$name-node-$i-$(date +%s%N).log"
    rm -rf "$work"; mkdir -p "$work"
    case "$name" in
      switchboard)
        local args=(--listen "127.0.0.1:$port" --data-dir "$work/data" --config "$here/configs/switchboard.toml")
        if [ "$backplane" != none ]; then
          # A cluster name of its own, so other users of the same Redis/NATS never mix with it.
          { cat "$here/configs/switchboard.toml"; printf '\n[cluster]\nname = "bench-%s"\n' "$$"; } >"$work/switchboard.toml"
          args=(--listen "127.0.0.1:$port" --data-dir "$work/data" --config "$work/switchboard.toml"
            --backplane "$url" --database-url "$CLUSTER_DATABASE_URL" --node-id "bench-node-$i")
        fi
        (cd "$work" && SWITCHBOARD_TOKEN_SECRET=bench-cluster-secret-not-a-secret \
          exec taskset -c "$SERVER_CPU" "$sb_bin" "${args[@]}") >"$log" 2>&1 &
        ;;
      sockudo)
        (cd "$work" && set -a && . "$here/peers/sockudo.env" && PORT="$port" &&
          INSTANCE_PROCESS_ID="bench-node-$i" &&
          if [ "$backplane" != none ]; then
            # Clustered, Sockudo refuses a node-local cache: its cache goes to the local Redis
            # whichever adapter carries the messages.
            ADAPTER_DRIVER="$backplane"; CACHE_DRIVER=redis; REDIS_URL="$(backplane_url redis)"
          fi &&
          if [ "$backplane" = nats ]; then NATS_SERVERS="$url"; fi &&
          set +a && exec taskset -c "$SERVER_CPU" "$here/peers/.sockudo/bin/sockudo") >"$log" 2>&1 &
        ;;
    esac
    node_pids+=($!)
    if ! wait_ready "$port" "$!"; then
      echo "   $name node $i did not start; see $log" >&2
      stop_nodes
      return 1
    fi
  done
}
stop_nodes() {
  local pid
  for pid in "${node_pids[@]}"; do stop_pid "$pid"; done
  node_pids=()
}
trap 'stop_server; stop_nodes' EXIT

# The machine's load just before each measurement (load.txt beside the results): other engineers'
# builds show here; the records carry the load at their end, which includes the run itself.
log_load() { echo "$1 $(uptime)" >>"$out/load.txt"; }

# Same warm-up for every server: 200 connections opened and closed.
warm_up() {
  local name="$1"
  taskset -c "$GEN_CPU" "$bench" connect --protocol "$(protocol_of "$name")" \
    --addr "127.0.0.1:$(port_of "$name")" --connections 200 --concurrency 50 --sources "$SOURCES" >/dev/null 2>&1
  sleep 1
}

na() {  # scenario server reason
  wants "$1" || return 0
  printf '{"scenario":"%s","server":"%s","na":"%s"}\n' "$1" "$2" "$3" \
    >"$results/$1-$2-na-$(date +%s%N).json"
  echo "   $1 $2: n/a ($3)"
}

# run SCENARIO SERVER KEY FRESH_EACH_REP ARGS...
run() {
  local scenario="$1" name="$2" key="$3" fresh="$4"; shift 4
  wants "$scenario" || return 0
  local extra=()
  # chat_service needs a logged-in user (seed 000 declares no auth for it), on every server
  [ "$scenario" = rpc ] && extra+=(--login)
  if [ "$fresh" = no ]; then start_server "$name" || { na "$scenario" "$name" "server did not start"; return; }; warm_up "$name"; fi
  for rep in $(seq 1 "$reps"); do
    if [ "$fresh" = yes ]; then
      start_server "$name" || { na "$scenario" "$name" "server did not start"; return; }
      warm_up "$name"
    fi
    log_load "$scenario-$key-$name-$rep"
    timeout 600 taskset -c "$GEN_CPU" "$bench" "$scenario" --protocol "$(protocol_of "$name")" \
      --addr "127.0.0.1:$(port_of "$name")" --server-pid "$server_pid" --label "$name" \
      --tag "$key" --out "$results/$scenario-$key-$name-$rep.json" --sources "$SOURCES" "${extra[@]}" "$@" \
      || echo "   $scenario $name rep $rep failed (exit $?)"
    [ "$fresh" = yes ] && stop_server
  done
  [ "$fresh" = no ] && stop_server
}

IFS=, read -r -a server_list <<<"$servers"
started_at=$(date +%s)
for name in "${server_list[@]}"; do
  if ! installed "$name"; then
    for s in ${all_scenarios//,/ }; do na "$s" "$name" "not installed (bench/peers/install-*.sh)"; done
    continue
  fi
  echo "== $name"
  # idle: a fresh server per repetition, so earlier connections cannot pre-grow its heap.
  run idle "$name" "n$IDLE_N" yes --connections "$IDLE_N" --settle 2 --hold 3
  # The same with permessage-deflate offered, as browsers do: a server that accepts it with context
  # takeover keeps compression state per connection (Jac Cloud: about 200 KB instead of 35 KB).
  run idle "$name" "n$IDLE_N-deflate" yes --connections "$IDLE_N" --settle 2 --hold 3 --deflate
  run connect "$name" "n$CONNECT_N" no --connections "$CONNECT_N"
  for s in $FANOUT_S; do
    run fanout "$name" "s$s-flat" no --subscribers "$s" --window "$WINDOW" --duration "$FANOUT_SECS" --drain 3
  done
  run fanout "$name" "s$RATE_S-rate$RATE" no --drain 3 --subscribers "$RATE_S" --rate "$RATE" --duration "$FANOUT_SECS"
  # The same fan-out in namespace envelopes (bench/configs/switchboard.toml declares `bench`).
  if [ "$name" = switchboard ]; then
    for s in $FANOUT_S; do
      run namespace "$name" "s$s-flat" no --subscribers "$s" --window "$WINDOW" --duration "$FANOUT_SECS" --drain 3
    done
  else
    na namespace "$name" "no namespace dialect (Switchboard's seed 003 endpoints)"
  fi
  run rooms "$name" "m${ROOMS}k$PER_ROOM-rate$ROOMS_RATE" no --rooms "$ROOMS" --per-room "$PER_ROOM" \
    --rate "$ROOMS_RATE" --duration "$FANOUT_SECS"
  case "$name" in
    switchboard|jaccloud)
      run rpc "$name" "c$RPC_C" no --clients "$RPC_C" --duration "$RPC_SECS" ;;
    sockudo) na rpc sockudo "Pusher protocol has no server-side handler that replies (no walkers)" ;;
    socketio) na rpc socketio "no walkers; a Socket.IO ack handler would measure a different thing" ;;
    ws) na rpc ws "bare broadcast server: no handlers" ;;
  esac
  # A backend feeding one channel over HTTP: one item per request, then batches.
  case "$name" in
    switchboard)
      for b in $PUBLISH_BATCHES; do
        run publish "$name" "s$PUBLISH_S-b$b" no --subscribers "$PUBLISH_S" --batch "$b" \
          --api-key "$PUBLISH_API_KEY" --window "$WINDOW" --duration "$PUBLISH_SECS" --drain 3
      done ;;
    sockudo)
      for b in $PUBLISH_BATCHES; do
        run publish "$name" "s$PUBLISH_S-b$b" no --subscribers "$PUBLISH_S" --batch "$b" \
          --window "$WINDOW" --duration "$PUBLISH_SECS" --drain 3
      done ;;
    *) na publish "$name" "no HTTP publish API" ;;
  esac
  # Switchboard's channel dialect (seed 004): the fan-out beside the Jac one, and presence storms.
  case "$name" in
    switchboard)
      for s in $CHANNEL_S; do
        run channel "$name" "s$s-flat" no --subscribers "$s" --window "$WINDOW" --duration "$FANOUT_SECS" --drain 3
      done
      run presence "$name" "m$PRESENCE_N" yes --members "$PRESENCE_N" ;;
    *)
      na channel "$name" "Switchboard's channel dialect (seed 004) only"
      na presence "$name" "Switchboard's channel dialect (seed 004) only" ;;
  esac
done
# run_cluster SERVER: the `cluster` matrix of one server; `n1` is one plain node, the baseline.
run_cluster() {
  local name="$1" s pace pacing n backplane tag bp_pid
  wants cluster || return 0
  for s in $CLUSTER_S; do
    for pace in $CLUSTER_PACES; do
      pacing=(--window "$WINDOW"); [ "$pace" = rate ] && pacing=(--rate "$((CLUSTER_DELIVERIES / s))")
      [ "$pace" = rate ] && pace="rate$((CLUSTER_DELIVERIES / s))"
      for n in 1 $CLUSTER_NODES; do
        for backplane in $CLUSTER_BACKPLANES; do
          [ "$n" = 1 ] && backplane=none
          # Sockudo on two nodes, as the issue compares it.
          if [ "$name" = sockudo ] && [ "$n" -gt 2 ]; then continue; fi
          tag="s$s-n1-$pace"
          bp_pid=""
          if [ "$backplane" != none ]; then
            tag="s$s-n$n-$backplane-$pace"
            bp_pid="$(backplane_pid "$backplane")"
            if [ -z "$bp_pid" ]; then
              echo "   cluster $name $tag: no $backplane server on port $(backplane_port "$backplane")"
              continue
            fi
          fi
          run_nodes "$name" "$n" "$backplane" "$tag" "$bp_pid" --subscribers "$s" "${pacing[@]}"
          [ "$n" = 1 ] && break
        done
      done
    done
  done
}
# run_nodes SERVER N BACKPLANE TAG BACKPLANE_PID ARGS...: $reps runs on N fresh nodes each.
run_nodes() {
  local name="$1" n="$2" backplane="$3" tag="$4" bp_pid="$5" rep i peers peer_pids
  shift 5
  for rep in $(seq 1 "$reps"); do
    start_nodes "$name" "$n" "$backplane" || { echo "   cluster $name $tag: nodes did not start"; return; }
    peers=""; peer_pids=""
    for ((i = 1; i < n; i++)); do
      peers="$peers${peers:+,}127.0.0.1:$(node_port "$name" "$i")"
      peer_pids="$peer_pids${peer_pids:+,}${node_pids[$i]}"
    done
    log_load "cluster-$tag-$name-$rep"
    timeout 600 taskset -c "$GEN_CPU" "$bench" cluster --protocol "$(protocol_of "$name")" \
      --addr "127.0.0.1:$(node_port "$name" 0)" ${peers:+--peers "$peers" --peer-pids "$peer_pids"} \
      --server-pid "${node_pids[0]}" --backplane "$backplane" ${bp_pid:+--backplane-pid "$bp_pid"} \
      --label "$name" --tag "$tag" --out "$results/cluster-$tag-$name-$rep.json" --sources "$SOURCES" \
      --duration "$CLUSTER_SECS" --drain 3 "$@" \
      || echo "   cluster $name $tag rep $rep failed (exit $?)"
    stop_nodes
  done
}
for name in "${server_list[@]}"; do
  case "$name" in
    switchboard|sockudo) installed "$name" && echo "== $name: cluster" && run_cluster "$name" ;;
    *) na cluster "$name" "the comparison is Sockudo's, whose adapters scale over Redis and NATS" ;;
  esac
done
elapsed=$(( $(date +%s) - started_at ))
echo "== scenarios took ${elapsed}s; writing BENCHMARKS.md"
# Combine with other result directories when asked (e.g. a quick run of every peer plus a full run).
extra_results=()
for d in ${BENCH_EXTRA_RESULTS:-}; do extra_results+=(--results "$d"); done
"$bench" report --results "$results" "${extra_results[@]}" --out "$repo/BENCHMARKS.md" --charts "$here/charts" \
  --command "$command_line" ${BENCH_EXTRA_COMMANDS:+--command "$BENCH_EXTRA_COMMANDS"} \
  --elapsed "$elapsed" --revision "$revision" --notes "$here/findings.md"
echo "== records in ${out#"$repo"/}: commit them with BENCHMARKS.md (logs/ and work/ are ignored)"
