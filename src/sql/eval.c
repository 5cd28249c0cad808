/* eval.c: evaluates a bound expression against one message (or a group of
 * messages, for aggregates).
 *
 * Semantics: anything with NULL is NULL (IS NULL, AND/OR, CASE, IN and
 * functions that take NULL aside); int op int stays int (overflow is an
 * error), a double makes the result a double, int / int truncates, division
 * and modulo by zero are errors; comparisons take numbers with numbers,
 * strings with strings, bools with bools (= and != only) and any other mix
 * is an error naming both types. AND and OR are three-valued and stop early:
 * FALSE AND x is FALSE without evaluating x. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql/ast.h"

void ev_release(ev *x)
{
    inferd_value_free(x->owned);
    x->owned = NULL;
    x->v = NULL;
}

inferd_value *ev_take(ev *x)
{
    inferd_value *v = x->owned ? x->owned : inferd_value_copy(x->v);
    x->owned = NULL;
    x->v = NULL;
    return v;
}

static bool is_null(const inferd_value *v) { return inferd_value_type_of(v) == INFERD_VALUE_NULL; }

static bool is_number(const inferd_value *v)
{
    inferd_value_type t = inferd_value_type_of(v);
    return t == INFERD_VALUE_INT || t == INFERD_VALUE_DOUBLE;
}

static const char *tname(const inferd_value *v)
{
    return inferd_value_type_name(inferd_value_type_of(v));
}

static void set_null(const eval_ctx *c, ev *out)
{
    out->v = c->null;
    out->owned = NULL;
}

/* Takes v (a new value, NULL when its allocation failed) as the result. */
static inferd_status set_owned(ev *out, inferd_value *v, inferd_error *err)
{
    out->v = out->owned = v;
    return v ? INFERD_OK : sql_oom(err);
}

inferd_status sql_error_in(const sql_query *q, const char *what, const sql_expr *e,
                           inferd_error *err)
{
    if (!err)
        return INFERD_EINTERNAL;
    size_t len = e->end > e->start ? e->end - e->start : 0;
    int shown = len > 60 ? 57 : (int)len;
    return inferd_error_prefix(err, "in %s%s'%.*s%s'", what ? what : "", what ? " " : "", shown,
                               q->text + e->start, len > 60 ? "..." : "");
}

/* ---- comparison -------------------------------------------------------------- */

static int cmp_num(const inferd_value *a, const inferd_value *b)
{
    if (inferd_value_is(a, INFERD_VALUE_INT) && inferd_value_is(b, INFERD_VALUE_INT)) {
        int64_t x = inferd_value_int_or(a, 0), y = inferd_value_int_or(b, 0);
        return (x > y) - (x < y);
    }
    double x = inferd_value_double_or(a, 0), y = inferd_value_double_or(b, 0);
    return (x > y) - (x < y);
}

inferd_status sql_compare(const inferd_value *a, const inferd_value *b, bool eq_only, int *cmp,
                          inferd_error *err)
{
    inferd_value_type ta = inferd_value_type_of(a), tb = inferd_value_type_of(b);
    if (is_number(a) && is_number(b)) {
        *cmp = cmp_num(a, b);
        return INFERD_OK;
    }
    if (ta != tb)
        return inferd_error_set(err, INFERD_ETYPE, "cannot compare %s with %s", tname(a), tname(b));
    if (ta == INFERD_VALUE_STRING) {
        const char *x, *y;
        size_t nx, ny;
        inferd_value_get_string(a, &x, &nx, NULL);
        inferd_value_get_string(b, &y, &ny, NULL);
        int r = memcmp(x, y, nx < ny ? nx : ny);
        *cmp = r ? (r > 0) - (r < 0) : (nx > ny) - (nx < ny);
        return INFERD_OK;
    }
    if (!eq_only)
        return inferd_error_set(err, INFERD_ETYPE,
                                "values of type %s can only be compared with = and !=", tname(a));
    *cmp = inferd_value_equal(a, b) ? 0 : 1;
    return INFERD_OK;
}

static bool cmp_holds(sql_op op, int cmp)
{
    switch (op) {
    case OP_EQ: return cmp == 0;
    case OP_NE: return cmp != 0;
    case OP_LT: return cmp < 0;
    case OP_LE: return cmp <= 0;
    case OP_GT: return cmp > 0;
    case OP_GE: return cmp >= 0;
    default: return false;
    }
}

