#!/usr/bin/env bash
# Plugin authors outside the tree: install inferd into a prefix, build the
# sample plugin with nothing but `cc $(pkg-config --cflags inferd-plugin)
# -shared -fPIC`, and load it with the installed inferd. Then the plugin CLI:
# list, inspect (text and JSON), and what an inactive or broken plugin gets.
. "$(dirname "$0")/lib.sh"
: "${TEST_BUILD_DIR:?}" "${TEST_SRCDIR:?}" "${TEST_PLUGIN_DIR:?}"

prefix="$T/prefix"
cmake --install "$TEST_BUILD_DIR" --prefix "$prefix" >"$T/install.log" 2>&1 \
  || { cat "$T/install.log"; fail "cmake --install"; }
for f in include/inferd/plugin.h include/inferd/plugin_api_map.h include/inferd/version.h \
         lib/pkgconfig/inferd-plugin.pc bin/inferd lib/inferd/plugins/sample.so; do
  [ -e "$prefix/$f" ] || fail "install tree lacks $f"
done
pass "make install puts headers, inferd-plugin.pc, the binary and plugins in the prefix"

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
cflags=$(pkg-config --cflags inferd-plugin) || fail "pkg-config --cflags inferd-plugin"
[ "$(pkg-config --modversion inferd-plugin)" = "$("$prefix/bin/inferd" --version | cut -d' ' -f2)" ] \
  || fail "pkg-config version differs from inferd --version"
mkdir -p "$T/myplugins"
# Only the headers: no -L, no -l, and -z defs proves no inferd symbol is needed.
cc -std=c17 -Wall -Wextra -Werror -O2 -fPIC -shared -Wl,-z,defs $cflags \
  "$TEST_SRCDIR/plugins/examples/c/sample/sample.c" -o "$T/myplugins/sample.so" \
  || fail "out-of-tree build of the sample plugin"
nm -D --defined-only "$T/myplugins/sample.so" | awk '$2 == "T" {print $3}' >"$T/plugin_exports"
[ "$(cat "$T/plugin_exports")" = inferd_plugin_entry ] \
  || fail "the sample plugin exports more than its entry point: $(tr '\n' ' ' <"$T/plugin_exports")"
pass "the sample plugin builds out of tree with only pkg-config --cflags, and exports only inferd_plugin_entry"

# The same element written in C++ (plugins/examples/cpp/sample), with the
# same macros and only the installed headers: it loads and runs.
if command -v c++ >/dev/null; then
  mkdir -p "$T/cppplugins"
  c++ -std=c++20 -Wall -Wextra -Werror -pedantic -O2 -fPIC -shared -Wl,-z,defs $cflags \
    "$TEST_SRCDIR/plugins/examples/cpp/sample/sample.cpp" -o "$T/cppplugins/sample_cpp.so" \
    || fail "out-of-tree C++ build of the sample plugin"
  nm -D --defined-only "$T/cppplugins/sample_cpp.so" | awk '$2 == "T" {print $3}' >"$T/cpp_exports"
  [ "$(cat "$T/cpp_exports")" = inferd_plugin_entry ] \
    || fail "the C++ sample exports: $(tr '\n' ' ' <"$T/cpp_exports")"
  cat >"$T/cpp_pipe.json" <<'JSON'
{"s": {"in": {"factory": "appsrc", "next": "decode"},
       "decode": {"factory": "image_decoder", "next": "sample"},
       "sample": {"factory": "mxpi_sampleplugin_cpp", "props": {"descriptionMessage": "from C++"},
                  "next": "json"},
       "json": {"factory": "json_serialize", "props": {"dataSource": "sample"}, "next": "out"},
       "out": {"factory": "appsink"}}}
