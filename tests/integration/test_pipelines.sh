#!/usr/bin/env bash
# End to end: `inferd run` with the example pipelines over the synthetic
# images, answers checked against the generator's truth (dot counts and
# positions, a crop area with target T2, colour names, scratch counts and
# boxes), and what a bad input gets.
. "$(dirname "$0")/lib.sh"
: "${TEST_DATA:?}" "${TEST_SRCDIR:?}" "${TEST_MODELS:?}"
ex="$TEST_SRCDIR/examples/pipelines"

run_pipeline() { # run_pipeline NAME FILES... -> $T/NAME.jsonl
  local name=$1; shift
  local rc=0
  "$TEST_INFERD" run "$ex/$name.json" "$@" > "$T/$name.jsonl" 2> "$T/$name.err" || rc=$?
  [ "$rc" = 0 ] || { cat "$T/$name.err" >&2; fail "$name exited $rc"; }
}

run_pipeline count_dots "$TEST_DATA"/dots_*
run_pipeline count_dots_area_t2 "$TEST_DATA"/dots_*
run_pipeline colours "$TEST_DATA"/colour_*
run_pipeline scratches "$TEST_DATA"/scratches_*

python3 - "$T" "$TEST_DATA/truth.json" <<'PY' || fail "answers differ from the truth"
import json, os, sys
out, truth = sys.argv[1], json.load(open(sys.argv[2]))
def load(name):
    return {os.path.basename(r["input"]): r for r in map(json.loads, open(f"{out}/{name}.jsonl"))}

# Dots: count within 10 % (exact for 0), every dot found within r + 3 px.
# Result points use pixel-area coordinates (centre of pixel i at i + 0.5),
# the truth pixel-centre ones (centre of pixel i at i).
res = load("count_dots")
assert len(res) == len(truth["dots"]), (len(res), len(truth["dots"]))
for t in truth["dots"]:
    r = res[t["file"]]
    assert "error" not in r, r
    c = r["count"]
    assert abs(c["count"] - t["count"]) <= 0.1 * t["count"] + (0.5 if t["count"] == 0 else 0), (t["file"], c["count"], t["count"])
    pts = [(p["x"] - 0.5, p["y"] - 0.5) for p in c["points"]]
    assert len(pts) == c["count"], (t["file"], len(pts), c["count"])
    for d in t["dots"]:
        best = min(((x - d["x"]) ** 2 + (y - d["y"]) ** 2) ** 0.5 for x, y in pts)
        assert best <= d["r"] + 3, (t["file"], d, best)
print(f"dots: {len(res)} images, counts and positions right")

# A crop area with T2: the count of dots inside the area, no points. Dots
# whose discs cross the area's edge are cut, so only images without such a
# dot must be exact; the others within one.
res = load("count_dots_area_t2")
x0, y0, w, h, exact = 16, 16, 160, 120, 0
for t in truth["dots"]:
    c = res[t["file"]]["count"]
    assert "points" not in c, c
    x1, y1 = min(x0 + w, t["width"]), min(y0 + h, t["height"])
    inside = sum(1 for d in t["dots"] if x0 <= d["x"] + 0.5 < x1 and y0 <= d["y"] + 0.5 < y1)
    near_edge = any(min(abs(d["x"] + 0.5 - x0), abs(d["x"] + 0.5 - x1), abs(d["y"] + 0.5 - y0), abs(d["y"] + 0.5 - y1)) < d["r"] + 8
                    and x0 - 12 < d["x"] < x1 + 12 and y0 - 12 < d["y"] < y1 + 12 for d in t["dots"])
    if near_edge:
        assert abs(c["count"] - inside) <= 1, (t["file"], c["count"], inside)
    else:
        assert c["count"] == inside, (t["file"], c["count"], inside)
        exact += 1
assert exact >= 3, exact
print(f"area + T2: {exact} images exact, the rest within one")