/* ---- arithmetic -------------------------------------------------------------- */

static const char *op_symbol(sql_op op)
{
    static const char *const sym[] = {"", "+", "-", "*", "/", "%", "=", "!=", "<", "<=", ">", ">="};
    return sym[op];
}

inferd_status sql_arith(sql_op op, const inferd_value *a, const inferd_value *b, inferd_value **out,
                        inferd_error *err)
{
    if (!is_number(a) || !is_number(b))
        return inferd_error_set(err, INFERD_ETYPE, "cannot apply %s to %s and %s", op_symbol(op),
                                tname(a), tname(b));
    if (inferd_value_is(a, INFERD_VALUE_INT) && inferd_value_is(b, INFERD_VALUE_INT)) {
        int64_t x = inferd_value_int_or(a, 0), y = inferd_value_int_or(b, 0), r = 0;
        bool overflow = false;
        switch (op) {
        case OP_ADD: overflow = __builtin_add_overflow(x, y, &r); break;
        case OP_SUB: overflow = __builtin_sub_overflow(x, y, &r); break;
        case OP_MUL: overflow = __builtin_mul_overflow(x, y, &r); break;
        case OP_DIV:
        case OP_MOD:
            if (y == 0)
                return inferd_error_set(err, INFERD_EINVAL, "%s by zero",
                                        op == OP_DIV ? "division" : "modulo");
            if (y == -1) { /* INT64_MIN / -1 does not fit; x % -1 is 0 */
                overflow = op == OP_DIV && x == INT64_MIN;
                r = op == OP_DIV && !overflow ? -x : 0;
            } else {
                r = op == OP_DIV ? x / y : x % y;
            }
            break;
        default: break;
        }
        if (overflow)
            return inferd_error_set(err, INFERD_ERANGE, "integer overflow in %lld %s %lld",
                                    (long long)x, op_symbol(op), (long long)y);
        *out = inferd_value_int(r);
    } else {
        double x = inferd_value_double_or(a, 0), y = inferd_value_double_or(b, 0), r = 0;
        switch (op) {
        case OP_ADD: r = x + y; break;
        case OP_SUB: r = x - y; break;
        case OP_MUL: r = x * y; break;
        case OP_DIV:
        case OP_MOD:
            if (y == 0)
                return inferd_error_set(err, INFERD_EINVAL, "%s by zero",
                                        op == OP_DIV ? "division" : "modulo");
            r = op == OP_DIV ? x / y : fmod(x, y);
            break;
        default: break;
        }
        *out = inferd_value_double(r);
    }
    return *out ? INFERD_OK : sql_oom(err);
}

/* ---- three-valued logic -------------------------------------------------------- */

enum { TV_FALSE = 0, TV_TRUE = 1, TV_NULL = -1 };

/* Evaluates e as a truth value; a non-boolean is an error naming what. */
static inferd_status eval_tv(eval_ctx *c, const sql_expr *e, const char *what, int *tv,
                             inferd_error *err)
{
    ev x = {0};
    inferd_status st = sql_eval(c, e, &x, err);
    if (st)
        return st;
    bool b;
    if (is_null(x.v))
        *tv = TV_NULL;
    else if (inferd_value_get_bool(x.v, &b, NULL) == INFERD_OK)
        *tv = b ? TV_TRUE : TV_FALSE;
    else
        st = inferd_error_set(err, INFERD_ETYPE, "%s needs a boolean, got %s", what, tname(x.v));
    ev_release(&x);
    return st;
}

static inferd_status set_tv(const eval_ctx *c, ev *out, int tv, inferd_error *err)
{
    if (tv == TV_NULL) {
        set_null(c, out);
        return INFERD_OK;
    }
    return set_owned(out, inferd_value_bool(tv == TV_TRUE), err);
}

