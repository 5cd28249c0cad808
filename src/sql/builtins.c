/* builtins.c: the built-in functions of the rule language. Names are
 * case-insensitive and cannot be taken by plugins. Unless marked [null ok],
 * a function with a NULL argument returns NULL without being called. A
 * wrong argument is an error naming the function and the argument:
 * "sqrt: argument 1 must be a number, got string".
 *
 * Math (number: int or double)
 *   abs(n)              int stays int, double stays double
 *   ceil(n) floor(n)    an int as is, a double rounded (still a double)
 *   round(n [, digits]) half away from zero; an int with digits >= 0 as is
 *   sqrt(n)             double; negative is an error
 *   power(x, y)         double
 *   mod(x, y)           as x % y (ints stay ints; by zero is an error)
 *   exp(n) ln(n)        double; ln of n <= 0 is an error
 *   log(n)              base 10;  log(b, n): base b
 *   sin cos tan asin acos atan (n), atan2(y, x)   radians, double
 *   pi()                double
 *   rand()              double in [0, 1)
 *   sign(n)             int -1, 0 or 1
 *   bitand bitor bitxor (x, y), bitnot(x)   ints
 *   cosh sinh tanh (n)  double
 *   degrees(rad) radians(deg)   double
 *   trunc(n, digits)    cut towards zero; an int with digits >= 0 as is
 * Strings (lengths and positions count characters, not bytes)
 *   concat(x, ...)      strings, numbers and bools joined as text
 *   lower(s) upper(s)   ASCII letters
 *   length(s)           int
 *   trim(s) ltrim(s) rtrim(s)   spaces, tabs, CR, LF
 *   substring(s, start [, end]) 0-based, end exclusive, clamped
 *   startswith(s, p) endswith(s, p)  bool
 *   indexof(s, sub)     int, -1 when absent
 *   replace(s, old, new)  every occurrence
 *   split_value(s, sep, i)  the i-th (0-based) part of s split at sep
 *   lpad(s, n) rpad(s, n)   s with n spaces added on the left / right
 *   reverse(s)
 *   numbytes(s | bytes) int, the size in bytes
 *   chr(code)           the character of a Unicode code point
 *   regexp_matches(s, re)          bool: re matches somewhere in s
 *   regexp_substr(s, re)           the first match, "" when none
 *   regexp_replace(s, re, rep)     every match replaced; $1..$9 in rep are
 *                       its groups. re is POSIX extended, with RE2's \d \w \s
 *                       (\D \W \S outside brackets) rewritten to classes
 * Encoding
 *   encode(s | bytes, 'base64')  string
 *   decode(s, 'base64')          bytes
 * JSON
 *   to_json(x)               [null ok] compact JSON text
 *   parse_json(s)            the value
 *   json_path_query(x, path) path like 'a.b[0].c' (a leading '$' allowed); missing: NULL
 *   object_keys(obj)         array of strings
 *   cardinality(array)       int
 * Types
 *   cast(x, 'bigint' | 'float' | 'string' | 'boolean' | 'bytea')
 *   isnull(x)                [null ok] bool
 *   coalesce(x, ...)         [null ok] the first argument that is not NULL
 *   typeof(x)                [null ok] "null", "bool", "int", "double", "string",
 *                            "bytes", "array" or "object"
 * Time (UTC)
 *   now() unix_ts_ms()       int, milliseconds since the epoch
 *   event_time()             int, the time of the row's message as the caller
 *                            gave it (arrival, or its event time); in a group
 *                            the last row's
 *   format_time(ms, fmt)     fmt tokens yyyy yy MM M dd d HH H mm m ss s SSS,
 *                            'quoted text' as is, other characters as is
 * Hashes and ids
 *   md5 sha1 sha256 sha384 sha512 (s | bytes)   lower-case hex (OpenSSL)
 *   newuuid()                a random (version 4) UUID
 * Aggregates (need a window; NULLs are skipped unless said otherwise)
 *   count(*)       rows in the group;  count(x): rows where x is not NULL
 *   sum(x)         ints stay ints (overflow is an error); NULL when no values
 *   avg(x)         ints: an int (truncated, as eKuiper); a double otherwise
 *   min(x) max(x)  numbers or strings
 *   collect(x)     array of x over the rows (NULLs kept); collect(*): the rows
 * Windows
 *   window_start() window_end()  int ms on the caller's clock (a count
 *                  window: the arrival of its first and last row; a sliding
 *                  window: now - size and now)
 */
#include <openssl/evp.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "sql/ast.h"

#define ARGS                                                                                       \
    const eval_ctx *c, const inferd_value *const *a, size_t n, inferd_value **out, inferd_error *err

static inferd_status ret(inferd_value **out, inferd_value *v, inferd_error *err)
{
    *out = v;
    return v ? INFERD_OK : sql_oom(err);
}

static const char *tname(const inferd_value *v)
{
    return inferd_value_type_name(inferd_value_type_of(v));
}

static inferd_status bad_arg(inferd_error *err, const char *fn, size_t i, const char *want,
                             const inferd_value *got)
{
    return inferd_error_set(err, INFERD_ETYPE, "%s: argument %zu must be %s, got %s", fn, i + 1,
                            want, tname(got));
}

static bool is_number(const inferd_value *v)
{
    return inferd_value_is(v, INFERD_VALUE_INT) || inferd_value_is(v, INFERD_VALUE_DOUBLE);
}

static inferd_status need_number(const char *fn, const inferd_value *const *a, size_t i, double *d,
                                 inferd_error *err)
{
    if (!is_number(a[i]))
        return bad_arg(err, fn, i, "a number", a[i]);
    *d = inferd_value_double_or(a[i], 0);
    return INFERD_OK;
}

static inferd_status need_int(const char *fn, const inferd_value *const *a, size_t i, int64_t *v,
                              inferd_error *err)
{
    if (!inferd_value_is(a[i], INFERD_VALUE_INT))
        return bad_arg(err, fn, i, "an integer", a[i]);
    *v = inferd_value_int_or(a[i], 0);
    return INFERD_OK;
}

static inferd_status need_string(const char *fn, const inferd_value *const *a, size_t i,
                                 const char **s, size_t *len, inferd_error *err)
{
    if (inferd_value_get_string(a[i], s, len, NULL) != INFERD_OK)
        return bad_arg(err, fn, i, "a string", a[i]);
    return INFERD_OK;
}

/* A string's or bytes' content. */
static inferd_status need_data(const char *fn, const inferd_value *const *a, size_t i,
                               const void **data, size_t *len, inferd_error *err)
{
    if (inferd_value_is(a[i], INFERD_VALUE_STRING)) {
        const char *s;
        inferd_value_get_string(a[i], &s, len, NULL);
        *data = s;
        return INFERD_OK;
    }
    if (inferd_value_get_bytes(a[i], data, len, NULL) != INFERD_OK)
        return bad_arg(err, fn, i, "a string or bytes", a[i]);
    return INFERD_OK;
}

/* ---- math -------------------------------------------------------------------- */

static inferd_status bi_abs(ARGS)
{
    if (inferd_value_is(a[0], INFERD_VALUE_INT)) {
        int64_t i = inferd_value_int_or(a[0], 0);
        if (i == INT64_MIN)
            return inferd_error_set(err, INFERD_ERANGE, "abs: integer overflow");
        return ret(out, inferd_value_int(i < 0 ? -i : i), err);
    }
    double d;
    inferd_status st = need_number("abs", a, 0, &d, err);
    return st ? st : ret(out, inferd_value_double(fabs(d)), err);
}

