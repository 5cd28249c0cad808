/* window.c: one running instance of a bound query: WHERE on each message,
 * then either one row at once (no window) or the message held (a copy) until
 * the windows that contain it close.
 *
 * Time windows are aligned to the caller's clock: window j of a HOPPING
 * window covers [j*hop, j*hop + size) and closes in sql_run_tick at its end
 * (TUMBLING is HOPPING with hop == size); a tick closes every window that
 * ended, also after one of them failed (the first error is returned, the
 * other windows' rows are appended). A SLIDING window emits, on every
 * message, the rows of (now - size, now]. COUNTWINDOW(n, m) emits the last n
 * rows every m messages (once n have come); COUNTWINDOW(n) is (n, n) and
 * starts afresh after each emission. A held message is freed once no window
 * still to close contains it.
 *
 * An emission partitions its rows into groups by the GROUP BY values
 * (computed when the message arrives, in first-seen order) and gives one row
 * per group that passes HAVING, or, when the query has neither aggregates nor
 * GROUP BY expressions, one row per message (as eKuiper does). Rows are
 * built aside and appended only when the whole emission succeeded. */
#include <stdlib.h>
#include <string.h>

#include "sql/ast.h"

typedef struct held {
    inferd_value *msg; /* owned copy */
    int64_t ts;
    inferd_value *key; /* owned: array of the GROUP BY values, NULL without them */
} held;

struct sql_run {
    const sql_query *q; /* borrowed */
    inferd_value *null; /* owned: the NULL that results point to */
    held *h;            /* owned: h[head .. head + len) in arrival order */
    size_t head, len, cap;
    int64_t min_ts; /* the earliest held ts (when len > 0) */
    bool started;   /* time windows: next_j is set */
    int64_t next_j; /* time windows: the first window not closed yet */
    uint64_t seen;  /* count windows: messages so far */
};

/* ---- small arithmetic that cannot overflow --------------------------------- */

static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

static int64_t sat_mul(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r))
        return (a < 0) != (b < 0) ? INT64_MIN : INT64_MAX;
    return r;
}

static int64_t floor_div(int64_t a, int64_t b) /* b > 0 */
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

/* ---- held messages ------------------------------------------------------------ */

static held *at(const sql_run *r, size_t i) { return &r->h[r->head + i]; }

static void held_free(held *h)
{
    inferd_value_free(h->msg);
    inferd_value_free(h->key);
}

static bool held_append(sql_run *r, held h)
{
    if (r->head + r->len == r->cap) {
        if (r->head > 0) {
            memmove(r->h, r->h + r->head, r->len * sizeof *r->h);
            r->head = 0;
        } else {
            size_t cap = r->cap ? r->cap * 2 : 16;
            held *n = realloc(r->h, cap * sizeof *n);
            if (!n)
                return false;
            r->h = n;
            r->cap = cap;
        }
    }
    if (r->len == 0 || h.ts < r->min_ts)
        r->min_ts = h.ts;
    r->h[r->head + r->len++] = h;
    return true;
}

static void drop_front(sql_run *r, size_t k)
{
    for (size_t i = 0; i < k; i++)
        held_free(at(r, i));
    r->head += k;
    r->len -= k;
    if (r->len == 0)
        r->head = 0;
    for (size_t i = 0; i < r->len; i++)
        if (i == 0 || at(r, i)->ts < r->min_ts)
            r->min_ts = at(r, i)->ts;
}

/* Frees every held message with ts < limit, keeping the others in order. */
static void drop_before(sql_run *r, int64_t limit)
{
    size_t w = 0;
    for (size_t i = 0; i < r->len; i++) {
        held *h = at(r, i);
        if (h->ts < limit) {
            held_free(h);
            continue;
        }
        if (w == 0 || h->ts < r->min_ts)
            r->min_ts = h->ts;
        *at(r, w++) = *h;
    }
    r->len = w;
    if (r->len == 0)
        r->head = 0;
}

/* ---- emission ------------------------------------------------------------------ */

/* Output rows built aside (owned) until the emission is complete. */
typedef struct rowvec {
    inferd_value **v;
    size_t n, cap;
} rowvec;

static inferd_status rowvec_add(rowvec *rv, inferd_value *row, inferd_error *err)
{
    if (rv->n == rv->cap) {
        size_t cap = rv->cap ? rv->cap * 2 : 8;
        inferd_value **v = realloc(rv->v, cap * sizeof *v);
        if (!v) {
            inferd_value_free(row);
            return sql_oom(err);
        }
        rv->v = v;
        rv->cap = cap;
    }
    rv->v[rv->n++] = row;
    return INFERD_OK;
}

static void rowvec_free(rowvec *rv)
{
    for (size_t i = 0; i < rv->n; i++)
        inferd_value_free(rv->v[i]);
    free(rv->v);
}

