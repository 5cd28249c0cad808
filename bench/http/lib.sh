# shellcheck shell=bash
# bench/http/lib.sh: what the HTTP benchmarks share (sourced, not run): the
# message that stops a run, a temporary folder removed on exit with the
# daemon killed, starting and stopping `inferd serve` on a free loopback
# port, the load itself (`inferd bench`) and its result, the daemon's CPU
# time, and reading an estimator's counters from /metrics once the requests
# in flight are done.
#
# The sourcing script sets NAME (for messages: "bench/http/models"), INFERD
# (the binary: it serves and it makes the load) and, before metric/settle,
# ESTIMATOR; this file sets T (the folder), DAEMON_PID and, once the daemon
# listens, BASE; run_load and load_result set RPS, P50, P99, REQUESTS,
# ERRORS, ERROR_DETAIL and LAST_ERROR.

# die MESSAGE: stops; while a daemon runs (or ran), says whether it is alive
# and shows the end of its log.
die() {
  echo "$NAME: $*" >&2
  if [ -n "${DAEMON_PID:-}" ]; then
    if kill -0 "$DAEMON_PID" 2>/dev/null; then
      echo "$NAME: the daemon (pid $DAEMON_PID) is still running; its log ends:" >&2
    else
      local rc=0
      wait "$DAEMON_PID" 2>/dev/null || rc=$?
      echo "$NAME: the daemon (pid $DAEMON_PID) is gone (exit status $rc); its log ends:" >&2
    fi
    tail -20 "$T/daemon.log" | sed 's/^/  daemon: /' >&2
  fi
  exit 1
}