res = load("colours")
for t in truth["colours"]:
    labels = res[t["file"]]["label"]["labels"]
    assert labels[0]["label"] == t["label"], (t["file"], labels, t["label"])
    assert len(labels) == 3 and labels[0]["score"] >= labels[1]["score"] >= labels[2]["score"], labels
print(f"colours: {len(truth['colours'])} images named right")

res = load("scratches")
def overlap(a, b):
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]
for t in truth["scratches"]:
    d = res[t["file"]]["defects"]
    assert d["count"] == t["count"], (t["file"], d["count"], t["count"])
    for o in d["objects"]:
        box = (o["x0"], o["y0"], o["x1"] - 1, o["y1"] - 1)
        assert any(overlap(box, b) for b in t["boxes"]), (t["file"], o, t["boxes"])
print(f"scratches: {len(truth['scratches'])} images, counts and boxes right")
PY
pass "the example pipelines answer right on every synthetic image"

# A bad input among good ones: its own error line, the others go through,
# exit code 1.
printf 'not an image' > "$T/bad.png"
rc=0
"$TEST_INFERD" run "$ex/colours.json" "$TEST_DATA/colour_00_black.png" "$T/bad.png" \
  "$TEST_DATA/colour_02_red.png" > "$T/mixed.jsonl" 2>/dev/null || rc=$?
[ "$rc" = 1 ] || fail "a bad input: exit $rc, want 1"
[ "$(wc -l < "$T/mixed.jsonl")" = 3 ] || fail "mixed: $(cat "$T/mixed.jsonl")"
sed -n 2p "$T/mixed.jsonl" | grep -q '"input":"[^"]*bad.png","error":{"code":"[a-z_]*","message":"element decode (image_decoder, plugin vision' \
  || fail "bad input line: $(sed -n 2p "$T/mixed.jsonl")"
sed -n 3p "$T/mixed.jsonl" | grep -q '"label":"red"' || fail "the input after the bad one"
pass "a bad input gets its own error line; the others are answered; exit 1"

# Bad images, each its own clear error, and the pipeline goes on: a truncated
# JPEG, an empty file, a PNG whose header says 0 pixels wide, one whose header
# claims 60000x60000 (a decompression bomb: refused before any allocation).
python3 - "$TEST_DATA/colour_03_green.jpg" "$T" <<'PY'
import struct, sys, zlib
jpeg, out = open(sys.argv[1], "rb").read(), sys.argv[2]
open(f"{out}/truncated.jpg", "wb").write(jpeg[: len(jpeg) // 2])
open(f"{out}/empty.png", "wb").write(b"")
def chunk(t, b):
    return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b) & 0xFFFFFFFF)
def png(w, h):
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
open(f"{out}/zero.png", "wb").write(png(0, 100))
open(f"{out}/bomb.png", "wb").write(png(60000, 60000))
PY
rc=0
"$TEST_INFERD" run "$ex/colours.json" "$T/truncated.jpg" "$T/empty.png" "$T/zero.png" \
  "$T/bomb.png" "$TEST_DATA/colour_02_red.png" > "$T/bad.jsonl" 2>/dev/null || rc=$?
[ "$rc" = 1 ] || fail "bad images: exit $rc, want 1"
expect_line() { # expect_line N PATTERN
  sed -n "$1p" "$T/bad.jsonl" | grep -q -- "$2" || fail "line $1: want $2: $(sed -n "$1p" "$T/bad.jsonl")"
}
expect_line 1 '"code":"invalid","message":"element decode (image_decoder, plugin vision [0-9.]*): process failed: decoding image/jpeg ([0-9]* bytes): JPEG: Premature end of JPEG file"'
expect_line 2 '"code":"invalid".*image data is empty'
expect_line 3 '"input":"[^"]*zero.png","error":{"code":"[a-z]*","message":"element decode'
expect_line 4 '"code":"range".*PNG image 60000x60000 (3600000000 pixels) exceeds the limit of 67108864 pixels'
expect_line 5 '"label":"red"'
pass "truncated, empty, zero-width and bomb images get clear errors; the next input is answered"

