#!/usr/bin/env bash
# What a web page can make a browser send never reaches the management
# routes (CSRF, DNS rebinding): a foreign Origin, a cross-site fetch, a Host
# name that is not ours, a text/plain or multipart body are refused and
# change nothing; clients that are not browsers (curl -d, JSON) keep working;
# http.allowed_origins / http.allowed_hosts open what the operator names;
# http.token_loopback closes loopback without the token. Estimation and
# KServe routes are not management routes and stay open to pages.
. "$(dirname "$0")/lib.sh"
STREAM='{"sql": "CREATE STREAM s (n BIGINT) WITH (TYPE=\"httppush\", DATASOURCE=\"/s\")"}'

# req WANT_STATUS NEEDLE CURL_ARGS...: one request; the status must match and
# the body hold NEEDLE ('' for any).
req() {
  local want=$1 needle=$2; shift 2
  local code
  code=$(curl -s -o "$T/body" -w '%{http_code}' "$@") || fail "curl $* failed"
  [ "$code" = "$want" ] || fail "curl $*: status $code, want $want; body: $(cat "$T/body")"
  [ -z "$needle" ] || grep -qF -- "$needle" "$T/body" || fail "curl $*: body lacks '$needle': $(cat "$T/body")"
}
no_stream() {
  req 200 "" "$BASE/streams"
  [ "$(cat "$T/body")" = "[]" ] || fail "$1 created a stream: $(cat "$T/body")"
}

start_daemon
# The attack of the report: a text/plain POST from a page of another origin.
req 403 "Origin http://evil.example is not in http.allowed_origins" -X POST \
  -H 'Content-Type: text/plain' -H 'Origin: http://evil.example' -d "$STREAM" "$BASE/streams"
no_stream "a cross-origin text/plain POST"
# The same body as JSON from that page (a browser would have preflighted).
req 403 "Origin" -X POST -H 'Content-Type: application/json' -H 'Origin: http://evil.example' \
  -d "$STREAM" "$BASE/streams"
req 403 "Origin" -H 'Origin: null' "$BASE/streams"
req 403 "cross-site requests from web pages" -X POST -H 'Content-Type: application/json' \
  -H 'Sec-Fetch-Site: cross-site' -d "$STREAM" "$BASE/streams"
# DNS rebinding: same origin for the browser, but Host is the attacker's name.
req 403 "not evil.example:$PORT" -X POST -H "Host: evil.example:$PORT" \
  -H 'Content-Type: application/json' -d "$STREAM" "$BASE/streams"
req 403 "not evil.example" -H "Host: evil.example" "$BASE/rules"
req 403 "not [evil.example]" -H "Host: [evil.example]:$PORT" "$BASE/rules"
# Bodies a page can send without asking, without an Origin (old browsers).
req 415 "Content-Type: application/json" -X POST -H 'Content-Type: text/plain' -d "$STREAM" "$BASE/streams"
req 415 "JSON body" -X POST -F "sql=CREATE STREAM s () WITH (TYPE=\"httppush\")" "$BASE/streams"
req 415 "JSON body" -X POST -H 'Content-Type: application/x-www-form-urlencoded' \
  -H 'Sec-Fetch-Site: same-origin' -d "$STREAM" "$BASE/streams"
no_stream "the refused requests"
pass "cross-origin, cross-site, rebinding and non-JSON management requests: 403/415, nothing created"

# What clients that are not browsers send: all accepted.
req 201 "" -X POST -d "$STREAM" "$BASE/streams"                    # curl -d (form type)
req 200 "" -X DELETE "$BASE/streams/s"
req 201 "" -X POST -H 'Content-Type: application/json; charset=utf-8' -d "$STREAM" "$BASE/streams"
req 200 "" -X DELETE -H "Host: localhost:$PORT" "$BASE/streams/s"
req 200 "" -H "Host: [::1]:$PORT" "$BASE/streams"
req 200 "" -H 'Sec-Fetch-Site: same-origin' "$BASE/streams"
# Estimation routes are not management: a page may use them.
req 200 '"status"' -H 'Origin: http://evil.example' "$BASE/health"
pass "curl -d, JSON, localhost and [::1] Host, same-origin fetches accepted; /health open to pages"
stop_daemon

# The operator's console and name are allowed when configured.
INFERD_HTTP_ALLOWED_ORIGINS='http://console.local:3000' INFERD_HTTP_ALLOWED_HOSTS='inferd.lan' start_daemon
req 201 "" -X POST -H 'Content-Type: application/json' -H 'Origin: http://console.local:3000' \
  -H 'Sec-Fetch-Site: cross-site' -d "$STREAM" "$BASE/streams"
req 200 "" -H "Host: INFERD.lan:$PORT" "$BASE/streams"
req 403 "Origin" -H 'Origin: http://console.local:3001' "$BASE/streams"
stop_daemon
pass "http.allowed_origins and http.allowed_hosts admit what they name, and only that"

# Loopback with the token required.
INFERD_HTTP_TOKEN_LOOPBACK=true INFERD_HTTP_TOKEN=s3cret start_daemon
req 401 "Authorization: Bearer" "$BASE/streams"
req 401 "" -H 'Authorization: Bearer wrong' "$BASE/streams"
req 200 "" -H 'Authorization: Bearer s3cret' "$BASE/streams"
req 200 "" "$BASE/health"
stop_daemon
INFERD_HTTP_TOKEN_LOOPBACK=true start_daemon
req 403 "http.token is empty" "$BASE/streams"
stop_daemon
pass "http.token_loopback: loopback needs the bearer token too (closed without one)"

