#!/usr/bin/env python3
"""Extract eKuiper's end-to-end rule test vectors into tests/ekuiper/vectors.json.

eKuiper (lf-edge/ekuiper, Apache-2.0) keeps its topology tests as Go composite
literals: RuleTest{Name, Sql, R, ...} in internal/topo/topotest/*_test.go, the
mock stream data in mocknode/mock_data.go and the CREATE STREAM statements in
mock_topo.go.  This script reads those files from a git checkout or mirror of
eKuiper (HEAD), parses the small subset of Go literal syntax they use with its
own tokenizer and recursive-descent parser, and writes the facts as JSON.

It is run by hand:  python3 tests/ekuiper/extract.py [path-to-ekuiper-repo]
CI has no eKuiper checkout; the generated vectors.json is committed instead.
Standard library only.  A summary goes to stderr.
"""
import codecs
import json
import os
import re
import subprocess
import sys

TOPO = "internal/topo/topotest/"
TEST_FILES = ["rule_test.go", "window_rule_test.go"]
DATA_FILE, TOPO_FILE = "mocknode/mock_data.go", "mock_topo.go"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vectors.json")
DURATIONS = {"time.Millisecond": 1, "time.Second": 1000, "time.Minute": 60000, "time.Hour": 3600000}
CONVERSIONS = {"int": int, "int32": int, "int64": int, "uint": int, "uint32": int, "uint64": int,
               "float32": float, "float64": float}
TOKEN_RE = re.compile(r"""(?P<ws>\s+|//[^\n]*|/\*.*?\*/)|(?P<raw>`[^`]*`)|(?P<str>"(?:[^"\\\n]|\\.)*")
  |(?P<rune>'(?:[^'\\\n]|\\.)+')|(?P<num>0[xX][0-9a-fA-F_]+|\d[\d_]*\.?[\d_]*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)
  |(?P<id>[^\W\d]\w*)|(?P<op>:=|\.\.\.|&&|\|\||==|!=|<=|>=|<-|\+\+|--|[-+*/%&|^<>=!()\[\]{},;:.])|(?P<bad>.)""",
                      re.S | re.X)

class ParseError(Exception):
    """The Go text is outside the literal subset this parser knows."""

class NotData(Exception):
    """A value that cannot be written as JSON data."""

PARSE_ERRORS = (ParseError, ValueError, KeyError, IndexError, TypeError)

class Opaque:
    """A Go value that is not plain data: a call, a variable, an unparsable element."""
    def __init__(self, desc, toks=()):
        self.desc, self.toks = desc, toks

class Ref(Opaque):
    """An identifier or selector such as `tests`, `def.AtLeastOnce`, `mocknode.Image`."""

class Struct(dict):
    """A struct literal: field name -> value, remembering the Go type name."""
    def __init__(self, typename):
        super().__init__()
        self.type = typename

def tokenize(src):
    toks = [(m.lastgroup, m.group()) for m in TOKEN_RE.finditer(src) if m.lastgroup != "ws"]
    bad = [t for k, t in toks if k == "bad"]
    if bad:
        raise ParseError("bad characters %r" % bad[:5])
    return toks + [("eof", "")]

def unquote(lit):
    """Decode a Go "..." or '...' literal (\\u escapes become UTF-8, the rest is byte-level)."""
    def uni(m):
        return m.group(1) or "".join("\\x%02x" % b for b in chr(int(m.group(2) or m.group(3), 16)).encode())
    body = re.sub(r"(\\\\)|\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})", uni, lit[1:-1])
    return codecs.escape_decode(body.encode())[0].decode()