/* ceil, floor: an int is already whole. */
static inferd_status whole(const char *fn, double (*f)(double), const inferd_value *const *a,
                           inferd_value **out, inferd_error *err)
{
    if (inferd_value_is(a[0], INFERD_VALUE_INT))
        return ret(out, inferd_value_copy(a[0]), err);
    double d;
    inferd_status st = need_number(fn, a, 0, &d, err);
    return st ? st : ret(out, inferd_value_double(f(d)), err);
}

static inferd_status bi_ceil(ARGS) { return whole("ceil", ceil, a, out, err); }
static inferd_status bi_floor(ARGS) { return whole("floor", floor, a, out, err); }

/* round and trunc: n cut by cut (round half away from zero, or towards
 * zero) to `digits` decimals (argument 2, else 0). */
static inferd_status decimals(const char *fn, double (*cut)(double), const inferd_value *const *a,
                              size_t n, inferd_value **out, inferd_error *err)
{
    double d;
    int64_t digits = 0;
    inferd_status st = need_number(fn, a, 0, &d, err);
    if (st || (n > 1 && (st = need_int(fn, a, 1, &digits, err))))
        return st;
    if (inferd_value_is(a[0], INFERD_VALUE_INT) && digits >= 0)
        return ret(out, inferd_value_copy(a[0]), err);
    if (digits > 15) /* beyond a double's precision: nothing to cut */
        return ret(out, inferd_value_double(d), err);
    if (digits < -308)
        return ret(out, inferd_value_double(0), err);
    double scale = pow(10, (double)digits);
    return ret(out, inferd_value_double(cut(d * scale) / scale), err);
}

static inferd_status bi_round(ARGS) { return decimals("round", round, a, n, out, err); }

/* One-argument double functions; domain says which arguments are allowed. */
typedef enum domain { D_ANY, D_NONNEG, D_POS, D_UNIT } domain;

static inferd_status unary(const char *fn, double (*f)(double), domain dom,
                           const inferd_value *const *a, inferd_value **out, inferd_error *err)
{
    double d;
    inferd_status st = need_number(fn, a, 0, &d, err);
    if (st)
        return st;
    const char *bad = dom == D_NONNEG && d < 0       ? "must not be negative"
                      : dom == D_POS && !(d > 0)     ? "must be positive"
                      : dom == D_UNIT && fabs(d) > 1 ? "must be between -1 and 1"
                                                     : NULL;
    if (bad)
        return inferd_error_set(err, INFERD_EINVAL, "%s: argument 1 %s, got %g", fn, bad, d);
    return ret(out, inferd_value_double(f(d)), err);
}

static inferd_status bi_sqrt(ARGS) { return unary("sqrt", sqrt, D_NONNEG, a, out, err); }
static inferd_status bi_exp(ARGS) { return unary("exp", exp, D_ANY, a, out, err); }
static inferd_status bi_ln(ARGS) { return unary("ln", log, D_POS, a, out, err); }
static inferd_status bi_sin(ARGS) { return unary("sin", sin, D_ANY, a, out, err); }
static inferd_status bi_cos(ARGS) { return unary("cos", cos, D_ANY, a, out, err); }
static inferd_status bi_tan(ARGS) { return unary("tan", tan, D_ANY, a, out, err); }
static inferd_status bi_asin(ARGS) { return unary("asin", asin, D_UNIT, a, out, err); }
static inferd_status bi_acos(ARGS) { return unary("acos", acos, D_UNIT, a, out, err); }
static inferd_status bi_atan(ARGS) { return unary("atan", atan, D_ANY, a, out, err); }

static inferd_status bi_log(ARGS)
{
    if (n == 1)
        return unary("log", log10, D_POS, a, out, err);
    double b, x;
    inferd_status st = need_number("log", a, 0, &b, err);
    if (st || (st = need_number("log", a, 1, &x, err)))
        return st;
    if (!(b > 0) || b == 1)
        return inferd_error_set(err, INFERD_EINVAL,
                                "log: argument 1 (the base) must be positive and not 1, got %g", b);
    if (!(x > 0))
        return inferd_error_set(err, INFERD_EINVAL, "log: argument 2 must be positive, got %g", x);
    return ret(out, inferd_value_double(log(x) / log(b)), err);
}

static inferd_status bi_power(ARGS)
{
    double x, y;
    inferd_status st = need_number("power", a, 0, &x, err);
    if (st || (st = need_number("power", a, 1, &y, err)))
        return st;
    return ret(out, inferd_value_double(pow(x, y)), err);
}

static inferd_status bi_atan2(ARGS)
{
    double y, x;
    inferd_status st = need_number("atan2", a, 0, &y, err);
    if (st || (st = need_number("atan2", a, 1, &x, err)))
        return st;
    return ret(out, inferd_value_double(atan2(y, x)), err);
}

static inferd_status bi_mod(ARGS)
{
    double d;
    inferd_status st = need_number("mod", a, 0, &d, err);
    if (st || (st = need_number("mod", a, 1, &d, err)))
        return st;
    if ((st = sql_arith(OP_MOD, a[0], a[1], out, err)))
        return inferd_error_prefix(err, "mod");
    return INFERD_OK;
}

static inferd_status bi_pi(ARGS) { return ret(out, inferd_value_double(M_PI), err); }

static inferd_status bi_rand(ARGS)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        return inferd_error_set(err, INFERD_EIO, "rand: no random bytes: %s", strerror(errno));
    return ret(out, inferd_value_double((double)(r >> 11) * 0x1.0p-53), err);
}

static inferd_status bi_sign(ARGS)
{
    double d;
    inferd_status st = need_number("sign", a, 0, &d, err);
    return st ? st : ret(out, inferd_value_int((d > 0) - (d < 0)), err);
}

/* ---- strings ------------------------------------------------------------------ */

/* Bytes in the UTF-8 character at s (1 for a stray byte). */
static size_t u8len(const char *s, size_t avail)
{
    unsigned char c = (unsigned char)s[0];
    size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    return k <= avail ? k : avail;
}

static size_t u8count(const char *s, size_t len)
{
    size_t chars = 0;
    for (size_t i = 0; i < len; i += u8len(s + i, len - i))
        chars++;
    return chars;
}

/* The byte offset of character number ch (clamped to len). */
static size_t u8offset(const char *s, size_t len, int64_t ch)
{
    size_t i = 0;
    for (; i < len && ch > 0; ch--)
        i += u8len(s + i, len - i);
    return i;
}

/* Text of a scalar for concat: strings as they are, numbers and bools as JSON writes them. */
static inferd_status scalar_text(const char *fn, const inferd_value *const *a, size_t i,
                                 char **text, size_t *len, inferd_error *err)
{
    inferd_value_type t = inferd_value_type_of(a[i]);
    if (t == INFERD_VALUE_STRING) {
        const char *s;
        inferd_value_get_string(a[i], &s, len, NULL);
        if (!(*text = malloc(*len + 1)))
            return sql_oom(err);
        memcpy(*text, s, *len + 1);
        return INFERD_OK;
    }
    if (t != INFERD_VALUE_INT && t != INFERD_VALUE_DOUBLE && t != INFERD_VALUE_BOOL)
        return bad_arg(err, fn, i, "a string, number or bool", a[i]);
    return inferd_value_to_json(a[i], INFERD_JSON_COMPACT, text, len, err);
}