static inferd_status eval_and_or(eval_ctx *c, const sql_expr *e, ev *out, inferd_error *err)
{
    bool is_and = e->kind == EX_AND;
    const char *what = is_and ? "AND" : "OR";
    int stop = is_and ? TV_FALSE : TV_TRUE; /* the value that decides alone */
    int l, r;
    inferd_status st = eval_tv(c, e->kids[0], what, &l, err);
    if (st)
        return st;
    if (l == stop)
        return set_tv(c, out, stop, err);
    if ((st = eval_tv(c, e->kids[1], what, &r, err)))
        return st;
    if (r == stop)
        return set_tv(c, out, stop, err);
    return set_tv(c, out, l == TV_NULL || r == TV_NULL ? TV_NULL : !stop, err);
}

/* ---- LIKE ------------------------------------------------------------------- */

/* Bytes in the UTF-8 character at s (1 for a stray byte). */
static size_t u8len(const char *s, size_t avail)
{
    unsigned char c = (unsigned char)s[0];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    return n <= avail ? n : avail;
}

/* '%' any run of characters, '_' one character, esc makes the next
 * character literal. Iterative with one backtrack point: O(n*m). */
static bool like_match(const char *s, size_t sn, const char *p, size_t pn, int esc)
{
    size_t si = 0, pi = 0, star_p = SIZE_MAX, star_s = 0;
    while (si < sn) {
        if (pi < pn) {
            unsigned char pc = (unsigned char)p[pi];
            if (pc == '%') {
                star_p = ++pi;
                star_s = si;
                continue;
            }
            if (pc == '_') {
                si += u8len(s + si, sn - si);
                pi++;
                continue;
            }
            size_t lit = (int)pc == esc && pi + 1 < pn ? pi + 1 : pi;
            if (s[si] == p[lit]) {
                si++;
                pi = lit + 1;
                continue;
            }
        }
        if (star_p == SIZE_MAX)
            return false;
        star_s += u8len(s + star_s, sn - star_s);
        si = star_s;
        pi = star_p;
    }
    while (pi < pn && p[pi] == '%')
        pi++;
    return pi == pn;
}

static inferd_status eval_like(eval_ctx *c, const sql_expr *e, ev *out, inferd_error *err)
{
    ev x[3] = {{0}};
    inferd_status st = INFERD_OK;
    bool any_null = false;
    for (size_t i = 0; i < e->n_kids && !st; i++) {
        st = sql_eval(c, e->kids[i], &x[i], err);
        if (!st && is_null(x[i].v))
            any_null = true;
        else if (!st && !inferd_value_is(x[i].v, INFERD_VALUE_STRING))
            st = inferd_error_set(err, INFERD_ETYPE, "LIKE needs strings, got %s", tname(x[i].v));
    }
    int esc = '\\';
    if (!st && !any_null && e->n_kids == 3) {
        const char *s;
        size_t n;
        inferd_value_get_string(x[2].v, &s, &n, NULL);
        if (n != 1)
            st = inferd_error_set(err, INFERD_EINVAL, "ESCAPE needs one character, got '%s'", s);
        esc = (unsigned char)s[0];
    }
    if (!st && any_null) {
        set_null(c, out);
    } else if (!st) {
        const char *s, *p;
        size_t sn, pn;
        inferd_value_get_string(x[0].v, &s, &sn, NULL);
        inferd_value_get_string(x[1].v, &p, &pn, NULL);
        st = set_owned(out, inferd_value_bool(like_match(s, sn, p, pn, esc) != e->negated), err);
    }
    for (size_t i = 0; i < 3; i++)
        ev_release(&x[i]);
    return st;
}

/* ---- the rest of the operators ------------------------------------------------- */

/* Compares two evaluated values as op: TV_NULL when either is NULL. */
static inferd_status compare_tv(const inferd_value *a, const inferd_value *b, sql_op op, int *tv,
                                inferd_error *err)
{
    if (is_null(a) || is_null(b)) {
        *tv = TV_NULL;
        return INFERD_OK;
    }
    int cmp;
    inferd_status st = sql_compare(a, b, op == OP_EQ || op == OP_NE, &cmp, err);
    if (st == INFERD_OK)
        *tv = cmp_holds(op, cmp);
    return st;
}