class Parser:
    """Recursive descent over a token list; types are tuples:
    ("slice", elem) ("map", key, val) ("ptr", t) ("iface",) ("named", name)."""
    def __init__(self, toks, pos=0):
        self.toks, self.pos = toks, pos

    def peek(self, k=0):
        return self.toks[self.pos + k][1]

    def next(self):
        self.pos += 1
        return self.toks[self.pos - 1][1]

    def expect(self, text):
        if self.next() != text:
            raise ParseError("expected %r, got %r (token %d)" % (text, self.peek(-1), self.pos - 1))

    def text(self, start):
        return "".join(t for _, t in self.toks[start:self.pos])

    def skip_element(self):
        """Skip to the next ',' or closing bracket at this nesting level."""
        depth = 0
        while self.peek() and not (depth == 0 and self.peek() in (",", ")", "]", "}")):
            depth += {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}.get(self.next(), 0)

    def parse_type(self):
        t = self.next()
        if t == "[":
            while self.next() != "]":  # array length, if any, is ignored
                pass
            return ("slice", self.parse_type())
        if t == "map":
            self.expect("[")
            key = self.parse_type()
            self.expect("]")
            return ("map", key, self.parse_type())
        if t == "*":
            return ("ptr", self.parse_type())
        if t == "interface":
            self.expect("{")
            self.expect("}")
            return ("iface",)
        while self.peek() == ".":
            t += self.next() + self.next()
        return ("iface",) if t == "any" else ("named", t)

    def composite(self, typ):
        """`{ ... }` of type typ; typ None means elided and unknown (keyed -> map, else list)."""
        while typ and typ[0] == "ptr":
            typ = typ[1]
        self.expect("{")
        kind = typ[0] if typ else None
        result = Struct(typ[1]) if kind == "named" else {} if kind == "map" else [] if kind == "slice" else None
        while self.peek() != "}":
            if result is None:
                result = {} if self.peek(1) == ":" else []
            start = self.pos
            try:
                if isinstance(result, list):
                    result.append(self.value(typ[1] if typ else None))
                elif isinstance(result, Struct):
                    name = self.next()
                    self.expect(":")
                    result[name] = self.value(None)
                else:
                    key = self.value(typ[1] if typ else None)
                    self.expect(":")
                    result[key] = self.value(typ[2] if typ else None)
            except PARSE_ERRORS as e:
                if not isinstance(result, list):
                    raise
                self.pos = start  # keep a marker for the bad element and go on with the rest
                self.skip_element()
                result.append(Opaque("unparsable element: %s" % e, self.toks[start:self.pos]))
            if self.peek() != ",":
                break
            self.next()
        self.expect("}")
        return [] if result is None else result

    def value(self, typ):
        return self.composite(typ) if self.peek() == "{" else self.expr()

    def expr(self, ops=("+", "-")):
        """Binary + - (and * / one level down) on numbers and strings."""
        left = self.expr(("*", "/")) if ops[0] == "+" else self.unary()
        while self.peek() in ops:
            op = self.next()
            right = self.expr(("*", "/")) if ops[0] == "+" else self.unary()
            if isinstance(left, Opaque) or isinstance(right, Opaque):
                left = Opaque("expression with " + op)
            elif op in ("+", "-"):
                left = left + right if op == "+" else left - right
            else:
                left = left * right if op == "*" else left / right
        return left

    def unary(self):
        if self.peek() == "-":
            self.next()
            v = self.unary()
            return Opaque("-" + v.desc) if isinstance(v, Opaque) else -v
        if self.peek() == "&":  # &T{...}: the pointer is irrelevant here
            self.next()
        return self.primary()

    def primary(self):
        kind, text = self.toks[self.pos]
        start = self.pos
        if kind in ("str", "raw", "rune", "num"):
            self.next()
            if kind == "raw":
                return text[1:-1].replace("\r", "")
            if kind != "num":
                return unquote(text) if kind == "str" else ord(unquote(text))
            t = text.replace("_", "")  # Go ints stay ints; a '.' or exponent makes a float
            return int(t, 0) if re.fullmatch(r"0[xX][0-9a-fA-F]+|\d+", t) else float(t)
        if text == "(":
            self.next()
            v = self.expr()
            self.expect(")")
            return v
        if text in ("[", "map", "interface"):
            typ = self.parse_type()
            if self.peek() == "(":  # a conversion such as []byte("x")
                self.args()
                return Opaque(self.text(start))
            return self.composite(typ)
        if kind != "id":
            raise ParseError("unexpected %r (token %d)" % (text, self.pos))
        if text in ("true", "false", "nil"):
            self.next()
            return {"true": True, "false": False, "nil": None}[text]
        name = self.next()
        while self.peek() == "." and self.toks[self.pos + 1][0] == "id":
            name += self.next() + self.next()
        if self.peek() == "{":
            return self.composite(("named", name))
        if self.peek() != "(":
            return DURATIONS.get(name, Ref(name))
        args = self.args()
        arg = args[0] if len(args) == 1 else None
        if name in CONVERSIONS and type(arg) in (int, float):
            return CONVERSIONS[name](arg)
        if name == "cast.DurationConf" and type(arg) is int:
            return arg  # durations are written out in milliseconds
        if name in ("errors.New", "fmt.Errorf") and isinstance(arg, str):
            return {"$error": arg}
        return Opaque(self.text(start))  # e.g. time.UnixMilli(1541152486013), kept as its text

    def args(self):
        self.expect("(")
        out = []
        while self.peek() != ")":
            out.append(self.expr())
            if self.peek() == ",":
                self.next()
        self.expect(")")
        return out

