#!/usr/bin/env bash
# HTTPS for the API (http.tls_cert, http.tls_key) and mutual TLS
# (http.tls_client_ca), with certificates made here by openssl: a CA, the
# server's (localhost, 127.0.0.1), a client's signed by the CA, and one
# that is not. Each misconfiguration stops the start with why.
. "$(dirname "$0")/lib.sh"
cd "$T" || fail "cd"

make_certs "$T"

# ---- HTTPS ----------------------------------------------------------------------------------
INFERD_HTTP_TLS_CERT="$T/server.pem" INFERD_HTTP_TLS_KEY="$T/server.key" start_daemon
case "$BASE" in https://127.0.0.1:*) ;; *) fail "the daemon says $BASE, not https://" ;; esac
[ "$(curl -s --cacert ca.pem -o "$T/body" -w '%{http_code}' "$BASE/health")" = 200 ] &&
  grep -q '"status":"ok"' "$T/body" || fail "GET /health over HTTPS: $(cat "$T/body")"
code=$(curl -s --cacert ca.pem -o "$T/body" -w '%{http_code}' -H 'Content-Type: image/png' \
       --data-binary @"$TEST_DATA/dots_03_5.png" "$BASE/v1/estimators/peopleCountEstimator")
[ "$code" = 200 ] && grep -q '"count":5' "$T/body" || fail "an estimation over HTTPS: $code $(cat "$T/body")"
rc=0; curl -s -o /dev/null "${BASE/https/http}/health" || rc=$?
[ "$rc" != 0 ] || fail "plain HTTP was answered on the HTTPS port"
rc=0; curl -s -o /dev/null "$BASE/health" || rc=$?
[ "$rc" = 60 ] || fail "a client that does not trust the CA: curl exit $rc, want 60 (certificate problem)"
pass "HTTPS: the daemon says https://, answers with the CA's certificate (health, an estimation); plain HTTP and an untrusting client get no answer"

# The CLI clients: --cacert (or $INFERD_CACERT) trusts the CA; without it,
# exit 1 saying the certificate could not be checked.
"$TEST_INFERD" model list --url "$BASE" --cacert ca.pem >"$T/out" 2>&1 || fail "inferd model list --cacert: $(cat "$T/out")"
grep -q 'dot_density' "$T/out" || fail "inferd model list over HTTPS: $(cat "$T/out")"
INFERD_URL=$BASE INFERD_CACERT=$T/ca.pem "$TEST_INFERD" pipeline list >"$T/out" 2>&1 || fail "inferd pipeline list with \$INFERD_CACERT: $(cat "$T/out")"
rc=0; "$TEST_INFERD" model list --url "$BASE" >"$T/out" 2>&1 || rc=$?
[ "$rc" = 1 ] && grep -qi 'certificate' "$T/out" || fail "inferd model list without the CA: exit $rc: $(cat "$T/out")"
rc=0; "$TEST_INFERD" model list --url "$BASE" --cacert "$T/nope.pem" >"$T/out" 2>&1 || rc=$?
[ "$rc" = 1 ] && grep -q "cannot reach $BASE" "$T/out" || fail "inferd model list with a CA file that is not there: exit $rc: $(cat "$T/out")"
"$TEST_INFERD" bench --url "$BASE" --estimator peopleCountEstimator --body "$TEST_DATA/dots_03_5.png" \
  --cacert ca.pem -n 20 --warmup 0 >"$T/out" 2>/dev/null || fail "inferd bench --cacert: $(cat "$T/out")"
grep -qE '^\| +1 \| +20 \| ' "$T/out" || fail "inferd bench over HTTPS: $(cat "$T/out")"
rc=0; "$TEST_INFERD" bench --url "$BASE" --estimator peopleCountEstimator --body "$TEST_DATA/dots_03_5.png" \
  -n 5 --warmup 0 >"$T/out" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "inferd bench without the CA: exit $rc: $(cat "$T/out")"