static inferd_status eval_in(eval_ctx *c, const sql_expr *e, ev *out, inferd_error *err)
{
    ev x = {0};
    inferd_status st = sql_eval(c, e->kids[0], &x, err);
    if (st)
        return st;
    int tv = TV_FALSE;
    if (is_null(x.v))
        tv = TV_NULL;
    for (size_t i = 1; i < e->n_kids && tv != TV_TRUE && !is_null(x.v); i++) {
        ev y = {0};
        int one;
        if ((st = sql_eval(c, e->kids[i], &y, err)) == INFERD_OK &&
            (st = compare_tv(x.v, y.v, OP_EQ, &one, err)) == INFERD_OK) {
            if (one == TV_TRUE || one == TV_NULL)
                tv = one;
        }
        ev_release(&y);
        if (st)
            break;
    }
    ev_release(&x);
    if (st)
        return st;
    if (tv != TV_NULL && e->negated)
        tv = !tv;
    return set_tv(c, out, tv, err);
}

static inferd_status eval_between(eval_ctx *c, const sql_expr *e, ev *out, inferd_error *err)
{
    ev x[3] = {{0}};
    inferd_status st = INFERD_OK;
    for (size_t i = 0; i < 3 && !st; i++)
        st = sql_eval(c, e->kids[i], &x[i], err);
    int ge = TV_NULL, le = TV_NULL;
    if (!st && !(st = compare_tv(x[0].v, x[1].v, OP_GE, &ge, err)))
        st = compare_tv(x[0].v, x[2].v, OP_LE, &le, err);
    for (size_t i = 0; i < 3; i++)
        ev_release(&x[i]);
    if (st)
        return st;
    int tv = ge == TV_FALSE || le == TV_FALSE ? TV_FALSE
             : ge == TV_NULL || le == TV_NULL ? TV_NULL
                                              : TV_TRUE;
    if (tv != TV_NULL && e->negated)
        tv = !tv;
    return set_tv(c, out, tv, err);
}

static inferd_status eval_case(eval_ctx *c, const sql_expr *e, ev *out, inferd_error *err)
{
    size_t i = 0, n_pairs = (e->n_kids - e->has_operand - e->has_else) / 2;
    ev operand = {0};
    inferd_status st = INFERD_OK;
    if (e->has_operand && (st = sql_eval(c, e->kids[i++], &operand, err)))
        return st;
    for (size_t k = 0; k < n_pairs; k++, i += 2) {
        int tv;
        if (e->has_operand) {
            ev w = {0};
            if ((st = sql_eval(c, e->kids[i], &w, err)) == INFERD_OK)
                st = compare_tv(operand.v, w.v, OP_EQ, &tv, err);
            ev_release(&w);
        } else {
            st = eval_tv(c, e->kids[i], "CASE WHEN", &tv, err);
        }
        if (st || tv == TV_TRUE) {
            ev_release(&operand);
            return st ? st : sql_eval(c, e->kids[i + 1], out, err);
        }
    }
    ev_release(&operand);
    if (e->has_else)
        return sql_eval(c, e->kids[i], out, err);
    set_null(c, out);
    return INFERD_OK;
}

/* A part of base (borrowed from it) as the result: borrowed when base is,
 * copied when base is a temporary about to be freed. */
static inferd_status take_part(const eval_ctx *c, ev *base, const inferd_value *part, ev *out,
                               inferd_error *err)
{
    inferd_status st = INFERD_OK;
    if (!part)
        set_null(c, out);
    else if (base->owned)
        st = set_owned(out, inferd_value_copy(part), err);
    else
        *out = (ev){part, NULL};
    ev_release(base);
    return st;
}

static inferd_status eval_field(eval_ctx *c, const sql_expr *e, ev *out, inferd_error *err)
{
    ev base = {0};
    inferd_status st = sql_eval(c, e->kids[0], &base, err);
    if (st)
        return st;
    if (!is_null(base.v) && !inferd_value_is(base.v, INFERD_VALUE_OBJECT)) {
        st = inferd_error_set(err, INFERD_ETYPE, "cannot use -> on a %s", tname(base.v));
        ev_release(&base);
        return st;
    }
    return take_part(c, &base, inferd_value_object_get(base.v, e->name), out, err);
}