# An input that cannot be read comes out in its place: after the results of
# the inputs before it, before those after it.
rc=0
"$TEST_INFERD" run "$ex/colours.json" "$TEST_DATA/colour_02_red.png" "$T/missing.png" \
  "$TEST_DATA/colour_04_blue.png" > "$T/order.jsonl" 2>/dev/null || rc=$?
[ "$rc" = 1 ] || fail "an unreadable input: exit $rc, want 1"
sed -n 1p "$T/order.jsonl" | grep -q '"input":"[^"]*colour_02_red.png".*"label":"red"' &&
  sed -n 2p "$T/order.jsonl" | grep -qF '{"input":"'"$T"'/missing.png","error":{"code":"io","message":"cannot open '"$T"'/missing.png: No such file or directory"}}' &&
  sed -n 3p "$T/order.jsonl" | grep -q '"input":"[^"]*colour_04_blue.png".*"label":"blue"' ||
  fail "the output order: $(cat "$T/order.jsonl")"
pass "inferd run: an unreadable input's error comes in its place, between the results around it"

# A pipeline file written for the pipeline seed's framework, with its element
# names (mxpi_imagedecoder, mxpi_imageresize, mxpi_tensorinfer taking the
# resized picture, mxpi_dataserialize with outputDataKeys) and appsrc's and
# appsink's blocksize: it runs unchanged.
cat > "$T/seed.json" <<'JSON'
{"colours": {
  "stream_config": {"deviceId": "0"},
  "appsrc0": {"props": {"blocksize": "409600"}, "factory": "appsrc", "next": "mxpi_imagedecoder0"},
  "mxpi_imagedecoder0": {"props": {"deviceId": "0"}, "factory": "mxpi_imagedecoder", "next": "mxpi_imageresize0"},
  "mxpi_imageresize0": {"props": {"dataSource": "mxpi_imagedecoder0", "resizeHeight": "64", "resizeWidth": "64"},
                        "factory": "mxpi_imageresize", "next": "mxpi_tensorinfer0"},
  "mxpi_tensorinfer0": {"props": {"modelPath": "colour_classifier.onnx"}, "factory": "mxpi_tensorinfer", "next": "label0"},
  "label0": {"factory": "classify_topk", "props": {"labels": "black,white,red,green,blue,yellow,cyan,magenta"},
             "next": "mxpi_dataserialize0"},
  "mxpi_dataserialize0": {"props": {"outputDataKeys": "label0"}, "factory": "mxpi_dataserialize", "next": "appsink0"},
  "appsink0": {"props": {"blocksize": "4096000"}, "factory": "appsink"}}}
JSON
"$TEST_INFERD" run "$T/seed.json" "$TEST_DATA/colour_02_red.png" > "$T/seed.out" 2>/dev/null ||
  fail "the seed-format pipeline: $(cat "$T/seed.out")"
grep -q '"label0":{"labels":\[{"label":"red"' "$T/seed.out" || fail "the seed-format pipeline's result: $(cat "$T/seed.out")"
# Its properties that have no counterpart: all at once, each with what to do.
sed -e 's/"deviceId": "0"}, "factory": "mxpi_imagedecoder"/"imageFormat": "jpg", "cvProcessor": "opencv"}, "factory": "mxpi_imagedecoder"/' \
    -e 's/"modelPath": "colour_classifier.onnx"}/"modelPath": "colour_classifier.onnx", "waitingTime": "5000"}/' \
    "$T/seed.json" > "$T/seed_bad.json"
rc=0
"$TEST_INFERD" run "$T/seed_bad.json" "$TEST_DATA/colour_02_red.png" > "$T/seed_bad.out" 2>&1 || rc=$?
[ "$rc" = 2 ] &&
  grep -qF "element mxpi_imagedecoder0 (mxpi_imagedecoder, as image_decoder): property 'imageFormat' has no counterpart: remove it: the codec is read from the bytes (JPEG or PNG); element mxpi_imagedecoder0 (mxpi_imagedecoder, as image_decoder): property 'cvProcessor' has no counterpart" "$T/seed_bad.out" &&
  grep -qF "element mxpi_tensorinfer0 (mxpi_tensorinfer, as tensor_infer): property 'waitingTime' has no counterpart: remove it: batching is the estimators'" "$T/seed_bad.out" ||
  fail "seed properties without counterpart: exit $rc: $(cat "$T/seed_bad.out")"