static inferd_status bi_concat(ARGS)
{
    char *buf = NULL;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        char *t = NULL;
        size_t tl = 0;
        inferd_status st = scalar_text("concat", a, i, &t, &tl, err);
        if (st) {
            free(buf);
            return st;
        }
        char *nb = realloc(buf, len + tl + 1);
        if (!nb) {
            free(t);
            free(buf);
            return sql_oom(err);
        }
        buf = nb;
        memcpy(buf + len, t, tl);
        len += tl;
        buf[len] = '\0';
        free(t);
    }
    inferd_value *v = inferd_value_string_n(buf ? buf : "", len);
    free(buf);
    return ret(out, v, err);
}

static inferd_status change_case(const char *fn, bool upper, const inferd_value *const *a,
                                 inferd_value **out, inferd_error *err)
{
    const char *s;
    size_t len;
    inferd_status st = need_string(fn, a, 0, &s, &len, err);
    if (st)
        return st;
    inferd_value *v = inferd_value_string_n(s, len);
    if (!v)
        return sql_oom(err);
    char *d;
    inferd_value_get_string(v, (const char **)&d, NULL, NULL);
    for (size_t i = 0; i < len; i++)
        if (upper && d[i] >= 'a' && d[i] <= 'z')
            d[i] = (char)(d[i] - 32);
        else if (!upper && d[i] >= 'A' && d[i] <= 'Z')
            d[i] = (char)(d[i] + 32);
    return ret(out, v, err);
}

static inferd_status bi_lower(ARGS) { return change_case("lower", false, a, out, err); }
static inferd_status bi_upper(ARGS) { return change_case("upper", true, a, out, err); }

static inferd_status bi_length(ARGS)
{
    const char *s;
    size_t len;
    inferd_status st = need_string("length", a, 0, &s, &len, err);
    return st ? st : ret(out, inferd_value_int((int64_t)u8count(s, len)), err);
}