def to_json(v):
    """Plain data only; raise NotData for anything else."""
    if isinstance(v, Opaque):
        raise NotData(v.desc)
    if isinstance(v, dict):
        return {str(k): to_json(x) for k, x in v.items()}
    return [to_json(x) for x in v] if isinstance(v, list) else v

def opt_json(v):
    """Rule options: like to_json, but constants such as def.AtLeastOnce become their name."""
    if isinstance(v, dict):
        return {str(k): opt_json(x) for k, x in v.items()}
    if isinstance(v, Opaque):
        return v.desc.split(".")[-1] if isinstance(v, Ref) else v.desc
    return v

def scan_function(toks):
    """Collect `x := <literal>` vars, `for _, x := range y` aliases and DoRuleTest/HandleStream calls."""
    env, alias, calls, p = {}, {}, [], Parser(toks)
    while p.peek():
        t = p.peek()
        start = p.pos
        if toks[p.pos][0] == "id" and p.peek(1) in (":=", "=") and p.peek(2) in ("[", "&", "map"):
            p.pos += 2
            try:
                env[t] = p.expr()
            except PARSE_ERRORS as e:
                env[t], p.pos = Opaque("unparsable: %s" % e), start + 1
        elif t == "for" and p.peek(1) == "_" and p.peek(4) == ":=" and p.peek(5) == "range":
            alias[p.peek(3)] = p.peek(6)
            p.pos += 7
        elif t in ("DoRuleTest", "DoRuleTestWithResultFunc", "HandleStream") and p.peek(1) == "(":
            p.next()
            try:
                calls.append((t, p.args()))
            except PARSE_ERRORS:
                p.pos = start + 1  # a call we cannot read gives no options
        else:
            p.pos += 1
    return env, alias, calls

def extract_tests(fname, src):
    cases = []
    for m in re.finditer(r"^func (\w+)\(.*?^}$", src, re.M | re.S):  # gofmt: a func ends at "}" in column 0
        fn, toks = m.group(1), tokenize(m.group())
        env, alias, calls = scan_function(toks)
        tests = next((v for v in env.values() if isinstance(v, list)
                      and any(getattr(x, "type", "") == "RuleTest" for x in v)), [])
        # TestWindow reruns some cases: `if strings.Contains(strings.ToLower(tt.Sql), "...")`
        cond = re.search(r'strings\.Contains\(strings\.ToLower\(\w+\.Sql\),\s*"([^"]*)"\)', m.group())
        streams, runs = [], []  # runs: (tests list, [option structs]) per DoRuleTest call
        for name, args in calls:
            args = [env.get(a.desc, a) if isinstance(a, Ref) else a for a in args]
            if name == "HandleStream" and len(args) == 3 and args[0] is True and isinstance(args[1], list):
                streams += [s for s in args[1] if s not in streams]
            elif name != "HandleStream" and len(args) >= 3:
                opt = args[2]
                each = isinstance(opt, Ref) and env.get(alias.get(opt.desc))
                runs.append((args[1], each if isinstance(each, list) else [opt]))
        for tt in tests:
            case = {"file": fname, "function": fn}
            if streams:
                case["streams"] = streams
            if isinstance(tt, Opaque):  # unparsable RuleTest element: find its name by hand
                names = [c for a, b, (k, c) in zip(tt.toks, tt.toks[1:], tt.toks[2:])
                         if a[1] == "Name" and b[1] == ":" and k in ("str", "raw")]
                name = names[0][1:-1] if names else "?"
                case.update(name=name, id="%s/%s" % (fn, name), skip=tt.desc)
                cases.append(case)
                continue
            case.update(name=tt.get("Name"), sql=tt.get("Sql"), id="%s/%s" % (fn, tt.get("Name")))
            if not isinstance(case["name"], str) or not isinstance(case["sql"], str):
                case["skip"] = "Name or Sql is not a string literal"
            elif "R" not in tt:
                case["skip"] = "no R field: expected result not given in the Go source"
            else:
                try:
                    case["expected"] = to_json(tt["R"])
                except NotData as e:
                    case["skip"] = "R holds a value that is not plain data: %s" % e
            # the runs given this case: the whole tests list, or a rerun of `[]RuleTest{tt}` where tt
            # is the loop variable and the case passes the condition
            options = [opt_json(o) for run_tests, opts in runs for o in opts if run_tests is tests or (
                cond and isinstance(run_tests, list) and any(isinstance(x, Ref) for x in run_tests)
                and cond.group(1) in str(case["sql"]).lower())]
            if options:
                case["options"] = options
            cases.append(case)
    return cases

