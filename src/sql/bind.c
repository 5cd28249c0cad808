/* bind.c: ties a parsed SELECT to its functions and its stream (built-in
 * functions first, then the caller's resolver; arity; where aggregates may
 * appear; declared columns), names its output columns, and converts a
 * message's fields to their declared types (sql_coerce). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sql/ast.h"

typedef enum clause { CL_SELECT, CL_WHERE, CL_GROUP, CL_HAVING } clause;

static const char *const clause_names[] = {"SELECT", "WHERE", "GROUP BY", "HAVING"};

typedef struct binder {
    sql_query *q;
    const sql_stream_def *stream; /* borrowed, may be NULL */
    sql_resolve_fn resolve;
    void *rctx;
    bool has_aggregate; /* an aggregate call in SELECT or HAVING */
    size_t item;        /* the SELECT item being bound */
} binder;

static inferd_status remember_function(sql_query *q, const char *name, inferd_error *err)
{
    for (size_t i = 0; i < q->n_functions; i++)
        if (strcmp(q->functions[i], name) == 0)
            return INFERD_OK;
    char **f = realloc(q->functions, (q->n_functions + 1) * sizeof *f);
    if (!f)
        return sql_oom(err);
    q->functions = f;
    if (!(q->functions[q->n_functions] = strdup(name)))
        return sql_oom(err);
    q->n_functions++;
    return INFERD_OK;
}

static inferd_status check_arity(const sql_expr *e, const char *name, int min, int max,
                                 inferd_error *err)
{
    int n = (int)e->n_kids;
    if (n >= min && (max < 0 || n <= max))
        return INFERD_OK;
    char want[64];
    if (max < 0)
        snprintf(want, sizeof want, "at least %d argument%s", min, min == 1 ? "" : "s");
    else if (min == max)
        snprintf(want, sizeof want, "%d argument%s", min, min == 1 ? "" : "s");
    else
        snprintf(want, sizeof want, "%d to %d arguments", min, max);
    return sql_error_at(err, INFERD_EINVAL, e->line, e->col, "function '%s' takes %s, got %d", name,
                        want, n);
}

/* Runs a validate callback over the call's literal arguments. */
static inferd_status validate_literals(const sql_expr *e, void *ctx, bool plugin, const builtin *bi,
                                       const sql_function *fn, inferd_error *err)
{
    const inferd_value *args[16];
    const inferd_value **all = args;
    if (e->n_kids > 16 && !(all = calloc(e->n_kids, sizeof *all)))
        return sql_oom(err);
    for (size_t i = 0; i < e->n_kids; i++)
        all[i] = e->kids[i]->kind == EX_LIT ? e->kids[i]->lit : NULL;
    inferd_error inner = {0};
    inferd_status st =
        plugin ? fn->validate(ctx, all, e->n_kids, &inner) : bi->validate(all, e->n_kids, &inner);
    if (all != args)
        free(all);
    if (st)
        return sql_error_at(err, st, e->line, e->col, "%s", inner.message);
    return INFERD_OK;
}

/* Aggregates and window functions: only where a group exists. */
static inferd_status check_placement(binder *b, const sql_expr *e, clause cl, const sql_expr *agg,
                                     bool is_agg, bool is_window_fn, inferd_error *err)
{
    const char *kind = is_agg ? "aggregate function" : "function";
    if (!is_agg && !is_window_fn)
        return INFERD_OK;
    if (is_agg && agg)
        return sql_error_at(err, INFERD_EINVAL, e->line, e->col,
                            "aggregate function '%s' cannot be nested in another aggregate ('%s')",
                            e->name, agg->name);
    if (cl == CL_WHERE || cl == CL_GROUP)
        return sql_error_at(err, INFERD_EINVAL, e->line, e->col, "%s '%s' is not allowed in %s",
                            kind, e->name, clause_names[cl]);
    if (b->q->window.kind == WIN_NONE)
        return sql_error_at(err, INFERD_EINVAL, e->line, e->col,
                            "%s '%s' needs a window (GROUP BY TUMBLINGWINDOW(...), ...)", kind,
                            e->name);
    if (is_agg)
        b->has_aggregate = true;
    return INFERD_OK;
}

static inferd_status bind_expr(binder *b, sql_expr *e, clause cl, const sql_expr *agg,
                               inferd_error *err);

