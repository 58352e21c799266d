# Shell helpers the bench scripts share; source it after `set -uo pipefail`.
#
# own_session "$0" "$@": re-run the script in a session of its own with a raised scheduling
# weight. Linux groups processes by session (autogroup): `nice` only ranks processes within a
# session, so another session's niced build would still take half of a pinned core from the
# server under test. Raises only our processes' weight.
own_session() {
  if [ -z "${BENCH_SESSION:-}" ] && command -v setsid >/dev/null; then
    BENCH_SESSION=1 exec setsid -w "$@"
  fi
  if [ -w /proc/self/autogroup ]; then
    echo "${BENCH_AUTOGROUP_NICE:--10}" >/proc/self/autogroup 2>/dev/null || true
  fi
}

# wait_ready PORT PID [SECONDS]: until the port accepts connections (default 90 s: Jac Cloud
# compiles its app first); fails as soon as the process is gone.
wait_ready() {
  local port="$1" pid="$2" secs="${3:-90}"
  for _ in $(seq 1 $((secs * 10))); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      sleep 0.5
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# stop_pid PID [SECONDS]: SIGTERM (a graceful shutdown), up to SECONDS (default 5) to exit, then
# SIGKILL.
stop_pid() {
  local pid="$1" secs="${2:-5}"
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 $((secs * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { echo "   process $pid did not exit; killed" >&2; kill -9 "$pid" 2>/dev/null; }
  fi
  wait "$pid" 2>/dev/null
}
