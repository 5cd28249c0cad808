#!/usr/bin/env bash
# File streams read and file actions write only inside rules.file_dirs
# (default <state.dir>/files): /etc/passwd, a ".." escape, a symbolic link
# out, a relative path are refused with 400 naming the folders; a FIFO is
# not read (and does not hold the stop), a file over rules.file_max_bytes is
# not read; inside the folders everything works.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rules_lib.sh"
D="$T/data"
mkdir -p "$D"
ln -s /etc/passwd "$D/passwd_link"
mkfifo "$D/fifo"
printf '{"n": 1}\n{"n": 2}\n' >"$D/in.jsonl"
stream() { echo "{\"sql\": \"CREATE STREAM $1 (n BIGINT) WITH (TYPE=\\\"file\\\", DATASOURCE=\\\"$2\\\")\"}"; }

INFERD_RULES_FILE_DIRS="$D" INFERD_RULES_FILE_MAX_BYTES=1000 INFERD_RULES_PUSH_MAX_BYTES=2000 start_daemon
expect POST /streams "$(stream s1 /etc/passwd)" 400 "is outside the folders files may be read and written in (rules.file_dirs: $D)"
expect POST /streams "$(stream s2 "$D/../escape.jsonl")" 400 "outside the folders"
expect POST /streams "$(stream s3 "$D/passwd_link")" 400 "outside the folders"
expect POST /streams "$(stream s4 data/in.jsonl)" 400 "is not an absolute path"
expect POST /streams '{"sql": "CREATE STREAM s (n BIGINT) WITH (TYPE=\"httppush\", DATASOURCE=\"/s\")"}' 201
expect POST /rules "{\"id\": \"w1\", \"sql\": \"SELECT 1 AS x FROM s\", \"actions\": [{\"file\": {\"path\": \"/tmp/inferd-anywhere.jsonl\"}}]}" 400 "file action: path: /tmp/inferd-anywhere.jsonl is outside the folders"
expect POST /rules "{\"id\": \"w2\", \"sql\": \"SELECT 1 AS x FROM s\", \"actions\": [{\"file\": {\"path\": \"$D/../../x.jsonl\"}}]}" 400 "outside the folders"
expect GET /streams "" 200 '["s"]'
pass "paths outside rules.file_dirs (absolute, .., a link out, relative) refused for streams and file actions"

expect POST /streams "$(stream okin "$D/in.jsonl")" 201
expect POST /rules "{\"id\": \"rok\", \"sql\": \"SELECT n FROM okin\", \"actions\": [{\"file\": {\"path\": \"$D/out.jsonl\", \"sendSingle\": true}}]}" 201
for _ in $(seq 1 100); do [ "$(wc -l <"$D/out.jsonl" 2>/dev/null || echo 0)" -ge 2 ] && break; sleep 0.1; done
printf '{"n":1}\n{"n":2}\n' | diff -u - "$D/out.jsonl" >"$T/diff" || fail "file in, file out: $(cat "$T/diff")"
pass "a file stream and a file action inside rules.file_dirs work"

# A FIFO with no writer: not read, and the rule stops at once.
expect POST /streams "$(stream fifo "$D/fifo")" 201
expect POST /rules "{\"id\": \"rfifo\", \"sql\": \"SELECT n FROM fifo\", \"actions\": [{\"log\": {}}]}" 201
for _ in $(seq 1 50); do grep -q "not a regular file" <<<"$(status_field rfifo source_fifo_0_last_exception)" && break; sleep 0.1; done
grep -q "is not a regular file" <<<"$(status_field rfifo source_fifo_0_last_exception)" ||
  fail "the FIFO's refusal is not in the rule's status: $(cat "$T/body")"
t0=$(date +%s%N)
expect POST /rules/rfifo/stop "" 200
[ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 1000 ] || fail "stopping a rule on a FIFO took over a second"
# Over rules.file_max_bytes (1000 here): not read.
head -c 2000 /dev/zero | tr '\0' ' ' >"$D/big.jsonl"
expect POST /streams "$(stream big "$D/big.jsonl")" 201
expect POST /rules "{\"id\": \"rbig\", \"sql\": \"SELECT n FROM big\", \"actions\": [{\"log\": {}}]}" 201
for _ in $(seq 1 50); do grep -q "rules.file_max_bytes" <<<"$(status_field rbig source_big_0_last_exception)" && break; sleep 0.1; done
grep -q "has 2000 bytes, more than rules.file_max_bytes (1000)" <<<"$(status_field rbig source_big_0_last_exception)" ||
  fail "the large file's refusal is not in the rule's status: $(cat "$T/body")"
# A pushed message over rules.push_max_bytes: 413, and nothing delivered.
expect POST /streams '{"sql": "CREATE STREAM p (n BIGINT, pad STRING) WITH (TYPE=\"httppush\", DATASOURCE=\"/p\")"}' 201
expect POST /rules "{\"id\": \"rp\", \"sql\": \"SELECT n FROM p\", \"actions\": [{\"file\": {\"path\": \"$D/p.jsonl\", \"sendSingle\": true}}]}" 201
wait_field rp status running
expect POST /push/p "{\"n\": 1, \"pad\": \"$(head -c 3000 /dev/zero | tr '\0' x)\"}" 413 "more than rules.push_max_bytes (2000)"
expect POST /push/p '{"n": 2, "pad": ""}' 202
for _ in $(seq 1 50); do [ -s "$D/p.jsonl" ] && break; sleep 0.1; done
[ "$(cat "$D/p.jsonl")" = '{"n":2}' ] || fail "pushes delivered: $(cat "$D/p.jsonl")"
stop_daemon
pass "a FIFO is not read and its rule stops at once; a file over rules.file_max_bytes is not read; a push over rules.push_max_bytes is 413"

# The default: <state.dir>/files, made at start.
unset INFERD_RULES_FILE_DIRS
start_daemon
[ -d "$INFERD_STATE_DIR/files" ] || fail "the default folder $INFERD_STATE_DIR/files was not made"
expect POST /rules "{\"id\": \"d1\", \"sql\": \"SELECT n FROM okin\", \"actions\": [{\"file\": {\"path\": \"$D/out2.jsonl\"}}]}" 400 "rules.file_dirs: $(realpath "$INFERD_STATE_DIR")/files"
expect POST /rules "{\"id\": \"d2\", \"sql\": \"SELECT n FROM okin\", \"actions\": [{\"file\": {\"path\": \"$INFERD_STATE_DIR/files/out.jsonl\"}}]}" 201
stop_daemon
pass "without rules.file_dirs: <state.dir>/files only"