def extract_streams(data_src, topo_src):
    streams, toks = {}, tokenize(topo_src)
    for i in range(len(toks) - 5):  # in HandleStream's switch: case "name": sql = `CREATE ...`
        if [t for _, t in toks[i:i + 5:2]] == ["case", ":", "="] and toks[i + 3][1] == "sql":
            streams.setdefault(Parser(toks, i + 1).expr(), {})["create"] = Parser(toks, i + 5).expr()
    decl = re.search(r"^var TestData = (.*?^})$", data_src, re.M | re.S).group(1)
    for name, tuples in Parser(tokenize(decl)).expr().items():
        entry = streams.setdefault(name, {})
        try:
            rows = []
            for tup in tuples if isinstance(tuples, list) else [tuples]:
                if getattr(tup, "type", None) != "xsql.Tuple":
                    raise NotData("tuple is %s" % getattr(tup, "type", getattr(tup, "desc", tup)))
                ts = re.fullmatch(r"time\.UnixMilli\((\d+)\)", getattr(tup.get("Timestamp"), "desc", ""))
                if not ts:
                    raise NotData("Timestamp is not time.UnixMilli(<int>)")
                rows.append({"message": to_json(tup.get("Message")), "timestamp": int(ts.group(1))})
            entry["data"] = rows
        except NotData as e:  # e.g. binary payloads: []byte("..."), mocknode.Image
            entry["skip"] = "data not plain: %s" % e
    return streams

def main():
    repo = sys.argv[1] if len(sys.argv) > 1 else "/work/.mirror/lf-edge+ekuiper/repo"

    def git(*args):
        return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, text=True).stdout
    cases = []
    for f in TEST_FILES:
        cases += extract_tests(f, git("show", "HEAD:" + TOPO + f))
    streams = extract_streams(git("show", "HEAD:" + TOPO + DATA_FILE), git("show", "HEAD:" + TOPO + TOPO_FILE))
    out = {
        "source": {"repo": "lf-edge/ekuiper", "commit": git("rev-parse", "HEAD").strip(),
                   "files": [TOPO + f for f in TEST_FILES + [DATA_FILE, TOPO_FILE]],
                   "notes": "Generated by tests/ekuiper/extract.py. Option durations (LateTol, "
                            "CheckpointInterval) are in milliseconds; Qos is the Go constant name. "
                            "Case ids are <Go function>/<Name>; names repeat across functions."},
        "streams": streams,
        "cases": cases,
    }
    with open(OUT, "w") as fh:
        json.dump(out, fh, indent=1, sort_keys=True, ensure_ascii=False)
        fh.write("\n")
    skipped = [c for c in cases if "skip" in c]
    print("cases: %d, skipped: %d" % (len(cases), len(skipped)), file=sys.stderr)
    for c in skipped:
        print("  skip %s/%s: %s" % (c["function"], c["name"], c["skip"]), file=sys.stderr)
    print("streams: %d" % len(streams), file=sys.stderr)
    for name, s in sorted(streams.items()):
        print("  %-20s create=%-5s rows=%d%s" % (name, "create" in s, len(s.get("data", [])),
              "  skip: " + s["skip"] if "skip" in s else ""), file=sys.stderr)

if __name__ == "__main__":
    main()