stop_daemon
pass "the CLI over HTTPS: model and pipeline with --cacert or \$INFERD_CACERT, bench with --cacert; without the CA, exit 1 naming the certificate; a CA file that is not there, exit 1"

# ---- mutual TLS ------------------------------------------------------------------------------
INFERD_HTTP_TLS_CERT="$T/server.pem" INFERD_HTTP_TLS_KEY="$T/server.key" \
  INFERD_HTTP_TLS_CLIENT_CA="$T/ca.pem" start_daemon
code=$(curl -s --cacert ca.pem --cert client.pem --key client.key -o "$T/body" -w '%{http_code}' "$BASE/v1/estimators")
[ "$code" = 200 ] || fail "a client with the CA's certificate: $code $(cat "$T/body")"
code=$(curl -s --cacert ca.pem -o "$T/body" -w '%{http_code}' "$BASE/v1/estimators")
[ "$code" = 403 ] && grep -qF 'this server takes clients with a certificate signed by http.tls_client_ca; none was presented' "$T/body" ||
  fail "a client without a certificate: $code $(cat "$T/body")"
code=$(curl -s --cacert ca.pem --cert rogue.pem --key rogue.key -o "$T/body" -w '%{http_code}' "$BASE/v1/estimators")
[ "$code" = 403 ] && grep -qF 'the client certificate is not signed by http.tls_client_ca' "$T/body" ||
  fail "a client with a certificate of another CA: $code $(cat "$T/body")"
"$TEST_INFERD" model list --url "$BASE" --cacert ca.pem --cert client.pem --key client.key >"$T/out" 2>&1 ||
  fail "inferd model list with a client certificate: $(cat "$T/out")"
INFERD_CLIENT_CERT=$T/client.pem INFERD_CLIENT_KEY=$T/client.key "$TEST_INFERD" model list --url "$BASE" \
  --cacert ca.pem >"$T/out" 2>&1 || fail "inferd model list with \$INFERD_CLIENT_CERT: $(cat "$T/out")"
rc=0; "$TEST_INFERD" model list --url "$BASE" --cacert ca.pem >"$T/out" 2>&1 || rc=$?
[ "$rc" = 1 ] && grep -qF 'none was presented' "$T/out" || fail "inferd model list without a client certificate: exit $rc: $(cat "$T/out")"
stop_daemon
pass "mutual TLS: a client certificate of the CA is served (curl, and the CLI with --cert/--key or \$INFERD_CLIENT_CERT/KEY); none, or one of another CA, gets 403 saying so"

# ---- what stops the start --------------------------------------------------------------------
refuse() { # refuse NEEDLE ENV=VALUE...
  local needle=$1 rc=0; shift
  env "$@" timeout 20 "$TEST_INFERD" serve --listen 127.0.0.1:0 >"$T/out" 2>&1 || rc=$?
  [ "$rc" != 0 ] && grep -qF -- "$needle" "$T/out" || fail "$*: exit $rc: $(tail -2 "$T/out")"
}
refuse "http.tls_cert and http.tls_key go together" INFERD_HTTP_TLS_CERT="$T/server.pem"
refuse "http.tls_client_ca needs HTTPS" INFERD_HTTP_TLS_CLIENT_CA="$T/ca.pem"
refuse "http.tls_key: $T/nope.key: No such file or directory" INFERD_HTTP_TLS_CERT="$T/server.pem" INFERD_HTTP_TLS_KEY="$T/nope.key"
refuse "http.tls_key: $T/san.ext is not a PEM file" INFERD_HTTP_TLS_CERT="$T/server.pem" INFERD_HTTP_TLS_KEY="$T/san.ext"
refuse "with TLS (address in use, or http.tls_cert and http.tls_key not a certificate and its key?)" \
  INFERD_HTTP_TLS_CERT="$T/server.pem" INFERD_HTTP_TLS_KEY="$T/rogue.key"
pass "a certificate without its key, a client CA without HTTPS, a missing file, a file that is no PEM, a key of another certificate: the daemon does not start, saying why"