pass "a pipeline file in the seed framework's format runs with its element names; properties without counterpart are refused all at once, each with what to do"

# tensor_infer given the picture itself, stretched by its input contract to
# 512x384: the points come back on the picture's own dots (the transform).
cat > "$T/picture_in.json" <<'JSON'
{"s": {"in": {"factory": "appsrc", "next": "decode"},
 "decode": {"factory": "image_decoder", "props": {"format": "rgb"}, "next": "infer"},
 "infer": {"factory": "tensor_infer", "props": {"modelPath": "dot_density.onnx",
           "input": {"resize": "stretch", "width": 512, "height": 384}}, "next": "count"},
 "count": {"factory": "density_count", "next": "json"},
 "json": {"factory": "json_serialize", "next": "out"},
 "out": {"factory": "appsink"}}}
JSON
"$TEST_INFERD" run "$T/picture_in.json" "$TEST_DATA/dots_03_5.png" > "$T/picture_in.out" 2>/dev/null ||
  fail "tensor_infer with a picture: $(cat "$T/picture_in.out")"
python3 - "$T/picture_in.out" "$TEST_DATA/truth.json" <<'PY' || fail "tensor_infer with a picture: points"
import json, math, sys
r = json.loads(open(sys.argv[1]).read())
t = next(d for d in json.load(open(sys.argv[2]))["dots"] if d["file"] == "dots_03_5.png")
assert r["count"]["count"] == t["count"], r
for p in r["count"]["points"]:
    assert min(math.hypot(p["x"] - 0.5 - d["x"], p["y"] - 0.5 - d["y"]) for d in t["dots"]) < 3, p
PY
pass "tensor_infer takes a picture: stretched by its input contract, the points mapped back onto the dots"