static inferd_status bind_call(binder *b, sql_expr *e, clause cl, const sql_expr *agg,
                               inferd_error *err)
{
    inferd_status st;
    bool star = e->n_kids == 1 && e->kids[0]->kind == EX_STAR;
    const builtin *bi = sql_builtin_find(e->name);
    if (!bi && sql_is_window_name(e->name))
        return sql_error_at(err, INFERD_EINVAL, e->line, e->col,
                            "%s is a window: it belongs in GROUP BY", e->name);
    if (bi) {
        e->builtin = bi;
        e->aggregate = bi->kind == BI_AGGREGATE;
        if ((st = check_arity(e, bi->name, bi->min_args, bi->max_args, err)))
            return st;
        if (star && !bi->star_ok)
            return sql_error_at(err, INFERD_EINVAL, e->kids[0]->line, e->kids[0]->col,
                                "'*' is only allowed in count(*) and collect(*)");
        if ((st = check_placement(b, e, cl, agg, e->aggregate, bi->kind == BI_WINDOW, err)))
            return st;
        if (bi->validate && (st = validate_literals(e, NULL, false, bi, NULL, err)))
            return st;
    } else {
        inferd_error inner = {0};
        st = b->resolve ? b->resolve(b->rctx, e->name, &e->fn, &inner) : INFERD_ENOTFOUND;
        if (st == INFERD_ENOTFOUND)
            return sql_error_at(err, INFERD_EINVAL, e->line, e->col, "unknown function '%s'",
                                e->name);
        if (st)
            return sql_error_at(err, st, e->line, e->col, "%s", inner.message);
        if (!e->fn.call)
            return sql_error_at(err, INFERD_EINTERNAL, e->line, e->col,
                                "function '%s' was resolved without a call", e->name);
        e->aggregate = e->fn.aggregate;
        if ((st = remember_function(b->q, e->name, err)) ||
            (st = check_arity(e, e->name, e->fn.min_args, e->fn.max_args, err)))
            return st;
        if (star)
            return sql_error_at(err, INFERD_EINVAL, e->kids[0]->line, e->kids[0]->col,
                                "'*' is only allowed in count(*) and collect(*)");
        if ((st = check_placement(b, e, cl, agg, e->aggregate, false, err)))
            return st;
        if (e->fn.validate && (st = validate_literals(e, e->fn.ctx, true, NULL, &e->fn, err)))
            return st;
    }
    for (size_t i = 0; i < e->n_kids; i++)
        if (e->kids[i]->kind != EX_STAR &&
            (st = bind_expr(b, e->kids[i], cl, e->aggregate ? e : agg, err)))
            return st;
    return INFERD_OK;
}

static inferd_status bind_column(binder *b, sql_expr *e, clause cl, const sql_expr *agg,
                                 inferd_error *err)
{
    /* The seed engine's aliases: a SELECT item may name another item's
     * alias, before or after it (the alias wins over a column of that
     * name), and gets that item's value, computed once per row. Not inside
     * an aggregate, whose argument runs once for each row of the group. */
    for (size_t j = 0; cl == CL_SELECT && !agg && j < b->q->n_items; j++)
        if (j != b->item && b->q->items[j].alias && strcmp(b->q->items[j].alias, e->name) == 0) {
            e->alias_of = j + 1;
            b->q->items[j].referenced = true;
            return INFERD_OK;
        }
    const sql_stream_def *s = b->stream;
    if (!s || s->n_columns == 0)
        return INFERD_OK; /* schemaless: a missing field is NULL when it runs */
    for (size_t i = 0; i < s->n_columns; i++)
        if (strcmp(s->columns[i].name, e->name) == 0)
            return INFERD_OK;
    return sql_error_at(err, INFERD_EINVAL, e->line, e->col, "unknown column '%s' in stream '%s'",
                        e->name, s->name ? s->name : "");
}

static inferd_status bind_expr(binder *b, sql_expr *e, clause cl, const sql_expr *agg,
                               inferd_error *err)
{
    switch (e->kind) {
    case EX_CALL: return bind_call(b, e, cl, agg, err);
    case EX_COL: return bind_column(b, e, cl, agg, err);
    case EX_STAR: /* the parser makes these only as a call's argument */
        return sql_error_at(err, INFERD_EINVAL, e->line, e->col, "unexpected '*'");
    default:
        for (size_t i = 0; i < e->n_kids; i++) {
            inferd_status st = bind_expr(b, e->kids[i], cl, agg, err);
            if (st)
                return st;
        }
        return INFERD_OK;
    }
}

/* Evaluation follows aliases by recursion: a chain is bounded as an
 * expression's depth is. */
#define SQL_MAX_ALIAS_CHAIN 32

/* Whether the aliases that e names lead back to an item in progress
 * (state: 0 not seen, 1 in progress, 2 done) or chain deeper than
 * SQL_MAX_ALIAS_CHAIN (*too_deep); *at is the reference. */