static bool is_space(char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r'; }

static inferd_status trim(const char *fn, bool left, bool right, const inferd_value *const *a,
                          inferd_value **out, inferd_error *err)
{
    const char *s;
    size_t len;
    inferd_status st = need_string(fn, a, 0, &s, &len, err);
    if (st)
        return st;
    size_t b = 0, e = len;
    while (left && b < e && is_space(s[b]))
        b++;
    while (right && e > b && is_space(s[e - 1]))
        e--;
    return ret(out, inferd_value_string_n(s + b, e - b), err);
}

static inferd_status bi_trim(ARGS) { return trim("trim", true, true, a, out, err); }
static inferd_status bi_ltrim(ARGS) { return trim("ltrim", true, false, a, out, err); }
static inferd_status bi_rtrim(ARGS) { return trim("rtrim", false, true, a, out, err); }

static inferd_status bi_substring(ARGS)
{
    const char *s;
    size_t len;
    int64_t start, end = INT64_MAX;
    inferd_status st = need_string("substring", a, 0, &s, &len, err);
    if (st || (st = need_int("substring", a, 1, &start, err)) ||
        (n > 2 && (st = need_int("substring", a, 2, &end, err))))
        return st;
    if (start < 0 || end < 0)
        return inferd_error_set(err, INFERD_EINVAL, "substring: argument %d must not be negative",
                                start < 0 ? 2 : 3);
    if (end < start)
        end = start;
    size_t b = u8offset(s, len, start), e = u8offset(s, len, end);
    return ret(out, inferd_value_string_n(s + b, e - b), err);
}

/* Two string arguments. */
static inferd_status two_strings(const char *fn, const inferd_value *const *a, const char **s,
                                 size_t *sn, const char **t, size_t *tn, inferd_error *err)
{
    inferd_status st = need_string(fn, a, 0, s, sn, err);
    return st ? st : need_string(fn, a, 1, t, tn, err);
}

static inferd_status bi_startswith(ARGS)
{
    const char *s, *p;
    size_t sn, pn;
    inferd_status st = two_strings("startswith", a, &s, &sn, &p, &pn, err);
    return st ? st : ret(out, inferd_value_bool(pn <= sn && memcmp(s, p, pn) == 0), err);
}

static inferd_status bi_endswith(ARGS)
{
    const char *s, *p;
    size_t sn, pn;
    inferd_status st = two_strings("endswith", a, &s, &sn, &p, &pn, err);
    return st ? st : ret(out, inferd_value_bool(pn <= sn && memcmp(s + sn - pn, p, pn) == 0), err);
}

/* Byte offset of the first t in s at or after from, or SIZE_MAX. */
static size_t find(const char *s, size_t sn, const char *t, size_t tn, size_t from)
{
    if (tn > sn)
        return SIZE_MAX;
    for (size_t i = from; i + tn <= sn; i++)
        if (memcmp(s + i, t, tn) == 0)
            return i;
    return SIZE_MAX;
}

static inferd_status bi_indexof(ARGS)
{
    const char *s, *t;
    size_t sn, tn;
    inferd_status st = two_strings("indexof", a, &s, &sn, &t, &tn, err);
    if (st)
        return st;
    size_t at = find(s, sn, t, tn, 0);
    return ret(out, inferd_value_int(at == SIZE_MAX ? -1 : (int64_t)u8count(s, at)), err);
}

static inferd_status bi_replace(ARGS)
{
    const char *s, *old, *rep;
    size_t sn, on, rn;
    inferd_status st = two_strings("replace", a, &s, &sn, &old, &on, err);
    if (st || (st = need_string("replace", a, 2, &rep, &rn, err)))
        return st;
    if (on == 0)
        return ret(out, inferd_value_copy(a[0]), err);
    size_t count = 0;
    for (size_t i = find(s, sn, old, on, 0); i != SIZE_MAX; i = find(s, sn, old, on, i + on))
        count++;
    size_t len = sn - count * on + count * rn;
    char *buf = malloc(len + 1);
    if (!buf)
        return sql_oom(err);
    size_t w = 0, r = 0;
    for (size_t i = find(s, sn, old, on, 0); i != SIZE_MAX; i = find(s, sn, old, on, i + on)) {
        memcpy(buf + w, s + r, i - r);
        w += i - r;
        memcpy(buf + w, rep, rn);
        w += rn;
        r = i + on;
    }
    memcpy(buf + w, s + r, sn - r);
    inferd_value *v = inferd_value_string_n(buf, len);
    free(buf);
    return ret(out, v, err);
}

static inferd_status bi_split_value(ARGS)
{
    const char *s, *sep;
    size_t sn, pn;
    int64_t idx;
    inferd_status st = two_strings("split_value", a, &s, &sn, &sep, &pn, err);
    if (st || (st = need_int("split_value", a, 2, &idx, err)))
        return st;
    if (pn == 0)
        return inferd_error_set(err, INFERD_EINVAL, "split_value: the separator is empty");
    if (idx < 0)
        return inferd_error_set(err, INFERD_EINVAL,
                                "split_value: argument 3 must not be negative, got %lld",
                                (long long)idx);
    size_t begin = 0, parts = 1;
    for (int64_t k = 0; k < idx; k++) {
        size_t at = find(s, sn, sep, pn, begin);
        if (at == SIZE_MAX) {
            return inferd_error_set(err, INFERD_ERANGE,
                                    "split_value: index %lld is out of range (%zu parts)",
                                    (long long)idx, parts);
        }
        begin = at + pn;
        parts++;
    }
    size_t end = find(s, sn, sep, pn, begin);
    if (end == SIZE_MAX)
        end = sn;
    return ret(out, inferd_value_string_n(s + begin, end - begin), err);
}

static inferd_status pad(const char *fn, bool left, const inferd_value *const *a,
                         inferd_value **out, inferd_error *err)
{
    const char *s;
    size_t sn;
    int64_t k;
    inferd_status st = need_string(fn, a, 0, &s, &sn, err);
    if (st || (st = need_int(fn, a, 1, &k, err)))
        return st;
    if (k < 0 || k > (1 << 20))
        return inferd_error_set(err, INFERD_ERANGE,
                                "%s: argument 2 must be between 0 and 1048576, got %lld", fn,
                                (long long)k);
    char *buf = malloc(sn + (size_t)k + 1);
    if (!buf)
        return sql_oom(err);
    memset(buf + (left ? 0 : sn), ' ', (size_t)k);
    memcpy(buf + (left ? (size_t)k : 0), s, sn);
    inferd_value *v = inferd_value_string_n(buf, sn + (size_t)k);
    free(buf);
    return ret(out, v, err);
}

static inferd_status bi_lpad(ARGS) { return pad("lpad", true, a, out, err); }
static inferd_status bi_rpad(ARGS) { return pad("rpad", false, a, out, err); }

static inferd_status bi_reverse(ARGS)
{
    const char *s;
    size_t sn;
    inferd_status st = need_string("reverse", a, 0, &s, &sn, err);
    if (st)
        return st;
    char *buf = malloc(sn + 1);
    if (!buf)
        return sql_oom(err);
    for (size_t i = 0; i < sn;) { /* each character's bytes keep their order */
        size_t k = u8len(s + i, sn - i);
        memcpy(buf + sn - i - k, s + i, k);
        i += k;
    }
    inferd_value *v = inferd_value_string_n(buf, sn);
    free(buf);
    return ret(out, v, err);
}

static inferd_status bi_numbytes(ARGS)
{
    const void *d;
    size_t len;
    inferd_status st = need_data("numbytes", a, 0, &d, &len, err);
    return st ? st : ret(out, inferd_value_int((int64_t)len), err);
}

/* ---- encoding ------------------------------------------------------------------ */

static inferd_status check_base64(const char *fn, const inferd_value *v, inferd_error *err)
{
    const char *s;
    if (inferd_value_get_string(v, &s, NULL, NULL) != INFERD_OK)
        return inferd_error_set(err, INFERD_ETYPE, "%s: argument 2 must be a string, got %s", fn,
                                tname(v));
    if (strcasecmp(s, "base64") != 0)
        return inferd_error_set(err, INFERD_EUNSUPPORTED,
                                "%s: unsupported encoding '%s' (only 'base64')", fn, s);
    return INFERD_OK;
}

static inferd_status val_encode(const inferd_value *const *a, size_t n, inferd_error *err)
{
    return a[1] ? check_base64("encode", a[1], err) : INFERD_OK;
}

static inferd_status val_decode(const inferd_value *const *a, size_t n, inferd_error *err)
{
    return a[1] ? check_base64("decode", a[1], err) : INFERD_OK;
}

static inferd_status bi_encode(ARGS)
{
    const void *d;
    size_t len, olen;
    inferd_status st = need_data("encode", a, 0, &d, &len, err);
    if (st || (st = check_base64("encode", a[1], err)))
        return st;
    char *text = inferd_base64_encode(d, len, &olen);
    if (!text)
        return sql_oom(err);
    inferd_value *v = inferd_value_string_n(text, olen);
    free(text);
    return ret(out, v, err);
}

static inferd_status bi_decode(ARGS)
{
    const char *s;
    size_t len, olen;
    void *data = NULL;
    inferd_status st = need_string("decode", a, 0, &s, &len, err);
    if (st || (st = check_base64("decode", a[1], err)))
        return st;
    if ((st = inferd_base64_decode(s, len, &data, &olen, err)))
        return inferd_error_prefix(err, "decode");
    return ret(out, inferd_value_bytes_take(data, olen), err);
}

/* ---- JSON ---------------------------------------------------------------------- */

static inferd_status bi_to_json(ARGS)
{
    char *text = NULL;
    size_t len;
    inferd_status st = inferd_value_to_json(a[0], INFERD_JSON_COMPACT, &text, &len, err);
    if (st)
        return st;
    inferd_value *v = inferd_value_string_n(text, len);
    free(text);
    return ret(out, v, err);
}

static inferd_status bi_parse_json(ARGS)
{
    const char *s;
    size_t len;
    inferd_status st = need_string("parse_json", a, 0, &s, &len, err);
    if (st)
        return st;
    if ((st = inferd_value_from_json(s, len, 0, out, err)))
        return inferd_error_prefix(err, "parse_json");
    return INFERD_OK;
}

/* Follows path ("a.b[0].c", "$.a[-1]") from v; *found NULL when a step is
 * missing. With v NULL only checks the syntax. */
static inferd_status json_path(const inferd_value *v, const char *path, const inferd_value **found,
                               inferd_error *err)
{
    const char *p = path;
    if (*p == '$')
        p++;
    bool first = true;
    while (*p) {
        if (*p == '[') {
            char *end;
            errno = 0;
            long long i = strtoll(p + 1, &end, 10);
            if (end == p + 1 || *end != ']' || errno)
                return inferd_error_set(err, INFERD_EINVAL,
                                        "json_path_query: bad index at '%s' in path '%s'", p, path);
            p = end + 1;
            if (v) {
                int64_t len = (int64_t)inferd_value_array_len(v);
                if (i < 0)
                    i += len;
                v = inferd_value_is(v, INFERD_VALUE_ARRAY) && i >= 0 && i < len
                        ? inferd_value_array_get(v, (size_t)i)
                        : NULL;
                if (!v)
                    break;
            }
        } else {
            if (*p == '.')
                p++;
            else if (!first)
                return inferd_error_set(err, INFERD_EINVAL,
                                        "json_path_query: expected '.' or '[' at '%s' in path '%s'",
                                        p, path);
            size_t k = strcspn(p, ".[");
            if (k == 0)
                return inferd_error_set(err, INFERD_EINVAL,
                                        "json_path_query: empty field name in path '%s'", path);
            if (v) {
                char key[256];
                if (k >= sizeof key)
                    return inferd_error_set(err, INFERD_EINVAL,
                                            "json_path_query: field name too long in '%s'", path);
                memcpy(key, p, k);
                key[k] = '\0';
                v = inferd_value_object_get(v, key);
                if (!v)
                    break;
            }
            p += k;
        }
        first = false;
    }
    *found = v;
    return INFERD_OK;
}

static inferd_status val_json_path(const inferd_value *const *a, size_t n, inferd_error *err)
{
    const char *path;
    const inferd_value *found;
    if (!a[1])
        return INFERD_OK;
    if (inferd_value_get_string(a[1], &path, NULL, NULL) != INFERD_OK)
        return bad_arg(err, "json_path_query", 1, "a string", a[1]);
    return json_path(NULL, path, &found, err);
}

static inferd_status bi_json_path_query(ARGS)
{
    const char *path;
    size_t len;
    const inferd_value *found = NULL;
    inferd_status st = need_string("json_path_query", a, 1, &path, &len, err);
    if (st || (st = json_path(a[0], path, &found, err)))
        return st;
    return ret(out, found ? inferd_value_copy(found) : inferd_value_null(), err);
}

static inferd_status bi_object_keys(ARGS)
{
    if (!inferd_value_is(a[0], INFERD_VALUE_OBJECT))
        return bad_arg(err, "object_keys", 0, "an object", a[0]);
    inferd_value *keys = inferd_value_array();
    const char *k;
    inferd_value *item;
    for (size_t i = 0; keys && inferd_value_object_entry(a[0], i, &k, &item); i++)
        if (inferd_value_array_push(keys, inferd_value_string(k), err)) {
            inferd_value_free(keys);
            return sql_oom(err);
        }
    return ret(out, keys, err);
}

static inferd_status bi_cardinality(ARGS)
{
    if (!inferd_value_is(a[0], INFERD_VALUE_ARRAY))
        return bad_arg(err, "cardinality", 0, "an array", a[0]);
    return ret(out, inferd_value_int((int64_t)inferd_value_array_len(a[0])), err);
}

/* ---- types --------------------------------------------------------------------- */

static const char *const cast_types[] = {"bigint", "float", "string", "boolean", "bytea", NULL};

static inferd_status check_cast_type(const inferd_value *v, int *which, inferd_error *err)
{
    const char *s;
    if (inferd_value_get_string(v, &s, NULL, NULL) != INFERD_OK)
        return bad_arg(err, "cast", 1, "a string", v);
    for (int i = 0; cast_types[i]; i++)
        if (strcasecmp(s, cast_types[i]) == 0) {
            *which = i;
            return INFERD_OK;
        }
    return inferd_error_set(err, INFERD_EINVAL,
                            "cast: unknown type '%s' (bigint, float, string, boolean or bytea)", s);
}

static inferd_status val_cast(const inferd_value *const *a, size_t n, inferd_error *err)
{
    int which;
    return a[1] ? check_cast_type(a[1], &which, err) : INFERD_OK;
}

static inferd_status cast_fail(inferd_error *err, const inferd_value *v, const char *to)
{
    const char *s = inferd_value_string_or(v, NULL);
    if (s)
        return inferd_error_set(err, INFERD_EINVAL, "cast: cannot convert string '%.60s' to %s", s,
                                to);
    return inferd_error_set(err, INFERD_ETYPE, "cast: cannot convert %s to %s", tname(v), to);
}

static inferd_status bi_cast(ARGS)
{
    int which;
    inferd_status st = check_cast_type(a[1], &which, err);
    if (st)
        return st;
    const inferd_value *v = a[0];
    inferd_value_type t = inferd_value_type_of(v);
    const char *to = cast_types[which];
    const char *s = inferd_value_string_or(v, NULL);
    char *end;
    switch (which) {
    case 0: /* bigint */
        if (t == INFERD_VALUE_INT)
            return ret(out, inferd_value_copy(v), err);
        if (t == INFERD_VALUE_BOOL)
            return ret(out, inferd_value_int(inferd_value_bool_or(v, false)), err);
        if (t == INFERD_VALUE_DOUBLE) {
            double d = inferd_value_double_or(v, 0);
            if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
                return inferd_error_set(err, INFERD_ERANGE, "cast: %g is out of bigint's range", d);
            return ret(out, inferd_value_int((int64_t)d), err);
        }
        if (s && *s) {
            errno = 0;
            long long i = strtoll(s, &end, 10);
            if (*end == '\0' && errno == 0)
                return ret(out, inferd_value_int(i), err);
        }
        return cast_fail(err, v, to);
    case 1: /* float */
        if (t == INFERD_VALUE_INT || t == INFERD_VALUE_DOUBLE)
            return ret(out, inferd_value_double(inferd_value_double_or(v, 0)), err);
        if (t == INFERD_VALUE_BOOL)
            return ret(out, inferd_value_double(inferd_value_bool_or(v, false)), err);
        if (s && *s) {
            double d = strtod(s, &end);
            if (*end == '\0')
                return ret(out, inferd_value_double(d), err);
        }
        return cast_fail(err, v, to);
    case 2: /* string */
        if (t == INFERD_VALUE_STRING)
            return ret(out, inferd_value_copy(v), err);
        if (t == INFERD_VALUE_BYTES) {
            const void *d;
            size_t len;
            inferd_value_get_bytes(v, &d, &len, NULL);
            return ret(out, inferd_value_string_n(d, len), err);
        }
        return bi_to_json(c, a, 1, out, err);
    case 3: /* boolean */
        if (t == INFERD_VALUE_BOOL)
            return ret(out, inferd_value_copy(v), err);
        if (t == INFERD_VALUE_INT || t == INFERD_VALUE_DOUBLE)
            return ret(out, inferd_value_bool(inferd_value_double_or(v, 0) != 0), err);
        if (s && (strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0))
            return ret(out, inferd_value_bool(true), err);
        if (s && (strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0))
            return ret(out, inferd_value_bool(false), err);
        return cast_fail(err, v, to);
    default: /* bytea: strings are base64, as in eKuiper */
        if (t == INFERD_VALUE_BYTES)
            return ret(out, inferd_value_copy(v), err);
        if (s) {
            void *data = NULL;
            size_t len;
            if ((st = inferd_base64_decode(s, strlen(s), &data, &len, err)))
                return inferd_error_prefix(err, "cast to bytea");
            return ret(out, inferd_value_bytes_take(data, len), err);
        }
        return cast_fail(err, v, to);
    }
}

static inferd_status bi_isnull(ARGS)
{
    return ret(out, inferd_value_bool(inferd_value_is(a[0], INFERD_VALUE_NULL)), err);
}

static inferd_status bi_coalesce(ARGS)
{
    for (size_t i = 0; i < n; i++)
        if (!inferd_value_is(a[i], INFERD_VALUE_NULL))
            return ret(out, inferd_value_copy(a[i]), err);
    return ret(out, inferd_value_null(), err);
}

static inferd_status bi_typeof(ARGS) { return ret(out, inferd_value_string(tname(a[0])), err); }

/* ---- time ---------------------------------------------------------------------- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inferd_status bi_now(ARGS) { return ret(out, inferd_value_int(wall_ms()), err); }
static inferd_status bi_event_time(ARGS) { return ret(out, inferd_value_int(c->msg_ts), err); }

static inferd_status bi_format_time(ARGS)
{
    int64_t ms;
    const char *fmt;
    size_t fn_len;
    inferd_status st = need_int("format_time", a, 0, &ms, err);
    if (st || (st = need_string("format_time", a, 1, &fmt, &fn_len, err)))
        return st;
    int64_t secs = ms / 1000, milli = ms % 1000;
    if (milli < 0) {
        milli += 1000;
        secs--;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return inferd_error_set(err, INFERD_ERANGE, "format_time: %lld is out of range",
                                (long long)ms);
    char buf[512];
    size_t w = 0;
    for (const char *p = fmt; *p && w < sizeof buf - 16;) {
        size_t run = 1;
        while (p[run] == p[0])
            run++;
        int val = -1, width = 0;
        switch (*p) {
        case 'y':
            if (run >= 4) {
                val = tm.tm_year + 1900;
                width = 4;
                run = 4;
            } else if (run >= 2) {
                val = (tm.tm_year + 1900) % 100;
                width = 2;
                run = 2;
            }
            break;
        case 'M': val = tm.tm_mon + 1; break;
        case 'd': val = tm.tm_mday; break;
        case 'H': val = tm.tm_hour; break;
        case 'm': val = tm.tm_min; break;
        case 's': val = tm.tm_sec; break;
        case 'S':
            if (run >= 3) {
                val = (int)milli;
                width = 3;
                run = 3;
            }
            break;
        case '\'': { /* 'quoted text' is copied; '' is a quote */
            const char *q = p + 1;
            if (*q == '\'') {
                buf[w++] = '\'';
                p += 2;
                continue;
            }
            for (; *q && w < sizeof buf - 16; q++) {
                if (*q == '\'' && q[1] != '\'')
                    break;
                if (*q == '\'')
                    q++; /* '' inside quotes */
                buf[w++] = *q;
            }
            p = *q ? q + 1 : q;
            continue;
        }
        default: break;
        }
        if (val < 0) {
            buf[w++] = *p++;
            continue;
        }
        if (!width) { /* MM, dd, ...: two digits; M, d, ...: as few as needed */
            width = run >= 2 ? 2 : 1;
            run = run >= 2 ? 2 : 1;
        }
        w += (size_t)snprintf(buf + w, sizeof buf - w, "%0*d", width, val);
        p += run;
    }
    return ret(out, inferd_value_string_n(buf, w), err);
}