static inferd_status eval_index(eval_ctx *c, const sql_expr *e, ev *out, inferd_error *err)
{
    ev base = {0}, idx = {0};
    inferd_status st = sql_eval(c, e->kids[0], &base, err);
    if (st || (st = sql_eval(c, e->kids[1], &idx, err))) {
        ev_release(&base);
        return st;
    }
    const inferd_value *part = NULL;
    if (!is_null(base.v) && !inferd_value_is(base.v, INFERD_VALUE_ARRAY)) {
        st = inferd_error_set(err, INFERD_ETYPE, "cannot index a %s", tname(base.v));
    } else if (!is_null(idx.v) && !inferd_value_is(idx.v, INFERD_VALUE_INT)) {
        st = inferd_error_set(err, INFERD_ETYPE, "an index must be an integer, got %s",
                              tname(idx.v));
    } else if (!is_null(base.v) && !is_null(idx.v)) {
        int64_t i = inferd_value_int_or(idx.v, 0), len = (int64_t)inferd_value_array_len(base.v);
        if (i < 0)
            i += len;
        if (i >= 0 && i < len)
            part = inferd_value_array_get(base.v, (size_t)i);
    }
    ev_release(&idx);
    if (st) {
        ev_release(&base);
        return st;
    }
    return take_part(c, &base, part, out, err);
}

static inferd_status eval_neg(eval_ctx *c, const sql_expr *e, ev *out, inferd_error *err)
{
    ev x = {0};
    inferd_status st = sql_eval(c, e->kids[0], &x, err);
    if (st)
        return st;
    if (is_null(x.v)) {
        set_null(c, out);
    } else if (inferd_value_is(x.v, INFERD_VALUE_INT)) {
        int64_t i = inferd_value_int_or(x.v, 0);
        st = i == INT64_MIN
                 ? inferd_error_set(err, INFERD_ERANGE, "integer overflow in -(%lld)", (long long)i)
                 : set_owned(out, inferd_value_int(-i), err);
    } else if (inferd_value_is(x.v, INFERD_VALUE_DOUBLE)) {
        st = set_owned(out, inferd_value_double(-inferd_value_double_or(x.v, 0)), err);
    } else {
        st = inferd_error_set(err, INFERD_ETYPE, "cannot negate a %s", tname(x.v));
    }
    ev_release(&x);
    return st;
}

static inferd_status eval_binary(eval_ctx *c, const sql_expr *e, ev *out, inferd_error *err)
{
    ev a = {0}, b = {0};
    inferd_status st = sql_eval(c, e->kids[0], &a, err);
    if (st == INFERD_OK)
        st = sql_eval(c, e->kids[1], &b, err);
    if (st == INFERD_OK) {
        if (e->kind == EX_CMP) {
            int tv;
            if ((st = compare_tv(a.v, b.v, e->op, &tv, err)) == INFERD_OK)
                st = set_tv(c, out, tv, err);
        } else if (is_null(a.v) || is_null(b.v)) {
            set_null(c, out);
        } else {
            inferd_value *r = NULL;
            if ((st = sql_arith(e->op, a.v, b.v, &r, err)) == INFERD_OK)
                st = set_owned(out, r, err);
        }
    }
    ev_release(&a);
    ev_release(&b);
    return st;
}

/* ---- function calls ---------------------------------------------------------- */

/* Calls a built-in or resolved function over evaluated arguments. */
static inferd_status invoke(const eval_ctx *c, const sql_expr *e, const inferd_value *const *args,
                            size_t n, ev *out, inferd_error *err)
{
    inferd_value *r = NULL;
    inferd_status st;
    if (e->builtin) {
        st = e->builtin->call(c, args, n, &r, err);
    } else {
        st = e->fn.call(e->fn.ctx, args, n, &r, err);
        if (st == INFERD_OK && !r && !(r = inferd_value_null()))
            return sql_oom(err);
    }
    if (st) {
        inferd_value_free(r);
        return st;
    }
    return set_owned(out, r, err);
}