static bool alias_cycle(const sql_query *q, const sql_expr *e, unsigned char *state, int hops,
                        const sql_expr **at, bool *too_deep)
{
    if (e->alias_of) {
        size_t j = e->alias_of - 1;
        if (state[j] == 1 || hops >= SQL_MAX_ALIAS_CHAIN) {
            *too_deep = state[j] != 1;
            *at = e;
            return true;
        }
        if (state[j] == 0) {
            state[j] = 1;
            if (alias_cycle(q, q->items[j].expr, state, hops + 1, at, too_deep))
                return true;
            state[j] = 2;
        }
    }
    for (size_t i = 0; i < e->n_kids; i++)
        if (alias_cycle(q, e->kids[i], state, hops, at, too_deep))
            return true;
    return false;
}

/* The output name of a select item without an alias; *unnamed counts the
 * items that have no name of their own (the seed engine's kuiper_field_N). */
static inferd_status item_name(const select_item *it, size_t *unnamed, char **out,
                               inferd_error *err)
{
    const sql_expr *e = it->expr;
    const char *name = it->alias;
    char buf[32];
    if (!name) {
        switch (e->kind) {
        case EX_COL:
        case EX_FIELD:
        case EX_CALL: name = e->name; break;
        case EX_SELF: name = "self"; break;
        default:
            snprintf(buf, sizeof buf, "kuiper_field_%zu", (*unnamed)++);
            name = buf;
            break;
        }
    }
    if (!(*out = strdup(name)))
        return sql_oom(err);
    return INFERD_OK;
}

inferd_status sql_query_bind(sql_query *q, const sql_stream_def *stream, sql_resolve_fn resolve,
                             void *rctx, inferd_error *err)
{
    if (!q)
        return inferd_error_set(err, INFERD_EINVAL, "no query");
    if (q->bound)
        return inferd_error_set(err, INFERD_ESTATE, "the query is bound already");
    binder b = {.q = q, .stream = stream, .resolve = resolve, .rctx = rctx};
    inferd_status st;
    size_t unnamed = 0;
    for (size_t i = 0; i < q->n_items; i++) {
        select_item *it = &q->items[i];
        if (!it->expr)
            continue;
        b.item = i;
        if ((st = bind_expr(&b, it->expr, CL_SELECT, NULL, err)) ||
            (st = item_name(it, &unnamed, &it->name, err)))
            return st;
        for (size_t j = 0; j < i; j++)
            if (q->items[j].name && strcmp(q->items[j].name, it->name) == 0)
                return sql_error_at(err, INFERD_EINVAL, it->line, it->col,
                                    "duplicate output name '%s' (rename one with AS)", it->name);
    }
    unsigned char *state = calloc(q->n_items ? q->n_items : 1, 1);
    if (!state)
        return sql_oom(err);
    for (size_t i = 0; i < q->n_items; i++) {
        const sql_expr *at = NULL;
        bool too_deep = false;
        if (!q->items[i].expr || state[i] == 2)
            continue;
        state[i] = 1;
        if (alias_cycle(q, q->items[i].expr, state, 0, &at, &too_deep)) {
            free(state);
            return too_deep ? sql_error_at(err, INFERD_EINVAL, at->line, at->col,
                                           "aliases chain more than %d deep at '%s'",
                                           SQL_MAX_ALIAS_CHAIN, at->name)
                            : sql_error_at(err, INFERD_EINVAL, at->line, at->col,
                                           "alias '%s' refers back to itself through the "
                                           "other aliases", at->name);
        }
        state[i] = 2;
    }
    free(state);
    if (q->where && (st = bind_expr(&b, q->where, CL_WHERE, NULL, err)))
        return st;
    for (size_t i = 0; i < q->n_group; i++)
        if ((st = bind_expr(&b, q->group[i], CL_GROUP, NULL, err)))
            return st;
    if (q->having && (st = bind_expr(&b, q->having, CL_HAVING, NULL, err)))
        return st;
    q->per_row = q->window.kind != WIN_NONE && q->n_group == 0 && !b.has_aggregate;
    q->bound = true;
    return INFERD_OK;
}

size_t sql_query_function_count(const sql_query *q) { return q ? q->n_functions : 0; }

const char *sql_query_function_name(const sql_query *q, size_t i)
{
    return q && i < q->n_functions ? q->functions[i] : NULL;
}

/* ---- sql_coerce -------------------------------------------------------------- */