JSON
  /usr/bin/python3 -c "from PIL import Image; Image.new('RGB', (40, 30), (200, 10, 10)).save('$T/cpp.png')"
  "$prefix/bin/inferd" run "$T/cpp_pipe.json" "$T/cpp.png" --plugin-dir "$T/cppplugins" \
    --active sample_cpp >"$T/cpp.out" 2>"$T/cpp.err" || fail "run with the C++ plugin: $(cat "$T/cpp.err")"
  grep -q '"sample":{"message":"from C++","width":40,"height":30,"frame":0}' "$T/cpp.out" \
    || fail "the C++ element's output: $(cat "$T/cpp.out")"
  # Its function, called through the daemon as a rule would.
  start_daemon --plugin-dir "$T/cppplugins" --active sample_cpp
  got=$(curl -s -X POST -H 'Content-Type: application/json' -d '{"args": ["two  words\tand three"]}' \
    "$BASE/v1/functions/word_count/exec")
  [ "$got" = '{"result":4}' ] || fail "word_count from C++: $got"
  got=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -d '{"args": [7]}' "$BASE/v1/functions/word_count/exec")
  [ "$got" = 400 ] || fail "word_count(7): $got, want 400 (its ETYPE: the caller's argument)"
  stop_daemon
  pass "the C++ sample (C++20, -Wall -Wextra -pedantic) builds from the installed headers with the C macros, exports only inferd_plugin_entry, runs in a pipeline, and its function answers"
fi

# Every public header compiles on its own.
for h in "$prefix"/include/inferd/*.h; do
  name=$(basename "$h")
  [ "$name" = plugin_api_map.h ] && continue
  echo "#include <inferd/$name>" | cc -std=c17 -Wall -Wextra -Werror $cflags -x c -fsyntax-only - \
    || fail "header $name does not compile alone"
  if command -v c++ >/dev/null; then
    echo "#include <inferd/$name>" | c++ -std=c++17 -Wall -Wextra -Werror $cflags -x c++ -fsyntax-only - \
      || fail "header $name does not compile alone as C++"
  fi
done
pass "every installed header compiles alone, as C$(command -v c++ >/dev/null && echo ' and as C++')"

inferd="$prefix/bin/inferd"
"$inferd" plugin list --plugin-dir "$T/myplugins" --active sample > "$T/list" 2>"$T/err" \
  || fail "plugin list: $(cat "$T/err")"
abi=$(pkg-config --variable=abi inferd-plugin)
[[ "$abi" =~ ^[0-9]+\.[0-9]+$ ]] || fail "pkg-config abi variable: '$abi'"
grep -q "^sample 1.0.0  (ABI $abi)  $T/myplugins/sample.so" "$T/list" || fail "list: $(cat "$T/list")"
grep -q "element *mxpi_sampleplugin" "$T/list" || fail "list lacks the component"
pass "the installed inferd loads and lists the out-of-tree plugin"

# The sample is a filter (INFERD_FILTER_PROCESS): the host checks the
# buffer's format against its input port at run time.
/usr/bin/python3 -c "from PIL import Image; Image.new('RGB', (40, 30), (9, 9, 200)).save('$T/c.png')"
for fmt in rgb gray; do
  cat >"$T/c_$fmt.json" <<JSON
{"s": {"in": {"factory": "appsrc", "next": "decode"},
       "decode": {"factory": "image_decoder", "props": {"format": "$fmt"}, "next": "sample"},
       "sample": {"factory": "mxpi_sampleplugin", "next": "json"},
       "json": {"factory": "json_serialize", "props": {"dataSource": "sample"}, "next": "out"},
       "out": {"factory": "appsink"}}}
JSON
  "$inferd" run "$T/c_$fmt.json" "$T/c.png" --plugin-dir "$T/myplugins" --active sample \
    >"$T/c_$fmt.out" 2>/dev/null || [ "$fmt" = gray ] || fail "run the sample ($fmt)"
done
grep -q '"sample":{"message":"hello","width":40,"height":30,"frame":0}' "$T/c_rgb.out" \
  || fail "the sample filter on RGB: $(cat "$T/c_rgb.out")"
grep -q 'element sample (mxpi_sampleplugin): input 0 takes image/rgb, image/bgr; element decode gave image/gray' "$T/c_gray.out" \
  || fail "the sample filter on a grey image: $(cat "$T/c_gray.out")"
pass "the sample as a filter: RGB passes with its metadata; a grey image is refused at run time with the port's formats"

"$inferd" plugin inspect mxpi_sampleplugin --plugin-dir "$T/myplugins" --active sample \
  > "$T/inspect" 2>/dev/null || fail "inspect"
grep -q "minHeight *int in \[1, 4096\]; default 6" "$T/inspect" || fail "inspect: $(cat "$T/inspect")"
grep -q "0 (static): image/rgb image/bgr" "$T/inspect" || fail "inspect ports"
grep -q "dataSource *string; default auto" "$T/inspect" || fail "inspect common props"
INFERD_ACTIVE_PLUGINS=sample "$inferd" plugin inspect sample --json --plugin-dir "$T/myplugins" \
  > "$T/inspect.json" 2>/dev/null || fail "inspect --json"
python3 - "$T/inspect.json" <<'PY' || fail "inspect --json content"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["name"] == "sample" and d["version"] == "1.0.0" and d["abi"] == "2.4", d
c = d["components"][0]
assert c["name"] == "mxpi_sampleplugin" and c["kind"] == "element", c
props = {p["name"]: p for p in c["properties"]}
assert props["minHeight"]["type"] == "int" and props["minHeight"]["min"] == 1, props
assert props["descriptionMessage"]["default"] == "hello", props
assert c["inputs"][0]["formats"] == ["image/rgb", "image/bgr"], c["inputs"]
PY
pass "inspect shows properties, ranges, defaults and ports, in text and JSON"

# An installed but inactive plugin; a broken one; a missing one.
# inspect shows an inactive plugin too (loaded on its own), and says so.
rc=0; "$inferd" plugin inspect sample --plugin-dir "$T/myplugins" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 0 ] && head -1 "$T/out" | grep -q "^plugin sample 1.0.0 (ABI .*) .*/sample.so  (inactive: add it to active_plugins)$" &&
  grep -q "^element mxpi_sampleplugin" "$T/out" && [ ! -s "$T/err" ] \
  || fail "inactive plugin: rc $rc: $(cat "$T/out" "$T/err")"