/* Moves the rows into the caller's array. */
static inferd_status rowvec_flush(rowvec *rv, inferd_value *rows, inferd_error *err)
{
    inferd_status st = INFERD_OK;
    for (size_t i = 0; i < rv->n; i++) {
        if (st == INFERD_OK)
            st = inferd_value_array_push(rows, rv->v[i], err);
        else
            inferd_value_free(rv->v[i]);
    }
    free(rv->v);
    *rv = (rowvec){0};
    return st;
}

/* One output row for ctx (a group, or one message), unless HAVING drops it. */
static inferd_status emit_one(eval_ctx *c, rowvec *rv, inferd_error *err)
{
    bool pass = true;
    inferd_value *row = NULL;
    inferd_status st;
    if (c->q->having && ((st = sql_eval_cond(c, c->q->having, "HAVING", &pass, err)) || !pass))
        return st;
    if ((st = sql_eval_select(c, &row, err)))
        return st;
    return rowvec_add(rv, row, err);
}

/* Emits the held messages idx[0..n) as one window. */
static inferd_status emit(sql_run *r, const size_t *idx, size_t n, int64_t start, int64_t end,
                          inferd_value *rows, inferd_error *err)
{
    if (n == 0)
        return INFERD_OK; /* an empty window emits nothing */
    const sql_query *q = r->q;
    const inferd_value **msgs = malloc(n * sizeof *msgs);
    size_t *group_of = malloc(n * sizeof *group_of); /* a row's group, by its first row */
    if (!msgs || !group_of) {
        free(msgs);
        free(group_of);
        return sql_oom(err);
    }
    eval_ctx c = {.q = q, .null = r->null, .win_start = start, .win_end = end};
    rowvec rv = {0};
    inferd_status st = INFERD_OK;
    if (q->per_row) {
        for (size_t i = 0; i < n && !st; i++) {
            c.row = at(r, idx[i])->msg;
            c.msg_ts = at(r, idx[i])->ts;
            c.rows = &c.row;
            c.n_rows = 1;
            st = emit_one(&c, &rv, err);
        }
    } else {
        /* group i's rows are those with group_of == i, i being its first row */
        for (size_t i = 0; i < n; i++) {
            group_of[i] = q->n_group ? i : 0; /* no GROUP BY values: one group */
            for (size_t g = 0; g < i && q->n_group; g++)
                if (group_of[g] == g &&
                    inferd_value_equal(at(r, idx[g])->key, at(r, idx[i])->key)) {
                    group_of[i] = g;
                    break;
                }
        }
        for (size_t g = 0; g < n && !st; g++) {
            if (group_of[g] != g)
                continue;
            size_t k = 0;
            for (size_t i = g; i < n; i++)
                if (group_of[i] == g) {
                    msgs[k++] = at(r, idx[i])->msg;
                    c.msg_ts = at(r, idx[i])->ts; /* the group's last row's */
                }
            c.row = msgs[k - 1];
            c.rows = msgs;
            c.n_rows = k;
            st = emit_one(&c, &rv, err);
        }
    }
    free(msgs);
    free(group_of);
    if (st) {
        rowvec_free(&rv);
        return st;
    }
    return rowvec_flush(&rv, rows, err);
}

/* Emits held[from .. len) as one window. */
static inferd_status emit_range(sql_run *r, size_t from, int64_t start, int64_t end,
                                inferd_value *rows, inferd_error *err)
{
    size_t n = r->len - from;
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    if (!idx)
        return sql_oom(err);
    for (size_t i = 0; i < n; i++)
        idx[i] = from + i;
    inferd_status st = emit(r, idx, n, start, end, rows, err);
    free(idx);
    return st;
}

/* ---- the run --------------------------------------------------------------------- */

inferd_status sql_run_new(const sql_query *q, sql_run **out, inferd_error *err)
{
    *out = NULL;
    if (!q || !q->bound)
        return inferd_error_set(err, INFERD_ESTATE, "the query must be bound before it runs");
    sql_run *r = calloc(1, sizeof *r);
    if (!r || !(r->null = inferd_value_null())) {
        free(r);
        return sql_oom(err);
    }
    r->q = q;
    *out = r;
    return INFERD_OK;
}

void sql_run_free(sql_run *r)
{
    if (!r)
        return;
    drop_front(r, r->len);
    free(r->h);
    inferd_value_free(r->null);
    free(r);
}

size_t sql_run_held(const sql_run *r) { return r ? r->len : 0; }

/* The GROUP BY values of msg, as an array (NULL when there are none). */
static inferd_status group_key(sql_run *r, const inferd_value *msg, inferd_value **key,
                               inferd_error *err)
{
    *key = NULL;
    if (r->q->n_group == 0)
        return INFERD_OK;
    inferd_value *k = inferd_value_array();
    if (!k)
        return sql_oom(err);
    eval_ctx c = {.q = r->q, .row = msg, .null = r->null};
    for (size_t i = 0; i < r->q->n_group; i++) {
        ev x = {0};
        inferd_status st = sql_eval(&c, r->q->group[i], &x, err);
        if (st) {
            inferd_value_free(k);
            return sql_error_in(r->q, "GROUP BY", r->q->group[i], err);
        }
        if ((st = inferd_value_array_push(k, ev_take(&x), err))) {
            inferd_value_free(k);
            return st;
        }
    }
    *key = k;
    return INFERD_OK;
}