/* Reads n digits at *s into *out; false when they are not all digits. */
static bool digits(const char **s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*s)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *s += n;
    *out = v;
    return true;
}

/* RFC 3339 ("2024-05-01T12:00:00.250Z", "... +02:00") to ms since the epoch. */
static bool parse_rfc3339(const char *s, int64_t *ms)
{
    int y, mo, d, h, mi, sec, frac_ms = 0;
    if (!digits(&s, 4, &y) || *s++ != '-' || !digits(&s, 2, &mo) || *s++ != '-' ||
        !digits(&s, 2, &d))
        return false;
    if (*s != 'T' && *s != 't' && *s != ' ')
        return false;
    s++;
    if (!digits(&s, 2, &h) || *s++ != ':' || !digits(&s, 2, &mi) || *s++ != ':' ||
        !digits(&s, 2, &sec))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return false;
    if (*s == '.') {
        s++;
        int n = 0;
        for (; *s >= '0' && *s <= '9'; s++, n++)
            if (n < 3)
                frac_ms = frac_ms * 10 + (*s - '0');
        if (n == 0)
            return false;
        for (; n < 3; n++)
            frac_ms *= 10;
    }
    int64_t offset_s = 0;
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        int sign = *s++ == '-' ? -1 : 1, oh, om;
        if (!digits(&s, 2, &oh) || *s++ != ':' || !digits(&s, 2, &om) || oh > 23 || om > 59)
            return false;
        offset_s = sign * (oh * 3600 + om * 60);
    } else {
        return false;
    }
    if (*s != '\0')
        return false;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    *ms = ((int64_t)t - offset_s) * 1000 + frac_ms;
    return true;
}

/* An integral double in int64's range as an int. */
static bool double_to_int(double d, int64_t *out)
{
    if (!isfinite(d) || d != floor(d) || d < -9223372036854775808.0 || d >= 9223372036854775808.0)
        return false;
    *out = (int64_t)d;
    return true;
}

inferd_status sql_coerce(const sql_column *col, inferd_value **v, inferd_error *err)
{
    inferd_value_type have = inferd_value_type_of(*v);
    if (have == INFERD_VALUE_NULL || col->type == SQL_TYPE_ANY)
        return INFERD_OK;
    bool ok = false, convert = false; /* convert: *v is replaced by repl */
    inferd_value *repl = NULL;
    int64_t i;
    switch (col->type) {
    case SQL_TYPE_BIGINT:
    case SQL_TYPE_DATETIME:
        ok = have == INFERD_VALUE_INT;
        if (have == INFERD_VALUE_DOUBLE && double_to_int(inferd_value_double_or(*v, 0), &i))
            ok = convert = true;
        else if (col->type == SQL_TYPE_DATETIME && have == INFERD_VALUE_STRING &&
                 parse_rfc3339(inferd_value_string_or(*v, ""), &i))
            ok = convert = true;
        if (convert)
            repl = inferd_value_int(i);
        break;
    case SQL_TYPE_FLOAT:
        ok = have == INFERD_VALUE_DOUBLE || have == INFERD_VALUE_INT;
        if ((convert = have == INFERD_VALUE_INT))
            repl = inferd_value_double((double)inferd_value_int_or(*v, 0));
        break;
    case SQL_TYPE_STRING: ok = have == INFERD_VALUE_STRING; break;
    case SQL_TYPE_BOOLEAN: ok = have == INFERD_VALUE_BOOL; break;
    case SQL_TYPE_ARRAY: ok = have == INFERD_VALUE_ARRAY; break;
    case SQL_TYPE_STRUCT: ok = have == INFERD_VALUE_OBJECT; break;
    case SQL_TYPE_BYTEA:
        ok = have == INFERD_VALUE_BYTES;
        if (have == INFERD_VALUE_STRING) { /* JSON carries bytes as base64 */
            const char *s = NULL;
            size_t len = 0, n = 0;
            void *data = NULL;
            inferd_value_get_string(*v, &s, &len, NULL);
            if (inferd_base64_decode(s, len, &data, &n, NULL) == INFERD_OK) {
                ok = convert = true;
                repl = inferd_value_bytes_take(data, n);
            }
        }
        break;
    case SQL_TYPE_ANY: ok = true; break;
    }
    if (!ok)
        return inferd_error_set(err, INFERD_ETYPE, "column '%s' is declared %s, got %s", col->name,
                                sql_type_name(col->type), inferd_value_type_name(have));
    if (convert) {
        if (!repl)
            return sql_oom(err);
        inferd_value_free(*v);
        *v = repl;
    }
    return INFERD_OK;
}