/* An aggregate: each argument evaluated over the group's rows into an array. */
static inferd_status eval_aggregate(eval_ctx *c, const sql_expr *e, ev *out, inferd_error *err)
{
    if (!c->rows)
        return inferd_error_set(err, INFERD_EINTERNAL, "aggregate '%s' outside a group", e->name);
    bool star = e->n_kids == 1 && e->kids[0]->kind == EX_STAR;
    if (star && strcmp(e->builtin ? e->builtin->name : "", "count") == 0)
        return set_owned(out, inferd_value_int((int64_t)c->n_rows), err);
    inferd_value *arrays[16] = {0}, **arr = arrays;
    if (e->n_kids > 16 && !(arr = calloc(e->n_kids, sizeof *arr)))
        return sql_oom(err);
    inferd_status st = INFERD_OK;
    eval_ctx one = *c;
    one.rows = NULL; /* evaluating one row: no aggregate may nest */
    for (size_t k = 0; k < e->n_kids && !st; k++) {
        if (!(arr[k] = inferd_value_array())) {
            st = sql_oom(err);
            break;
        }
        for (size_t r = 0; r < c->n_rows && !st; r++) {
            ev x = {0};
            one.row = c->rows[r];
            if (star)
                st = set_owned(&x, inferd_value_copy(one.row), err);
            else
                st = sql_eval(&one, e->kids[k], &x, err);
            if (!st)
                st = inferd_value_array_push(arr[k], ev_take(&x), err);
        }
    }
    if (!st)
        st = invoke(c, e, (const inferd_value *const *)arr, e->n_kids, out, err);
    for (size_t k = 0; k < e->n_kids; k++)
        inferd_value_free(arr[k]);
    if (arr != arrays)
        free(arr);
    return st;
}

static inferd_status eval_call(eval_ctx *c, const sql_expr *e, ev *out, inferd_error *err)
{
    if (!e->builtin && !e->fn.call)
        return inferd_error_set(err, INFERD_ESTATE, "function '%s' is not bound", e->name);
    if (e->aggregate)
        return eval_aggregate(c, e, out, err);
    ev xs[16] = {{0}}, *x = xs;
    const inferd_value *ps[16], **p = ps;
    if (e->n_kids > 16) {
        x = calloc(e->n_kids, sizeof *x);
        p = calloc(e->n_kids, sizeof *p);
        if (!x || !p) {
            free(x);
            free(p);
            return sql_oom(err);
        }
    }
    inferd_status st = INFERD_OK;
    bool any_null = false;
    for (size_t i = 0; i < e->n_kids && !st; i++) {
        st = sql_eval(c, e->kids[i], &x[i], err);
        p[i] = x[i].v;
        any_null |= !st && is_null(x[i].v);
    }
    if (!st) {
        if (any_null && e->builtin && !e->builtin->null_ok)
            set_null(c, out);
        else
            st = invoke(c, e, p, e->n_kids, out, err);
    }
    for (size_t i = 0; i < e->n_kids; i++)
        ev_release(&x[i]);
    if (x != xs) {
        free(x);
        free(p);
    }
    return st;
}

/* ---- the dispatcher ------------------------------------------------------------ */

/* Another SELECT item's value, by its alias: computed once per row in
 * sql_eval_select (kept in item_vals), borrowed from there. */
static inferd_status eval_alias(eval_ctx *c, size_t j, ev *out, inferd_error *err)
{
    const sql_expr *e = c->q->items[j].expr;
    if (!c->item_vals)
        return sql_eval(c, e, out, err);
    if (!c->item_vals[j]) {
        ev x = {0};
        inferd_status st = sql_eval(c, e, &x, err);
        if (st)
            return st;
        if (!(c->item_vals[j] = ev_take(&x)))
            return sql_oom(err);
    }
    out->v = c->item_vals[j];
    return INFERD_OK;
}

