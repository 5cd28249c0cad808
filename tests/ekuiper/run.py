#!/usr/bin/env python3
"""Runs eKuiper's own rule test vectors (vectors.json, made by extract.py from
eKuiper's internal/topo/topotest) against a running inferd, over its REST API
as a user of eKuiper would: each stream created from eKuiper's CREATE STREAM
(its mock source replaced by an HTTP push stream), each case a rule whose
only action appends to a file, the stream's messages pushed in order, and
what the rule sent compared with what eKuiper expects.

    run.py BASE_URL OUT_DIR [--vectors F] [--known F] [--write-known F] [--only NAME]

Prints one line per case (pass, FAIL with the first difference, or not run
with why: a case with binary data, or a processing-time window, which
eKuiper runs on a mock clock) and a summary. --known names a file of the cases known to fail,
one "NAME: why" a line: the exit status is 1 when a case outside it fails
or a case in it passes (so the list stays true), else 0. A case is named
FUNCTION.NAME (eKuiper's Go test function and the case's name).
--write-known writes the failures of this run as such a file (then read it:
each line's why is the first difference, to be kept short and true).

Comparison: the emissions in order, each the same rows in the same order,
each row the same keys and values. Numbers compare by value (eKuiper's
int64(3) and float64(3) are both 3 in JSON). A row that eKuiper expects to
be {"error": ...} matches any error row: the messages are each engine's own.
"""
import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def call(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read().decode()
            return r.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, text


def why(reply):
    if isinstance(reply, dict) and isinstance(reply.get("error"), dict):
        return reply["error"].get("message", "")
    return str(reply)


# The WITH options that say where a stream's messages come from are
# eKuiper's mock source's; an HTTP push stream takes their place.
SOURCE_OPTIONS = {"TYPE", "DATASOURCE", "CONF_KEY", "SHARED"}


def push_stream_sql(create, name):
    m = re.match(r"(?is)\s*(CREATE\s+(?:STREAM|TABLE)\s+\w+\s*\(.*\))\s*WITH\s*\((.*)\)\s*;?\s*$",
                 create)
    if not m:
        raise ValueError("cannot read the statement: " + create)
    head, opts = m.group(1), m.group(2)
    kept = []
    for opt in re.findall(r'(\w+)\s*=\s*("(?:[^"\\]|\\.)*")', opts):
        if opt[0].upper() not in SOURCE_OPTIONS:
            kept.append("%s=%s" % opt)
    kept += ['TYPE="httppush"', 'DATASOURCE="/%s"' % name]
    return "%s WITH (%s)" % (" ".join(head.split()), ", ".join(kept))


def same(want, got):
    if isinstance(want, dict) and set(want) == {"error"}:
        return isinstance(got, dict) and "error" in got
    if isinstance(want, bool) or isinstance(got, bool):
        return want is got
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        return want == got
    if isinstance(want, dict):
        return (isinstance(got, dict) and set(want) == set(got)
                and all(same(want[k], got[k]) for k in want))
    if isinstance(want, list):
        return (isinstance(got, list) and len(want) == len(got)
                and all(same(w, g) for w, g in zip(want, got)))
    return want == got


def first_difference(want, got):
    if len(want) != len(got):
        return "%d emissions, want %d: got %s" % (len(got), len(want),
                                                json.dumps(got)[:300])
    for i, (w, g) in enumerate(zip(want, got)):
        if not same(w, g):
            return "emission %d: got %s, want %s" % (i + 1, json.dumps(g)[:300],
                                                    json.dumps(w)[:300])
    return None


def case_key(c):
    """eKuiper's names repeat across its test functions: function.name is unique."""
    return "%s.%s" % (c.get("function", ""), c["name"])


def short_why(detail):
    detail = re.sub(r"^rule refused \(400\): rule \S+: (sql: at line \d+, column \d+: )?",
                    "refused: ", detail)
    detail = re.sub(r"^stream refused \(400\): ", "stream refused: ", detail)
    if re.match(r"^(emission|\d+ emissions)", detail):
        detail = "different rows: " + detail
    return detail[:160]


def rule_id(key):
    return re.sub(r"[^A-Za-z0-9_]", "_", key)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("out")
    ap.add_argument("--vectors", default=os.path.join(HERE, "vectors.json"))
    ap.add_argument("--known")
    ap.add_argument("--write-known")
    ap.add_argument("--only")
    a = ap.parse_args()
    v = json.load(open(a.vectors))
    known = {}
    if a.known:
        for line in open(a.known):
            line = line.strip()
            if line and not line.startswith("#"):
                name, _, reason = line.partition(":")
                known[name.strip()] = reason.strip()

    cases = [c for c in v["cases"] if not a.only or case_key(c) == a.only]
    results = {}  # name -> (verdict, detail); verdict pass, fail or skip
    for c in cases:
        sets = c.get("options") or [{}]
        first = sets[0] if isinstance(sets, list) else sets
        if c.get("skip"):
            results[case_key(c)] = ("skip", c["skip"])
        elif (re.search(r"(?i)(TUMBLING|HOPPING|SLIDING|SESSION)WINDOW", c["sql"])
              and not first.get("IsEventTime")):
            # eKuiper runs these on its mock clock, set from each message's
            # timestamp: a window of seconds over five messages pushed in a
            # few milliseconds cannot be compared with it.
            results[case_key(c)] = ("skip", "a processing-time window on eKuiper's mock clock")

    # The streams the runnable cases read (the FROM of their SQL).
    wanted = {}
    for c in cases:
        if case_key(c) in results:
            continue
        m = re.search(r"(?i)\bFROM\s+(\w+)", c["sql"])
        s = m.group(1) if m else None
        if s not in v["streams"] or "data" not in v["streams"][s]:
            results[case_key(c)] = ("skip", "no data for stream %s in eKuiper's mock" % s)
            continue
        wanted[case_key(c)] = s
    streams = {}  # name -> None when created, else why not
    for s in sorted(set(wanted.values())):
        st = v["streams"][s]
        if "create" not in st:
            streams[s] = "eKuiper's mock has no CREATE statement for it"
            continue
        sql = push_stream_sql(st["create"], s)
        code, reply = call(a.base, "POST", "/streams", {"sql": sql})
        streams[s] = None if code == 201 else "stream refused (%d): %s" % (code, why(reply))

    started = []
    for c in cases:
        name = case_key(c)
        if name in results:
            continue
        s = wanted[name]
        if streams[s]:
            results[name] = ("fail", streams[s])
            continue
        # eKuiper runs a case under each of its option sets; the first is
        # the plain one (the others add checkpoints and QoS).
        opts = {"sendError": True, "bufferLength": 1024}
        sets = c.get("options") or [{}]
        for k, val in (sets[0] if isinstance(sets, list) else sets).items():
            k = k[0].lower() + k[1:]
            if k in ("isEventTime", "sendError"):
                opts[k] = val
            elif k == "lateTol":
                opts["lateTolerance"] = val
        path = os.path.join(a.out, rule_id(name) + ".jsonl")
        rule = {"id": rule_id(name), "sql": c["sql"], "options": opts,
                "actions": [{"file": {"path": path}}]}
        code, reply = call(a.base, "POST", "/rules", rule)
        if code != 201:
            results[name] = ("fail", "rule refused (%d): %s" % (code, why(reply)))
            continue
        started.append((c, s, path))

    # Every rule is running before the first message, so each sees them all.
    deadline = time.time() + 20
    for c, s, path in started:
        while time.time() < deadline:
            _, st = call(a.base, "GET", "/rules/%s/status" % rule_id(case_key(c)))
            if isinstance(st, dict) and st.get("status") in ("running", "failed"):
                break
            time.sleep(0.05)
    accepted = {}  # stream -> messages it took (a strict stream refuses some)
    for s in sorted({s for _, s, _ in started}):
        accepted[s] = 0
        for msg in v["streams"][s]["data"]:
            code, reply = call(a.base, "POST", "/push/" + s, msg["message"])
            if code == 202:
                accepted[s] += 1
            else:
                print("push to %s refused (%d): %s" % (s, code, why(reply)), file=sys.stderr)
    # Settled: each rule took every message and nothing waits in its buffers.
    deadline = time.time() + 30
    for c, s, path in started:
        n = accepted[s]
        while time.time() < deadline:
            _, st = call(a.base, "GET", "/rules/%s/status" % rule_id(case_key(c)))
            if not isinstance(st, dict) or st.get("status") != "running":
                break
            if (st.get("source_%s_0_records_out_total" % s) == n
                    and st.get("source_%s_0_buffer_length" % s) == 0
                    and all(val == 0 for k, val in st.items()
                            if k.startswith("sink_") and k.endswith("_buffer_length"))):
                break
            time.sleep(0.05)
    time.sleep(0.3)

    for c, s, path in started:
        got = []
        if os.path.exists(path):
            for line in open(path):
                row = json.loads(line)
                got.append(row if isinstance(row, list) else [row])
        diff = first_difference(c["expected"], got)
        if diff:
            _, st = call(a.base, "GET", "/rules/%s/status" % rule_id(case_key(c)))
            exc = (st or {}).get("op_1_select_0_last_exception") if isinstance(st, dict) else None
            if exc:
                diff += " (last exception: %s)" % exc
        results[case_key(c)] = ("fail", diff) if diff else ("pass", "")

    bad = 0
    counts = {"pass": 0, "fail": 0, "skip": 0}
    for c in cases:
        verdict, detail = results[case_key(c)]
        counts[verdict] += 1
        key = case_key(c)
        if verdict == "pass":
            print("pass     %s" % key)
            if key in known:
                print("  ^ listed as known to fail (%s): take it off the list" % known[key])
                bad += 1
        elif verdict == "skip":
            print("not run  %s: %s" % (key, detail))
        else:
            print("FAIL     %s: %s" % (key, detail))
            if known and key not in known:
                print("  ^ not in the list of known failures")
                bad += 1
    if a.write_known:
        with open(a.write_known, "w") as f:
            f.write("# eKuiper's rule test vectors that fail here (tests/ekuiper/run.py --known),\n"
                    "# one FUNCTION.NAME: why a line. The test fails when a case not listed fails\n"
                    "# or a listed one passes: take it off when it does.\n")
            for c in cases:
                verdict, detail = results[case_key(c)]
                if verdict == "fail":
                    f.write("%s: %s\n" % (case_key(c), short_why(detail)))
    ran = counts["pass"] + counts["fail"]
    print("eKuiper's vectors: %d cases, %d run, %d pass (%.0f %% of those run), %d fail, %d not run"
          % (len(cases), ran, counts["pass"], 100.0 * counts["pass"] / ran if ran else 0,
             counts["fail"], counts["skip"]))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
