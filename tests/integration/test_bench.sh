#!/usr/bin/env bash
# inferd bench against a running daemon: its requests/s agree with wrk's
# within 10 % on the same load (4 clients calling a portable function that
# sleeps 20 ms), open loop keeps its rate, --requests its count, errors are
# counted by status (exit 1), the CSV has the table, bad options exit 2.
. "$(dirname "$0")/lib.sh"
: "${TEST_SRCDIR:?}" "${TEST_DATA:?}"
PKG="$T/packages"
mkdir -p "$PKG"
/usr/bin/python3 "$TEST_SRCDIR/tests/integration/portable_packages.py" "$TEST_SRCDIR" "$PKG" >/dev/null ||
  fail "portable_packages.py"
export INFERD_STATE_DIR="$T/state"
start_daemon
curl -sf -o /dev/null -X POST "$BASE/plugins/portables" -d "{\"name\": \"slow\", \"file\": \"file://$PKG/slow.zip\"}" ||
  fail "installing the slow plugin"
echo '{"args": [20]}' >"$T/sleep20.json"
URL="$BASE/v1/functions/sleepy/exec"

# The same load, bench then wrk then bench: the mean of the two benches.
bench_rps() {
  "$TEST_INFERD" bench "$URL" --body "$T/sleep20.json" -c 4 -d 3 --warmup 0.5 --csv "$T/b.csv" >"$T/b.out" 2>/dev/null ||
    fail "inferd bench: $(cat "$T/b.out")"
  sed -n 2p "$T/b.csv" | cut -d, -f3
}
b1=$(bench_rps)
wrk -t2 -c4 -d3s -s "$TEST_SRCDIR/bench/http/post_image.lua" "$URL" -- "$T/sleep20.json" application/json >"$T/wrk.out" 2>&1 ||
  fail "wrk: $(cat "$T/wrk.out")"
w=$(sed -n 's/^RESULT .* rps=\([0-9.]*\) .*/\1/p' "$T/wrk.out")
grep -q 'non200=0 socket_errors=0' "$T/wrk.out" || fail "wrk saw errors: $(grep RESULT "$T/wrk.out")"
b2=$(bench_rps)
/usr/bin/python3 - "$b1" "$b2" "$w" <<'PY' || fail "inferd bench ($b1, $b2 requests/s) and wrk ($w) disagree by more than 10 %"
import sys
b1, b2, w = map(float, sys.argv[1:])
b = (b1 + b2) / 2
print(f"bench {b:.1f} requests/s (runs {b1:.1f}, {b2:.1f}), wrk {w:.1f}: {100 * (b - w) / w:+.1f} %")
sys.exit(0 if abs(b - w) <= 0.10 * w else 1)
PY
grep -qE '^\|       4 \| +[0-9]+ \| +[0-9.]+ \| +[0-9.]+ \| +[0-9.]+ \| +[0-9.]+ \| +[0-9.]+ \| none$' "$T/b.out" ||
  fail "the table: $(cat "$T/b.out")"
[ "$(head -1 "$T/b.csv")" = "clients,requests,requests_per_s,p50_ms,p90_ms,p99_ms,max_ms,errors" ] || fail "CSV header"
pass "inferd bench and wrk agree within 10 % on 4 clients of a 20 ms call; the table and the CSV"

# Open loop: 50 requests a second for 2 s is about 100 requests, whatever the clients.
"$TEST_INFERD" bench "$URL" --body "$T/sleep20.json" -c 2 -d 2 --warmup 0.2 --rate 50 --csv "$T/o.csv" >/dev/null 2>&1 ||
  fail "open loop"
n=$(sed -n 2p "$T/o.csv" | cut -d, -f2)
[ "$n" = 100 ] || fail "open loop at 50/s for 2 s sent $n, want 100"
# One client cannot keep 100/s of a 20 ms call: every request due is still
# sent (100 in 1 s), and the falling behind shows as latency (p99 well over
# 20 ms), not as fewer requests.
"$TEST_INFERD" bench "$URL" --body "$T/sleep20.json" -c 1 -d 1 --warmup 0 --rate 100 --csv "$T/late.csv" >/dev/null 2>&1 ||
  fail "open loop, overloaded"
IFS=, read -r _ late_n _ _ _ late_p99 _ _ < <(sed -n 2p "$T/late.csv")
[ "$late_n" = 100 ] && /usr/bin/python3 -c 'import sys; assert float(sys.argv[1]) > 400, sys.argv[1]' "$late_p99" ||
  fail "open loop at 100/s with one client of a 20 ms call: $(cat "$T/late.csv")"
"$TEST_INFERD" bench "$URL" --body "$T/sleep20.json" -c 1,2 -n 30 --warmup 0 --csv "$T/n.csv" >/dev/null 2>&1 || fail "--requests"
[ "$(sed -n '2,3p' "$T/n.csv" | cut -d, -f1,2 | tr '\n' ' ')" = "1,30 2,30 " ] ||
  fail "--requests 30 at 1 and 2 clients: $(cat "$T/n.csv")"
# Each request sleeps 20 ms: one client does at most 50 a second, and the
# rate counts up to the last answer (not to when the progress loop looked).
/usr/bin/python3 -c 'import sys; r=float(sys.argv[1]); assert 35 < r <= 50, r' "$(sed -n 2p "$T/n.csv" | cut -d, -f3)" ||
  fail "--requests 30 at 1 client: requests/s $(sed -n 2p "$T/n.csv" | cut -d, -f3), want 35 to 50"
pass "open loop keeps 50 requests/s ($n in 2 s), and an overloaded one sends every request due (100, p99 $late_p99 ms); --requests runs each level of a sweep to exactly its count, timed to its last answer"

# Errors by status, and usage.
rc=0; "$TEST_INFERD" bench "$BASE/v1/estimators/nope" --body "$TEST_DATA/dots_03_5.png" -d 1 --warmup 0 >"$T/e.out" 2>/dev/null || rc=$?
[ "$rc" = 1 ] && grep -qE '\| 404 x[0-9]+$' "$T/e.out" || fail "a 404 target: exit $rc: $(cat "$T/e.out")"
# Failed requests are no throughput: 0.0 answers a second, no latency.
grep -qE '^\| +1 \| +[0-9]+ \| +0\.0 \| +0\.000 \|' "$T/e.out" || fail "a 404 target's rate: $(cat "$T/e.out")"
expect_exit 2 "inferd: bench: -d '10s' is not a number (seconds, a count or a rate, without units)" "$TEST_INFERD" bench "$URL" -d 10s
expect_exit 2 "inferd: bench: -n needs a whole number" "$TEST_INFERD" bench "$URL" -n 2.5
expect_exit 2 "inferd: bench needs a URL, or --estimator, --model or --pipeline NAME (inferd bench --help)" "$TEST_INFERD" bench
expect_exit 2 "inferd: bench: --concurrency 'x' is not a list of 1 to 256 clients (1,2,4)" "$TEST_INFERD" bench "$URL" -c x
expect_exit 1 "inferd: cannot read $T/nope.png: No such file or directory" "$TEST_INFERD" bench "$URL" --body "$T/nope.png"
"$TEST_INFERD" bench --help | head -1 | grep -qx 'usage: inferd bench URL \[OPTIONS\]' || fail "bench --help"
pass "errors are counted by status (a 404 target: exit 1, and 0.0 answers a second); no target, a bad --concurrency, -d 10s or -n 2.5: exit 2 with why; a body that is not there: exit 1 saying so"