inferd_status sql_eval(eval_ctx *c, const sql_expr *e, ev *out, inferd_error *err)
{
    *out = (ev){0};
    switch (e->kind) {
    case EX_LIT: out->v = e->lit; return INFERD_OK;
    case EX_SELF: out->v = c->row; return INFERD_OK;
    case EX_COL: {
        if (e->alias_of)
            return eval_alias(c, e->alias_of - 1, out, err);
        const inferd_value *v = inferd_value_is(c->row, INFERD_VALUE_OBJECT)
                                    ? inferd_value_object_get(c->row, e->name)
                                    : NULL;
        out->v = v ? v : c->null;
        return INFERD_OK;
    }
    case EX_STAR:
        return inferd_error_set(err, INFERD_EINTERNAL, "'*' outside count(*) or collect(*)");
    case EX_FIELD: return eval_field(c, e, out, err);
    case EX_INDEX: return eval_index(c, e, out, err);
    case EX_NEG: return eval_neg(c, e, out, err);
    case EX_NOT: {
        int tv;
        inferd_status st = eval_tv(c, e->kids[0], "NOT", &tv, err);
        return st ? st : set_tv(c, out, tv == TV_NULL ? TV_NULL : !tv, err);
    }
    case EX_ARITH:
    case EX_CMP: return eval_binary(c, e, out, err);
    case EX_AND:
    case EX_OR: return eval_and_or(c, e, out, err);
    case EX_IN: return eval_in(c, e, out, err);
    case EX_LIKE: return eval_like(c, e, out, err);
    case EX_ISNULL: {
        ev x = {0};
        inferd_status st = sql_eval(c, e->kids[0], &x, err);
        if (st)
            return st;
        bool null = is_null(x.v);
        ev_release(&x);
        return set_owned(out, inferd_value_bool(null != e->negated), err);
    }
    case EX_BETWEEN: return eval_between(c, e, out, err);
    case EX_CASE: return eval_case(c, e, out, err);
    case EX_CALL: return eval_call(c, e, out, err);
    }
    return inferd_error_set(err, INFERD_EINTERNAL, "unknown expression kind %d", (int)e->kind);
}

inferd_status sql_eval_cond(eval_ctx *c, const sql_expr *e, const char *what, bool *pass,
                            inferd_error *err)
{
    int tv;
    inferd_status st = eval_tv(c, e, what, &tv, err);
    if (st)
        return sql_error_in(c->q, what, e, err);
    *pass = tv == TV_TRUE;
    return INFERD_OK;
}

/* The message's fields for '*': an object's own, anything else as "self". */
static inferd_status add_star(inferd_value *row, const inferd_value *msg, inferd_error *err)
{
    if (!inferd_value_is(msg, INFERD_VALUE_OBJECT))
        return inferd_value_object_set(row, "self", inferd_value_copy(msg), err);
    const char *key;
    inferd_value *item;
    for (size_t i = 0; inferd_value_object_entry(msg, i, &key, &item); i++) {
        inferd_status st = inferd_value_object_set(row, key, inferd_value_copy(item), err);
        if (st)
            return st;
    }
    return INFERD_OK;
}

inferd_status sql_eval_select(eval_ctx *c, inferd_value **out, inferd_error *err)
{
    *out = NULL;
    inferd_value *row = inferd_value_object();
    if (!row)
        return sql_oom(err);
    /* Kept values only where an alias is used: no allocation per row else. */
    bool kept = false;
    for (size_t i = 0; i < c->q->n_items && !kept; i++)
        kept = c->q->items[i].referenced;
    inferd_value **vals = kept ? calloc(c->q->n_items, sizeof *vals) : NULL;
    if (kept && !vals) {
        inferd_value_free(row);
        return sql_oom(err);
    }
    c->item_vals = vals;
    inferd_status st = INFERD_OK;
    for (size_t i = 0; i < c->q->n_items && !st; i++) {
        const select_item *it = &c->q->items[i];
        if (!it->expr) {
            st = add_star(row, c->row, err);
            continue;
        }
        ev x = {0};
        inferd_value *had = vals ? vals[i] : NULL; /* computed for an alias already */
        if (!had && (st = sql_eval(c, it->expr, &x, err))) {
            sql_error_in(c->q, NULL, it->expr, err);
            break;
        }
        if (it->referenced && !had && !(had = vals[i] = ev_take(&x))) {
            st = sql_oom(err);
            break;
        }
        inferd_value *v = had ? inferd_value_copy(had) : ev_take(&x);
        if (c->q->omit_nil && inferd_value_is(v, INFERD_VALUE_NULL)) {
            inferd_value_free(v);
            continue;
        }
        st = inferd_value_object_set(row, it->name, v, err);
    }
    c->item_vals = NULL;
    if (kept) {
        for (size_t i = 0; i < c->q->n_items; i++)
            inferd_value_free(vals[i]);
        free(vals);
    }
    if (st) {
        inferd_value_free(row);
        return st;
    }
    *out = row;
    return INFERD_OK;
}