/* ---- hashes and ids ------------------------------------------------------------- */

/* OpenSSL's digests (libcrypto): md5, sha1, sha256, sha384, sha512, as
 * eKuiper names them. */
static inferd_status hex_digest(const char *fn, const EVP_MD *md, const inferd_value *const *a,
                                inferd_value **out, inferd_error *err)
{
    const void *d;
    size_t len;
    inferd_status st = need_data(fn, a, 0, &d, &len, err);
    if (st)
        return st;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!md || !EVP_Digest(d, len, digest, &n, md, NULL))
        return inferd_error_set(err, INFERD_EINTERNAL, "%s: the digest failed", fn);
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    for (unsigned int i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    return ret(out, inferd_value_string_n(hex, 2 * (size_t)n), err);
}

static inferd_status bi_md5(ARGS) { return hex_digest("md5", EVP_md5(), a, out, err); }
static inferd_status bi_sha1(ARGS) { return hex_digest("sha1", EVP_sha1(), a, out, err); }
static inferd_status bi_sha256(ARGS) { return hex_digest("sha256", EVP_sha256(), a, out, err); }
static inferd_status bi_sha384(ARGS) { return hex_digest("sha384", EVP_sha384(), a, out, err); }
static inferd_status bi_sha512(ARGS) { return hex_digest("sha512", EVP_sha512(), a, out, err); }