DAEMON_PID=""
T=$(mktemp -d "/tmp/inferd-${NAME//\//-}-XXXXXX")
cleanup() {
  if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
    kill -KILL "$DAEMON_PID" 2>/dev/null || true
    wait "$DAEMON_PID" 2>/dev/null || true
  fi
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_daemon INFERD_ESTIMATORS_JSON: `inferd serve` on 127.0.0.1:0 with
# those estimator settings; waits (30 s at most: large models load slowly)
# for its "listening on" line and sets BASE.
start_daemon() {
  INFERD_ESTIMATORS="$1" "$INFERD" serve --listen 127.0.0.1:0 </dev/null 2>"$T/daemon.log" &
  DAEMON_PID=$!
  for _ in $(seq 1 600); do
    if grep -q 'listening on http://' "$T/daemon.log" 2>/dev/null; then
      BASE=$(grep -o 'http://[^ ]*' "$T/daemon.log" | head -1)
      return 0
    fi
    kill -0 "$DAEMON_PID" 2>/dev/null || die "the daemon exited during start-up"
    sleep 0.05
  done
  die "the daemon did not report listening within 30 s"
}

# stop_daemon: SIGTERM; a non-zero exit stops the run.
stop_daemon() {
  kill -TERM "$DAEMON_PID"
  local rc=0
  wait "$DAEMON_PID" || rc=$?
  [ "$rc" -eq 0 ] || die "the daemon exited with $rc after SIGTERM"
  DAEMON_PID=""
}

# run_load CLIENTS SECONDS URL BODY TYPE: the load of one row: `inferd
# bench`, closed loop, CLIENTS clients (a thread and a keep-alive connection
# each) POSTing the file BODY as TYPE to URL, each sending its next request
# when its last is answered, for SECONDS; a request gets LOAD_TIMEOUT s (default
# 60). --warmup 0: the scripts warm up with a run of their own, and the
# /metrics counters and CPU time they read between runs must hold the measured
# run's requests and nothing else. Its table goes to $T/load.out, its progress
# line and libcurl's last error to $T/load.err, its CSV to $T/load.csv; then
# load_result. Requests that got no 2xx are the caller's to judge (ERRORS);
# inferd bench itself failing (a usage error, no CSV) stops the run.
run_load() {
  local rc=0
  "$INFERD" bench "$3" --body "$4" --type "$5" -c "$1" -d "$2" --warmup 0 \
    --timeout "${LOAD_TIMEOUT:-60}" --csv "$T/load.csv" >"$T/load.out" 2>"$T/load.err" || rc=$?
  # 1 is also what a bench with failed requests exits with: the CSV tells.
  [ "$rc" -le 1 ] || { load_show; die "inferd bench failed (exit status $rc)"; }
  load_result
  [ "$rc" -eq 0 ] || [ "$ERRORS" -ne 0 ] \
    || { load_show; die "inferd bench exited 1 with no failed request: no request went through"; }
}

# load_result: the result of the `inferd bench` run that wrote $T/load.csv
# (one concurrency level) and $T/load.out: RPS, P50 and P99 (ms, from sending
# a request to its full answer), REQUESTS (the measured ones, failed
# included), ERRORS (those not answered 2xx, no answer included),
# ERROR_DETAIL (its table's errors column: "none", or by status, "503 x2
# no answer/0 x1") and LAST_ERROR (libcurl's last error, if any). Stops the
# run when the CSV has no row (inferd bench did not finish).
# shellcheck disable=SC2034 # the variables are the sourcing script's
load_result() {
  local row
  row=$(awk -F, 'NR == 2 {printf "%s %.2f %.2f %.2f %s", $2, $3, $4, $6, $8}' "$T/load.csv" 2>/dev/null) || true
  [ -n "$row" ] || { load_show; die "inferd bench wrote no result to its CSV"; }
  read -r REQUESTS RPS P50 P99 ERRORS <<<"$row"
  ERROR_DETAIL=$(grep '^| ' "$T/load.out" | tail -1 | sed 's/.*| //') || true
  LAST_ERROR=$(sed -n 's/.*last error: //p' "$T/load.err" | tail -1) || true
}

# load_show: inferd bench's table and messages, to stderr (its progress
# line, rewritten in place with \r, left out).
load_show() {
  cat "$T/load.out" >&2 2>/dev/null || true
  tr '\r' '\n' <"$T/load.err" 2>/dev/null | grep -v -e '^ *$' -e 'warming up' -e 'measuring' >&2 || true
}

# cpu_ticks: the daemon's CPU time so far (all threads, user + system), in
# clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$DAEMON_PID/stat"; }

# metric NAME: NAME{estimator="$ESTIMATOR"} in the /metrics answer that
# `settle` fetched last.
metric() {
  awk -v m="$1{estimator=\"$ESTIMATOR\"}" '$1 == m {print $2}' "$T/metrics"
}

# settle SECONDS [warn]: waits until nothing is queued and every image
# handed to a batch is done, so that the counters hold all of a run's
# batches; leaves that /metrics answer in $T/metrics. Past SECONDS it stops
# the run, or with `warn` (after failed requests the counters may never
# agree) says so and goes on.
settle() {
  local tries=$(($1 * 10))
  sleep 0.1
  for _ in $(seq 1 "$tries"); do
    local code
    code=$(curl -s -o "$T/metrics" -w '%{http_code}' "$BASE/metrics") \
      || die "GET /metrics failed (curl exit status $?)"
    [ "$code" = 200 ] || die "GET /metrics answered $code: $(head -c 300 "$T/metrics")"
    awk -v e="{estimator=\"$ESTIMATOR\"}" '
      $1 == "inferd_estimator_queue_depth" e {q = $2}
      $1 == "inferd_estimator_items_total" e {i = $2}
      $1 == "inferd_estimator_batch_size_sum" e {b = $2}
      END {exit !(q == 0 && i == b)}' "$T/metrics" && return 0
    sleep 0.1
  done
  [ "${2:-}" = warn ] || die "the estimator was still busy $1 s after inferd bench stopped"
  echo "  (warning: the estimator's counters did not settle within $1 s; the mean batch may be off)" >&2
}
