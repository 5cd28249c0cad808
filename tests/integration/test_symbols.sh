#!/usr/bin/env bash
# The library boundary: libinferd exports its public API (inferd_*) and
# nothing else; the daemon exports no function of its own; a plugin that
# defines functions named like the daemon's private ones (proto_send,
# sql_eval, mqtt_client_new) calls its own.
source "$(dirname "$0")/lib.sh"

LIB="$TEST_BUILD_DIR/lib/libinferd.so"
[ -f "$LIB" ] || fail "no $LIB"
nm -D --defined-only "$LIB" | awk '{print $3}' >"$T/exports"
[ -s "$T/exports" ] || fail "nm found no exports in $LIB"
grep -v '^inferd_' "$T/exports" >"$T/foreign" && fail "libinferd exports names outside inferd_*: $(head -20 "$T/foreign" | tr '\n' ' ')"
grep -q '^inferd_pipeline_load$' "$T/exports" || fail "the public API is not exported (inferd_pipeline_load)"
for private in proto_send sql_parse_select mqtt_client_new rules_engine_open portable_manifest_parse; do
  grep -q "^$private\$" "$T/exports" && fail "libinferd exports $private"
done
pass "libinferd.so exports $(wc -l <"$T/exports") functions and data, every one inferd_*; none of the daemon's modules"

# Functions the daemon binary makes visible to plugins: none (data that glibc
# copies into every program, stdin and optarg, are not functions).
nm -D --defined-only "$TEST_INFERD" | awk '$2 == "T" || $2 == "W" {print $3}' >"$T/bin_exports"
[ -s "$T/bin_exports" ] && fail "the inferd binary exports functions: $(head -20 "$T/bin_exports" | tr '\n' ' ')"
pass "the inferd binary exports no function"

export INFERD_PLUGINS_DIR="$TEST_PLUGIN_DIR"
start_daemon --active test_own_names
code=$(curl -s -o "$T/body" -w '%{http_code}' -H 'Content-Type: application/json' -d '{"args": []}' \
       "$BASE/v1/functions/test_own_names/exec")
[ "$code" = 200 ] || fail "test_own_names: $code $(cat "$T/body")"
grep -q '"result":"plugin plugin plugin"' "$T/body" || fail "the plugin's own functions were not the ones called: $(cat "$T/body")"
stop_daemon
pass "a plugin exporting its own proto_send, sql_eval and mqtt_client_new calls its own"