static inferd_status bi_newuuid(ARGS)
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
        return inferd_error_set(err, INFERD_EIO, "newuuid: no random bytes: %s", strerror(errno));
    b[6] = (unsigned char)((b[6] & 0x0F) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3F) | 0x80); /* RFC 4122 variant */
    char s[37];
    size_t w = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            s[w++] = '-';
        snprintf(s + w, 3, "%02x", b[i]);
        w += 2;
    }
    return ret(out, inferd_value_string_n(s, 36), err);
}

/* ---- aggregates (each argument is the array of its values over the group) ------- */

static inferd_status bi_count(ARGS)
{
    int64_t k = 0;
    for (size_t i = 0; i < inferd_value_array_len(a[0]); i++)
        k += !inferd_value_is(inferd_value_array_get(a[0], i), INFERD_VALUE_NULL);
    return ret(out, inferd_value_int(k), err);
}

/* sum and avg: ints stay ints unless a double takes part. */
static inferd_status total(const char *fn, const inferd_value *arr, bool average,
                           inferd_value **out, inferd_error *err)
{
    int64_t isum = 0, count = 0;
    double dsum = 0;
    bool real = false;
    for (size_t i = 0; i < inferd_value_array_len(arr); i++) {
        const inferd_value *v = inferd_value_array_get(arr, i);
        if (inferd_value_is(v, INFERD_VALUE_NULL))
            continue;
        if (!is_number(v))
            return inferd_error_set(err, INFERD_ETYPE, "%s: argument 1 must be a number, got %s",
                                    fn, tname(v));
        count++;
        dsum += inferd_value_double_or(v, 0);
        if (inferd_value_is(v, INFERD_VALUE_DOUBLE))
            real = true;
        else if (!real && __builtin_add_overflow(isum, inferd_value_int_or(v, 0), &isum))
            return inferd_error_set(err, INFERD_ERANGE, "%s: integer overflow", fn);
    }
    if (count == 0)
        return ret(out, inferd_value_null(), err);
    if (real)
        return ret(out, inferd_value_double(average ? dsum / (double)count : dsum), err);
    return ret(out, inferd_value_int(average ? isum / count : isum), err);
}

static inferd_status bi_sum(ARGS) { return total("sum", a[0], false, out, err); }
static inferd_status bi_avg(ARGS) { return total("avg", a[0], true, out, err); }

static inferd_status extreme(const char *fn, const inferd_value *arr, int sign, inferd_value **out,
                             inferd_error *err)
{
    const inferd_value *best = NULL;
    for (size_t i = 0; i < inferd_value_array_len(arr); i++) {
        const inferd_value *v = inferd_value_array_get(arr, i);
        if (inferd_value_is(v, INFERD_VALUE_NULL))
            continue;
        if (!is_number(v) && !inferd_value_is(v, INFERD_VALUE_STRING))
            return inferd_error_set(err, INFERD_ETYPE,
                                    "%s: argument 1 must be a number or a string, got %s", fn,
                                    tname(v));
        int cmp = 0;
        if (best && sql_compare(v, best, false, &cmp, err))
            return inferd_error_prefix(err, "%s", fn);
        if (!best || cmp * sign > 0)
            best = v;
    }
    return ret(out, best ? inferd_value_copy(best) : inferd_value_null(), err);
}

static inferd_status bi_min(ARGS) { return extreme("min", a[0], -1, out, err); }
static inferd_status bi_max(ARGS) { return extreme("max", a[0], 1, out, err); }
static inferd_status bi_collect(ARGS) { return ret(out, inferd_value_copy(a[0]), err); }

static inferd_status bi_window_start(ARGS) { return ret(out, inferd_value_int(c->win_start), err); }
static inferd_status bi_window_end(ARGS) { return ret(out, inferd_value_int(c->win_end), err); }

/* A string grown by pieces (regexp_replace). */
typedef struct sbuf {
    char *data;
    size_t len, cap;
} sbuf;

static inferd_status sbuf_add(sbuf *b, const char *p, size_t n, inferd_error *err)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown)
            return sql_oom(err);
        b->data = grown, b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return INFERD_OK;
}

/* ---- more of the seed engine's functions: bits, hyperbolic, angles,
 * trunc, chr, regular expressions ------------------------------------------ */

/* bitand, bitor, bitxor: two integers. */
static inferd_status bits(const char *fn, char op, const inferd_value *const *a,
                          inferd_value **out, inferd_error *err)
{
    int64_t x, y;
    inferd_status st = need_int(fn, a, 0, &x, err);
    if (st || (st = need_int(fn, a, 1, &y, err)))
        return st;
    int64_t v = op == '&' ? (x & y) : op == '|' ? (x | y) : (x ^ y);
    return ret(out, inferd_value_int(v), err);
}

static inferd_status bi_bitand(ARGS) { return bits("bitand", '&', a, out, err); }
static inferd_status bi_bitor(ARGS) { return bits("bitor", '|', a, out, err); }
static inferd_status bi_bitxor(ARGS) { return bits("bitxor", '^', a, out, err); }

static inferd_status bi_bitnot(ARGS)
{
    int64_t x;
    inferd_status st = need_int("bitnot", a, 0, &x, err);
    return st ? st : ret(out, inferd_value_int(~x), err);
}