# What a client sends cannot shape the replies or /metrics: a path of bytes
# that are not UTF-8 gets a valid JSON 404; 50 invented methods (and one of
# raw bytes) are one series, method="other"; the exposition stays UTF-8.
start_daemon
req 404 "no route for GET /??" "$BASE/%ff%fe"
/usr/bin/python3 -c "import json,sys; json.loads(open(sys.argv[1], 'rb').read().decode('utf-8'))" "$T/body" ||
  fail "the 404 for /%ff%fe is not valid UTF-8 JSON: $(cat "$T/body")"
for i in $(seq 1 50); do curl -s -o /dev/null -X "M$i" "$BASE/health" || fail "curl -X M$i"; done
curl -s -o /dev/null -X $'\xff\xfe' "$BASE/health"
curl -s "$BASE/metrics" >"$T/metrics" || fail "GET /metrics"
/usr/bin/python3 -c "import sys; open(sys.argv[1], 'rb').read().decode('utf-8')" "$T/metrics" ||
  fail "/metrics is not valid UTF-8"
n=$(grep -c '^inferd_http_requests_total{' "$T/metrics")
grep -q '^inferd_http_requests_total{route="unmatched",method="other",status="405"} 51$' "$T/metrics" ||
  fail "51 requests of invented methods are not one series method=\"other\": $(grep '^inferd_http_requests_total' "$T/metrics")"
[ "$n" -le 4 ] || fail "$n request series after invented methods: $(grep '^inferd_http_requests_total' "$T/metrics")"
stop_daemon
pass "a /%ff%fe path gets valid JSON; invented methods are one method=\"other\" series; /metrics stays UTF-8"

# Slowloris: 200 connections from 127.0.0.1 trickling their headers, under
# http.max_connections 150: the per-address cap (100) keeps room for others,
# and 127.0.0.2 gets /health at once. (Without the cap the 150 slots fill
# and the second address is refused.)
INFERD_HTTP_MAX_CONNECTIONS=150 INFERD_HTTP_MAX_CONNECTIONS_PER_IP=100 start_daemon
/usr/bin/python3 "$(dirname "$0")/slow_clients.py" "$PORT" 200 || fail "slow clients locked others out"
stop_daemon
pass "slowloris from one address cannot take every connection (http.max_connections_per_ip)"

# A body declared larger than http.max_body_bytes gets 413 before it is
# read: with Expect: 100-continue no byte of it is sent; without, curl
# stops sending when the 413 comes. The connection then lingers (reads and
# drops the rest) so that the client reads the 413, not a reset or a
# broken pipe: a client that sends the whole body before it reads (as
# Python's http.client does) gets the 413 too, every time.
INFERD_HTTP_MAX_BODY_BYTES=1048576 start_daemon
head -c 8000000 /dev/zero >"$T/big.bin"
rc=0
out=$(curl -s -o "$T/body" -w '%{http_code} %{size_upload}' -H 'Expect: 100-continue' \
  -H 'Content-Type: image/png' --data-binary @"$T/big.bin" "$BASE/v1/estimators/peopleCountEstimator") || rc=$?
[ "$out $rc" = "413 0 0" ] || fail "8 MB with Expect: 100-continue over a 1 MiB limit: want '413 0 0' (status, bytes sent, curl's exit), got '$out $rc': $(cat "$T/body")"
grep -q "http.max_body_bytes (1048576 bytes)" "$T/body" || fail "the 413 does not name the limit: $(cat "$T/body")"
for i in 1 2 3 4 5; do
  out=$(curl -s -o "$T/body" -w '%{http_code} %{size_upload}' -H 'Expect:' \
    -H 'Content-Type: image/png' --data-binary @"$T/big.bin" "$BASE/v1/estimators/peopleCountEstimator") || rc=$?
  [ "${out%% *} $rc" = "413 0" ] && [ "${out##* }" -lt 8000000 ] ||
    fail "8 MB without Expect over a 1 MiB limit (try $i): want 413 before the whole body and curl's exit 0, got '$out', exit $rc"
done
/usr/bin/python3 - "$PORT" >"$T/py413" 2>&1 <<'PY' || fail "a client that sends all 8 MB before it reads: $(cat "$T/py413")"
import socket, sys
for _ in range(5):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    body = b"\0" * 8000000
    s.sendall(b"POST /v1/estimators/peopleCountEstimator HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              b"Content-Type: image/png\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    reply = b""
    while chunk := s.recv(65536):
        reply += chunk
    print(reply.split(b"\r\n", 1)[0].decode())
    s.close()
PY
[ "$(sort -u "$T/py413")" = "HTTP/1.1 413 Content Too Large" ] ||
  fail "a client that sends all 8 MB before it reads: want five 413s, got: $(cat "$T/py413")"
req 200 "" "$BASE/health"
stop_daemon
pass "a declared body over http.max_body_bytes: 413 at once, no 100 Continue, not read ($out without Expect); a client that sends it all first reads the 413 too"

# --listen [::]:P takes IPv4 as well as IPv6 (as 0.0.0.0 takes all IPv4).
LISTEN='[::]:0' start_daemon
curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health" | grep -q 200 || fail "[::]: IPv4 refused"
curl -s -o /dev/null -w '%{http_code}' "http://[::1]:$PORT/health" | grep -q 200 || fail "[::]: IPv6 refused"
stop_daemon
pass "--listen [::]:P answers on 127.0.0.1 and [::1]"