"$inferd" plugin inspect sample --plugin-dir "$T/myplugins" --json |
  /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["active"] is False and d["components"][0]["name"] == "mxpi_sampleplugin", d' \
  || fail "inactive plugin --json"
rc=0; "$inferd" plugin inspect nope --plugin-dir "$T/myplugins" >"$T/out" 2>&1 || rc=$?
[ "$rc" = 1 ] && grep -q "no plugin or component named nope, and no file nope.so in $T/myplugins" "$T/out" \
  || fail "missing plugin: rc $rc: $(cat "$T/out")"
cp "$TEST_PLUGIN_DIR/test_newer_minor.so" "$T/myplugins/"
rc=0; "$inferd" plugin list --plugin-dir "$T/myplugins" --active sample,test_newer_minor \
  >"$T/out" 2>&1 || rc=$?
[ "$rc" = 1 ] && grep -q "needs plugin ABI ${abi%.*}.$(( ${abi#*.} + 1 )), newer than this inferd's $abi" "$T/out" \
  || fail "newer plugin: rc $rc: $(cat "$T/out")"
rc=0; "$inferd" plugin list --plugin-dir "$T/myplugins" --active nothere >"$T/out" 2>&1 || rc=$?
[ "$rc" = 1 ] && grep -q "active plugin 'nothere' is not in the plugin folder" "$T/out" \
  || fail "missing plugin: rc $rc: $(cat "$T/out")"
rc=0; "$inferd" plugin frob >"$T/out" 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "plugin frob exited $rc"
rc=0; "$inferd" plugin inspect >"$T/out" 2>&1 || rc=$?
[ "$rc" = 2 ] && grep -q "plugin inspect takes one NAME" "$T/out" || fail "inspect without NAME"
pass "inactive, too new, missing plugins and bad subcommands get clear errors"

# The daemon refuses to start with a plugin it cannot activate.
rc=0; "$inferd" serve --listen 127.0.0.1:0 --plugin-dir "$T/myplugins" --active test_newer_minor \
  >"$T/out" 2>&1 || rc=$?
[ "$rc" = 1 ] && grep -q "needs plugin ABI" "$T/out" || fail "serve with a bad plugin: rc $rc"
pass "serve refuses to start with a plugin it cannot activate"
echo "test_plugin_sdk: all passed"