static double to_degrees(double r) { return r * 180.0 / M_PI; }
static double to_radians(double d) { return d * M_PI / 180.0; }

static inferd_status bi_cosh(ARGS) { return unary("cosh", cosh, D_ANY, a, out, err); }
static inferd_status bi_sinh(ARGS) { return unary("sinh", sinh, D_ANY, a, out, err); }
static inferd_status bi_tanh(ARGS) { return unary("tanh", tanh, D_ANY, a, out, err); }
static inferd_status bi_degrees(ARGS) { return unary("degrees", to_degrees, D_ANY, a, out, err); }
static inferd_status bi_radians(ARGS) { return unary("radians", to_radians, D_ANY, a, out, err); }

static inferd_status bi_trunc(ARGS) { return decimals("trunc", trunc, a, n, out, err); }

/* chr(code): the character of a Unicode code point, as UTF-8. */
static inferd_status bi_chr(ARGS)
{
    int64_t cp;
    inferd_status st = need_int("chr", a, 0, &cp, err);
    if (st)
        return st;
    if (cp < 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return inferd_error_set(err, INFERD_EINVAL, "chr: %lld is not a Unicode code point",
                                (long long)cp);
    char u[4];
    size_t len;
    if (cp < 0x80) {
        u[0] = (char)cp, len = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6)), u[1] = (char)(0x80 | (cp & 0x3F)), len = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12)), u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F)), len = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18)), u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), u[3] = (char)(0x80 | (cp & 0x3F)), len = 4;
    }
    return ret(out, inferd_value_string_n(u, len), err);
}

/* The seed engine's patterns are RE2's; POSIX extended expressions lack
 * its \d \w \s classes (and their negations): they are rewritten, in and
 * out of brackets. Anything else is given to regcomp as it is. What could
 * make glibc's matcher slow or huge is refused (RE2 refuses or lacks most
 * of it): a back-reference (\1: backtracking), repetition operators in a
 * row (a{2,3}++++ copies the pattern over and over), more than two bounded
 * repetitions or one above 100 ({n,m}: states multiply), more than four
 * groups repeated with + (each copies the group: ((x+)+)+ doubles and
 * doubles), a pattern over 1024 bytes. */
#define REGEX_MAX_BYTES 1024
#define REGEX_MAX_BOUND 100
#define REGEX_MAX_BOUNDS 2
#define REGEX_MAX_GROUP_PLUS 4
static inferd_status check_regex(const char *fn, const char *pattern, inferd_error *err)
{
    size_t n = strlen(pattern), bounds = 0, group_plus = 0;
    if (n > REGEX_MAX_BYTES)
        return inferd_error_set(err, INFERD_EINVAL, "%s: the regular expression has %zu bytes, "
                                "more than %d", fn, n, REGEX_MAX_BYTES);
    bool in_bracket = false, after_repeat = false;
    for (size_t i = 0; i < n; i++) {
        char ch = pattern[i];
        if (ch == '\\' && i + 1 < n && pattern[i + 1] >= '1' && pattern[i + 1] <= '9')
            return inferd_error_set(err, INFERD_EINVAL, "%s: back-references (\\%c) are not "
                                    "supported", fn, pattern[i + 1]);
        if (ch == '\\') {
            i++, after_repeat = false;
            continue;
        }
        if (in_bracket) {
            in_bracket = ch != ']';
            continue;
        }
        if (ch == '[') {
            in_bracket = true, after_repeat = false;
            i += pattern[i + 1] == '^'; /* [^]...] and []...]: the ] is a member */
            i += pattern[i + 1] == ']';
            continue;
        }
        bool repeat = ch == '*' || ch == '+' || ch == '?' || ch == '{';
        if (repeat && after_repeat)
            return inferd_error_set(err, INFERD_EINVAL, "%s: repetition operators in a row "
                                    "(such as ** or +?) are not supported", fn);
        if (ch == '+' && i > 0 && pattern[i - 1] == ')' && ++group_plus > REGEX_MAX_GROUP_PLUS)
            return inferd_error_set(err, INFERD_EINVAL, "%s: at most %d groups repeated with + "
                                    "are supported", fn, REGEX_MAX_GROUP_PLUS);
        after_repeat = repeat;
        if (ch != '{')
            continue;
        char *end;
        long lo = strtol(pattern + i + 1, &end, 10), hi = lo;
        if (*end == ',')
            hi = end[1] == '}' ? 0 : strtol(end + 1, &end, 10);
        if (++bounds > REGEX_MAX_BOUNDS || lo > REGEX_MAX_BOUND || hi > REGEX_MAX_BOUND)
            return inferd_error_set(err, INFERD_EINVAL, "%s: at most %d bounded repetitions "
                                    "{n,m} of at most %d are supported", fn, REGEX_MAX_BOUNDS,
                                    REGEX_MAX_BOUND);
        const char *close = strchr(pattern + i, '}');
        if (close)
            i = (size_t)(close - pattern);
    }
    return INFERD_OK;
}

static inferd_status compile_regex(const char *fn, const char *pattern, regex_t *re,
                                   inferd_error *err)
{
    inferd_status st = check_regex(fn, pattern, err);
    if (st)
        return st;
    size_t n = strlen(pattern);
    char *p = malloc(n * 16 + 1); /* the longest rewrite: \W -> [^[:alnum:]_] */
    if (!p)
        return sql_oom(err);
    size_t o = 0;
    bool in_bracket = false;
    for (size_t i = 0; i < n; i++) {
        char ch = pattern[i];
        if (ch == '\\' && i + 1 < n && strchr("dDwWsS", pattern[i + 1])) {
            static const char *const in[] = {"0-9", "[:alnum:]_", "[:space:]"};
            const char *cls = in[strchr("dws", tolower((unsigned char)pattern[i + 1])) - "dws"];
            bool neg = isupper((unsigned char)pattern[i + 1]);
            if (in_bracket && neg) {
                free(p);
                return inferd_error_set(err, INFERD_EINVAL, "%s: \\%c inside [...] is not "
                                        "supported", fn, pattern[i + 1]);
            }
            o += (size_t)sprintf(p + o, in_bracket ? "%s" : neg ? "[^%s]" : "[%s]", cls);
            i++;
            continue;
        }
        if (ch == '\\' && i + 1 < n) { /* an escaped character as it is */
            p[o++] = ch;
            p[o++] = pattern[++i];
            continue;
        }
        if (!in_bracket && ch == '[') {
            in_bracket = true;
            p[o++] = ch;
            if (i + 1 < n && pattern[i + 1] == '^')
                p[o++] = pattern[++i];
            if (i + 1 < n && pattern[i + 1] == ']') /* a leading ] is a member */
                p[o++] = pattern[++i];
            continue;
        }
        if (in_bracket && ch == ']')
            in_bracket = false;
        p[o++] = ch;
    }
    p[o] = '\0';
    int rc = regcomp(re, p, REG_EXTENDED);
    free(p);
    if (rc != 0) {
        char why[128];
        regerror(rc, re, why, sizeof why);
        return inferd_error_set(err, INFERD_EINVAL, "%s: bad regular expression '%s': %s", fn,
                                pattern, why);
    }
    return INFERD_OK;
}