/* The first time window that has not closed and may hold a message at ts. */
static int64_t window_for(const sql_run *r, int64_t ts)
{
    const window_spec *w = &r->q->window;
    int64_t j = sat_add(floor_div(sat_add(ts, -w->size_ms), w->hop_ms), 1);
    return r->started && r->next_j > j ? r->next_j : j;
}

int64_t sql_run_next_deadline(const sql_run *r)
{
    if (!r || r->len == 0)
        return -1;
    const window_spec *w = &r->q->window;
    if (w->kind != WIN_TUMBLING && w->kind != WIN_HOPPING)
        return -1;
    return sat_add(sat_mul(window_for(r, r->min_ts), w->hop_ms), w->size_ms);
}

inferd_status sql_run_tick(sql_run *r, int64_t now_ms, inferd_value *rows, inferd_error *err)
{
    if (!r || !inferd_value_is(rows, INFERD_VALUE_ARRAY))
        return inferd_error_set(err, INFERD_EINVAL, "sql_run_tick needs a run and a rows array");
    const window_spec *w = &r->q->window;
    if (w->kind == WIN_SLIDING) { /* nothing closes; rows too old for any window go */
        drop_before(r, sat_add(sat_add(now_ms, -w->size_ms), 1));
        return INFERD_OK;
    }
    if (w->kind != WIN_TUMBLING && w->kind != WIN_HOPPING)
        return INFERD_OK;
    /* Every window that ended closes, also after one fails (its rows are
     * lost, the others are appended): the run is then up to date. */
    size_t *idx = NULL, failed = 0;
    inferd_error first = {0}, one = {0};
    inferd_status st = INFERD_OK;
    while (r->len > 0) {
        int64_t j = window_for(r, r->min_ts);
        int64_t start = sat_mul(j, w->hop_ms), end = sat_add(start, w->size_ms);
        if (end > now_ms)
            break;
        size_t *grown = realloc(idx, r->len * sizeof *idx);
        if (!grown) {
            free(idx);
            return sql_oom(err);
        }
        idx = grown;
        size_t n = 0;
        for (size_t i = 0; i < r->len; i++)
            if (at(r, i)->ts >= start && at(r, i)->ts < end)
                idx[n++] = i;
        if (emit(r, idx, n, start, end, rows, &one) != INFERD_OK && failed++ == 0)
            first = one;
        r->started = true;
        r->next_j = sat_add(j, 1);
        drop_before(r, sat_mul(r->next_j, w->hop_ms));
        if (end == INT64_MAX) /* the clock's end: no later window can close */
            drop_front(r, r->len);
    }
    free(idx);
    if (failed == 0)
        return INFERD_OK;
    st = first.code;
    if (failed > 1)
        return inferd_error_set(err, st, "%s (and %zu more windows failed)", first.message,
                                failed - 1);
    return inferd_error_set(err, st, "%s", first.message);
}

inferd_status sql_run_push(sql_run *r, const inferd_value *msg, int64_t now_ms, inferd_value *rows,
                           inferd_error *err)
{
    if (!r || !msg || !inferd_value_is(rows, INFERD_VALUE_ARRAY))
        return inferd_error_set(err, INFERD_EINVAL,
                                "sql_run_push needs a run, a message and a rows array");
    const sql_query *q = r->q;
    eval_ctx c = {.q = q, .row = msg, .null = r->null, .msg_ts = now_ms};
    bool pass = true;
    inferd_status st;
    if (q->where && ((st = sql_eval_cond(&c, q->where, "WHERE", &pass, err)) || !pass))
        return st;
    if (q->window.kind == WIN_NONE) {
        inferd_value *row = NULL;
        if ((st = sql_eval_select(&c, &row, err)))
            return st;
        return inferd_value_array_push(rows, row, err);
    }
    held h = {.ts = now_ms};
    if ((st = group_key(r, msg, &h.key, err)))
        return st;
    if (!(h.msg = inferd_value_copy(msg)) || !held_append(r, h)) {
        held_free(&h);
        return sql_oom(err);
    }
    const window_spec *w = &q->window;
    if (w->kind == WIN_SLIDING) {
        drop_before(r, sat_add(sat_add(now_ms, -w->size_ms), 1));
        return emit_range(r, 0, sat_add(now_ms, -w->size_ms), now_ms, rows, err);
    }
    if (w->kind != WIN_COUNT)
        return INFERD_OK;
    r->seen++;
    if (r->len > (size_t)w->count) /* only the last n can be emitted again */
        drop_front(r, r->len - (size_t)w->count);
    if (r->seen % (uint64_t)w->every != 0 || r->len < (size_t)w->count)
        return INFERD_OK;
    st = emit_range(r, 0, at(r, 0)->ts, at(r, r->len - 1)->ts, rows, err);
    if (w->every == w->count)
        drop_front(r, r->len); /* a tumbling count window starts afresh */
    return st;
}