# tensor_infer given a picture, with models exported the usual other ways
# (models/variants.py): uint8 NHWC with a fixed batch of 1, a fixed 224x224
# input, BGR with mean/std said in the model's metadata, and the same model
# without the metadata (told by the input property, and not told at all).
/usr/bin/python3 "$TEST_SRCDIR/models/variants.py" --out "$T/var" >/dev/null || fail "models/variants.py"
cp "$TEST_MODELS/colour_classifier.labels" "$T/var/colours.labels"
picture_pipeline() { # NAME MODEL POST(count|label) [INPUT_JSON]
  local post
  if [ "$3" = count ]; then
    post='"count": {"factory": "density_count", "props": {"target": "T2"}, "next": "json"}'
  else
    post="\"count\": {\"factory\": \"classify_topk\", \"props\": {\"labelsFile\": \"$T/var/colours.labels\"}, \"next\": \"json\"}"
  fi
  cat > "$T/$1.json" <<JSON
{"s": {"in": {"factory": "appsrc", "next": "decode"},
 "decode": {"factory": "image_decoder", "props": {"format": "rgb"}, "next": "infer"},
 "infer": {"factory": "tensor_infer", "props": {"modelPath": "$T/var/$2"${4:+, \"input\": $4}}, "next": "count"},
 $post,
 "json": {"factory": "json_serialize", "next": "out"},
 "out": {"factory": "appsink"}}}
JSON
}
picture_pipeline u8 dot_density_u8_nhwc.onnx count
"$TEST_INFERD" run "$T/u8.json" "$TEST_DATA/dots_03_5.png" > "$T/u8.out" 2>&1 || fail "uint8 NHWC: $(cat "$T/u8.out")"
grep -q '"count":{"count":5' "$T/u8.out" || fail "uint8 NHWC, fixed batch 1: $(cat "$T/u8.out")"
picture_pipeline fixed colour_classifier_224.onnx label
picture_pipeline meta colour_classifier_bgr_meta.onnx label
picture_pipeline told colour_classifier_bgr.onnx label \
  '{"channelOrder": "bgr", "scale": 1, "mean": [103.53, 116.28, 123.675], "std": [57.375, 57.12, 58.395]}'
for n in fixed meta told; do
  "$TEST_INFERD" run "$T/$n.json" "$TEST_DATA/colour_02_red.png" > "$T/$n.out" 2>&1 || fail "$n: $(cat "$T/$n.out")"
  grep -q '"labels":\[{"label":"red"' "$T/$n.out" || fail "$n: $(cat "$T/$n.out")"
done
# Not told: the BGR model fed RGB in [0, 1] answers, but not red.
picture_pipeline untold colour_classifier_bgr.onnx label
"$TEST_INFERD" run "$T/untold.json" "$TEST_DATA/colour_02_red.png" > "$T/untold.out" 2>&1 || fail "untold: $(cat "$T/untold.out")"
grep -q '"labels":\[{"label":"red"' "$T/untold.out" && fail "a BGR mean/std model fed RGB [0, 1] still said red: the test proves nothing"
pass "tensor_infer with a picture: uint8 NHWC at a fixed batch of 1 counts 5; a fixed 224x224 input, BGR mean/std from the model's metadata or from the input property each say red (and without either it does not)"

# A pipeline that reads a folder itself (filesrc) and writes a file
# (filesink): the example, pointed at a folder of scratch images.
mkdir -p "$T/scr"
cp "$TEST_DATA"/scratches_* "$T/scr/"
sed -e "s|\"build/tests/data\"|\"$T/scr\"|" -e "s|\"scratches.jsonl\"|\"$T/scr.jsonl\"|" \
  "$ex/scratches_folder.json" > "$T/folder.json"
"$TEST_INFERD" run "$T/folder.json" > "$T/folder.out" 2>&1 || fail "filesrc run: $(cat "$T/folder.out")"
python3 - "$T/scr.jsonl" "$TEST_DATA/truth.json" <<'PY' || fail "filesrc results"
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
truth = {t["file"]: t["count"] for t in json.load(open(sys.argv[2]))["scratches"]}
assert len(rows) == len(truth), (len(rows), len(truth))
for i, r in enumerate(rows):
    assert r["frame"] == i, r
    assert r["defects"]["count"] == truth[os.path.basename(r["files"]["file"])], r
PY
rc=0
sed "s|\"build/tests/data\"|\"$T/nowhere\"|" "$ex/scratches_folder.json" > "$T/nowhere.json"
(cd "$T" && "$TEST_INFERD" run "$T/nowhere.json") > "$T/nowhere.out" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "filesrc on a missing folder: exit $rc"
grep -q "cannot read $T/nowhere: No such file or directory" "$T/nowhere.out" || fail "$(cat "$T/nowhere.out")"
pass "filesrc reads a folder in order, filesink writes a line per image; a missing folder is an error"

# Standard input, and a pipeline that does not fit `run`.
"$TEST_INFERD" run "$ex/colours.json" - < "$TEST_DATA/colour_11_green.png" > "$T/stdin.jsonl" \
  || fail "stdin run"
grep -q '"input":"-".*"label":"green"' "$T/stdin.jsonl" || fail "stdin: $(cat "$T/stdin.jsonl")"
echo '{"p": {"in": {"factory": "appsrc", "next": "x"}, "x": {"factory": "image_decoder", "props": {"format": "cmyk"}, "next": "o"}, "o": {"factory": "appsink"}}}' > "$T/bad.json"
rc=0; "$TEST_INFERD" run "$T/bad.json" x.png > /dev/null 2> "$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q "element x (image_decoder): property 'format'" "$T/err" \
  || fail "bad pipeline: rc $rc: $(cat "$T/err")"
pass "standard input works; a bad pipeline file exits 2 naming the element"
echo "test_pipelines: all passed"