/* The string argument 0 and the compiled pattern of argument 1. */
static inferd_status regex_args(const char *fn, const inferd_value *const *a, const char **s,
                                regex_t *re, inferd_error *err)
{
    const char *pattern;
    size_t len;
    inferd_status st = need_string(fn, a, 0, s, &len, err);
    if (st || (st = need_string(fn, a, 1, &pattern, &len, err)))
        return st;
    return compile_regex(fn, pattern, re, err);
}

static inferd_status bi_regexp_matches(ARGS)
{
    const char *s;
    regex_t re;
    inferd_status st = regex_args("regexp_matches", a, &s, &re, err);
    if (st)
        return st;
    bool m = regexec(&re, s, 0, NULL, 0) == 0;
    regfree(&re);
    return ret(out, inferd_value_bool(m), err);
}

/* The first match, or "" when there is none. */
static inferd_status bi_regexp_substr(ARGS)
{
    const char *s;
    regex_t re;
    inferd_status st = regex_args("regexp_substr", a, &s, &re, err);
    if (st)
        return st;
    regmatch_t m;
    bool found = regexec(&re, s, 1, &m, 0) == 0;
    regfree(&re);
    return ret(out, found ? inferd_value_string_n(s + m.rm_so, (size_t)(m.rm_eo - m.rm_so))
                          : inferd_value_string(""), err);
}

/* Every match replaced by the replacement, where $1..$9 are its groups
 * (RE2's and the seed engine's way; $$ is a $). */
static inferd_status bi_regexp_replace(ARGS)
{
    const char *s, *rep;
    size_t rlen;
    regex_t re;
    inferd_status st = need_string("regexp_replace", a, 2, &rep, &rlen, err);
    if (st || (st = regex_args("regexp_replace", a, &s, &re, err)))
        return st;
    sbuf b = {0};
    regmatch_t m[10];
    const char *at = s;
    int flags = 0;
    bool after_match = false; /* an empty match right after a match does not count (RE2) */
    while (st == INFERD_OK && regexec(&re, at, 10, m, flags) == 0) {
        bool empty = m[0].rm_eo == m[0].rm_so;
        if (empty && m[0].rm_so == 0 && after_match) {
            if (!*at)
                break;
            st = sbuf_add(&b, at, 1, err);
            at++, after_match = false, flags = REG_NOTBOL;
            continue;
        }
        st = sbuf_add(&b, at, (size_t)m[0].rm_so, err);
        for (size_t i = 0; st == INFERD_OK && i < rlen; i++) {
            if (rep[i] == '$' && i + 1 < rlen && rep[i + 1] >= '0' && rep[i + 1] <= '9') {
                regmatch_t g = m[rep[++i] - '0'];
                if (g.rm_so >= 0)
                    st = sbuf_add(&b, at + g.rm_so, (size_t)(g.rm_eo - g.rm_so), err);
            } else if (rep[i] == '$' && i + 1 < rlen && rep[i + 1] == '$') {
                st = sbuf_add(&b, "$", 1, err);
                i++;
            } else {
                st = sbuf_add(&b, rep + i, 1, err);
            }
        }
        at += m[0].rm_eo;
        after_match = !empty;
        /* An empty match moves one character on, copied; at the end it is
         * the last one. */
        if (empty) {
            if (!*at)
                break;
            if (st == INFERD_OK)
                st = sbuf_add(&b, at, 1, err);
            at++;
        }
        flags = REG_NOTBOL;
    }
    regfree(&re);
    if (st == INFERD_OK)
        st = sbuf_add(&b, at, strlen(at), err);
    if (st != INFERD_OK) {
        free(b.data);
        return st;
    }
    inferd_value *v = inferd_value_string_n(b.data ? b.data : "", b.len);
    free(b.data);
    return ret(out, v, err);
}

/* ---- the table ------------------------------------------------------------------ */

/* name, arity, kind, takes NULLs, takes '*', call, bind-time check */
#define S(name, min, max) {#name, min, max, BI_SCALAR, false, false, bi_##name, NULL}
#define SN(name, min, max) {#name, min, max, BI_SCALAR, true, false, bi_##name, NULL}
#define SV(name, min, max, val) {#name, min, max, BI_SCALAR, false, false, bi_##name, val}
#define AGG(name, star) {#name, 1, 1, BI_AGGREGATE, true, star, bi_##name, NULL}

static const builtin builtins[] = {
    /* math */
    S(abs, 1, 1), S(ceil, 1, 1), S(floor, 1, 1), S(round, 1, 2), S(sqrt, 1, 1), S(power, 2, 2),
    S(mod, 2, 2), S(exp, 1, 1), S(ln, 1, 1), S(log, 1, 2), S(sin, 1, 1), S(cos, 1, 1),
    S(tan, 1, 1), S(asin, 1, 1), S(acos, 1, 1), S(atan, 1, 1), S(atan2, 2, 2), S(pi, 0, 0),
    S(rand, 0, 0), S(sign, 1, 1), S(bitand, 2, 2), S(bitor, 2, 2), S(bitxor, 2, 2),
    S(bitnot, 1, 1), S(cosh, 1, 1), S(sinh, 1, 1), S(tanh, 1, 1), S(degrees, 1, 1),
    S(radians, 1, 1), S(trunc, 2, 2),
    /* strings */
    S(concat, 1, -1), S(lower, 1, 1), S(upper, 1, 1), S(length, 1, 1), S(trim, 1, 1),
    S(ltrim, 1, 1), S(rtrim, 1, 1), S(substring, 2, 3), S(startswith, 2, 2), S(endswith, 2, 2),
    S(indexof, 2, 2), S(replace, 3, 3), S(split_value, 3, 3), S(lpad, 2, 2), S(rpad, 2, 2),
    S(reverse, 1, 1), S(numbytes, 1, 1), S(chr, 1, 1), S(regexp_matches, 2, 2),
    S(regexp_replace, 3, 3), S(regexp_substr, 2, 2),
    /* encoding, JSON, types */
    SV(encode, 2, 2, val_encode), SV(decode, 2, 2, val_decode), SN(to_json, 1, 1),
    S(parse_json, 1, 1), SV(json_path_query, 2, 2, val_json_path), S(object_keys, 1, 1),
    S(cardinality, 1, 1), SV(cast, 2, 2, val_cast), SN(isnull, 1, 1), SN(coalesce, 1, -1),
    SN(typeof, 1, 1),
    /* time, hashes, ids */
    S(now, 0, 0), {"unix_ts_ms", 0, 0, BI_SCALAR, false, false, bi_now, NULL},
    S(event_time, 0, 0),
    S(format_time, 2, 2), S(md5, 1, 1), S(sha1, 1, 1), S(sha256, 1, 1),
    S(sha384, 1, 1), S(sha512, 1, 1), S(newuuid, 0, 0),
    /* aggregates and windows */
    AGG(count, true), AGG(sum, false), AGG(avg, false), AGG(min, false), AGG(max, false),
    AGG(collect, true),
    {"window_start", 0, 0, BI_WINDOW, false, false, bi_window_start, NULL},
    {"window_end", 0, 0, BI_WINDOW, false, false, bi_window_end, NULL},
};

const builtin *sql_builtin_find(const char *name)
{
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
        if (strcasecmp(builtins[i].name, name) == 0)
            return &builtins[i];
    return NULL;
}

bool sql_is_window_name(const char *name)
{
    return strcasecmp(name, "TUMBLINGWINDOW") == 0 || strcasecmp(name, "HOPPINGWINDOW") == 0 ||
           strcasecmp(name, "SLIDINGWINDOW") == 0 || strcasecmp(name, "COUNTWINDOW") == 0;
}
