/* parser.c: recursive descent over the lexer's tokens for CREATE STREAM and
 * SELECT, with precedence climbing for binary operators.
 *
 * Precedence, lowest first: OR; AND; NOT; comparisons, [NOT] IN, [NOT]
 * LIKE, IS [NOT] NULL, [NOT] BETWEEN; + -; * / %; unary -; postfix ->name
 * and [index]. Binary operators associate to the left. Every error starts
 * with the position of the token it is about. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sql/ast.h"

enum { PREC_OR = 1, PREC_AND, PREC_NOT, PREC_CMP, PREC_ADD, PREC_MUL };

typedef struct parser {
    const char *src;
    token *toks; /* owned by the caller of the parse */
    size_t n, pos;
    int nesting; /* recursion depth of parse_expr, bounded */
} parser;

/* Words that cannot be bare column names or aliases (backquote them). */
static const char *const reserved[] = {"SELECT", "FROM", "WHERE", "GROUP",   "BY",     "HAVING",
                                       "AS",     "AND",  "OR",    "NOT",     "IN",     "LIKE",
                                       "IS",     "NULL", "TRUE",  "FALSE",   "CASE",   "WHEN",
                                       "THEN",   "ELSE", "END",   "BETWEEN", "ESCAPE", NULL};

static const token *cur(const parser *p) { return &p->toks[p->pos]; }
static const token *ahead(const parser *p, size_t k)
{
    size_t i = p->pos + k;
    return &p->toks[i < p->n ? i : p->n - 1];
}
static void next(parser *p)
{
    if (p->pos + 1 < p->n)
        p->pos++;
}

static bool tok_is_kw(const token *t, const char *kw)
{
    return t->kind == T_IDENT && strcasecmp(t->text, kw) == 0;
}
static bool is_kw(const parser *p, const char *kw) { return tok_is_kw(cur(p), kw); }

static bool is_reserved(const token *t)
{
    for (size_t i = 0; reserved[i]; i++)
        if (tok_is_kw(t, reserved[i]))
            return true;
    return false;
}

/* "'FORM'" or "end of input", for "expected X, found Y". */
static const char *found(const parser *p, const token *t, char *buf, size_t size)
{
    if (t->kind == T_EOF)
        return "end of input";
    int len = t->len > 40 ? 40 : (int)t->len;
    snprintf(buf, size, "'%.*s%s'", len, p->src + t->start, t->len > 40 ? "..." : "");
    return buf;
}

static inferd_status expected(parser *p, const char *what, inferd_error *err)
{
    char buf[64];
    const token *t = cur(p);
    return sql_error_at(err, INFERD_EINVAL, t->line, t->col, "expected %s, found %s", what,
                        found(p, t, buf, sizeof buf));
}

static inferd_status expect_kw(parser *p, const char *kw, inferd_error *err)
{
    if (!is_kw(p, kw))
        return expected(p, kw, err);
    next(p);
    return INFERD_OK;
}

static inferd_status expect(parser *p, tok_kind k, const char *what, inferd_error *err)
{
    if (cur(p)->kind != k)
        return expected(p, what, err);
    next(p);
    return INFERD_OK;
}

/* A name: a bare non-reserved identifier or a backquoted one; *out owned. */
static inferd_status parse_name(parser *p, const char *what, char **out, inferd_error *err)
{
    const token *t = cur(p);
    if (t->kind != T_QIDENT && (t->kind != T_IDENT || is_reserved(t)))
        return expected(p, what, err);
    if (!(*out = strdup(t->text)))
        return sql_oom(err);
    next(p);
    return INFERD_OK;
}

/* ---- expressions --------------------------------------------------------- */

void sql_expr_free(sql_expr *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n_kids; i++)
        sql_expr_free(e->kids[i]);
    free(e->kids);
    free(e->name);
    inferd_value_free(e->lit);
    free(e);
}

static sql_expr *new_expr(expr_kind kind, const token *at)
{
    sql_expr *e = calloc(1, sizeof *e);
    if (e) {
        e->kind = kind;
        e->line = at->line;
        e->col = at->col;
        e->start = at->start;
        e->end = at->start + at->len;
        e->depth = 1;
    }
    return e;
}

/* Appends kid (taking it, also on failure) and bounds the tree's height. */
static inferd_status add_kid(parser *p, sql_expr *e, sql_expr *kid, inferd_error *err)
{
    sql_expr **k = realloc(e->kids, (e->n_kids + 1) * sizeof *k);
    if (!k) {
        sql_expr_free(kid);
        return sql_oom(err);
    }
    e->kids = k;
    e->kids[e->n_kids++] = kid;
    if (kid->start < e->start)
        e->start = kid->start;
    if (kid->end > e->end)
        e->end = kid->end;
    if (kid->depth + 1 > e->depth)
        e->depth = kid->depth + 1;
    if (e->depth > SQL_MAX_DEPTH)
        return sql_error_at(err, INFERD_EINVAL, e->line, e->col,
                            "expression nested too deeply (more than %d levels)", SQL_MAX_DEPTH);
    return INFERD_OK;
}

/* The node ends where the last consumed token ends. */
static void close_at_prev(parser *p, sql_expr *e)
{
    if (p->pos > 0) {
        const token *t = &p->toks[p->pos - 1];
        if (t->start + t->len > e->end)
            e->end = t->start + t->len;
    }
}

static inferd_status parse_expr(parser *p, int min_prec, sql_expr **out, inferd_error *err);

static inferd_status parse_case(parser *p, sql_expr **out, inferd_error *err)
{
    sql_expr *e = new_expr(EX_CASE, cur(p));
    if (!e)
        return sql_oom(err);
    next(p); /* CASE */
    inferd_status st = INFERD_OK;
    sql_expr *kid = NULL;
    if (!is_kw(p, "WHEN")) {
        e->has_operand = true;
        if ((st = parse_expr(p, PREC_OR, &kid, err)) || (st = add_kid(p, e, kid, err)))
            goto fail;
    }
    if (!is_kw(p, "WHEN")) {
        st = expected(p, "WHEN", err);
        goto fail;
    }
    while (is_kw(p, "WHEN")) {
        next(p);
        if ((st = parse_expr(p, PREC_OR, &kid, err)) || (st = add_kid(p, e, kid, err)) ||
            (st = expect_kw(p, "THEN", err)) || (st = parse_expr(p, PREC_OR, &kid, err)) ||
            (st = add_kid(p, e, kid, err)))
            goto fail;
    }
    if (is_kw(p, "ELSE")) {
        next(p);
        e->has_else = true;
        if ((st = parse_expr(p, PREC_OR, &kid, err)) || (st = add_kid(p, e, kid, err)))
            goto fail;
    }
    if ((st = expect_kw(p, "END", err)))
        goto fail;
    close_at_prev(p, e);
    *out = e;
    return INFERD_OK;
fail:
    sql_expr_free(e);
    return st;
}

/* name( [* | expr, ...] ); the cursor is on the name. */
static inferd_status parse_call(parser *p, sql_expr **out, inferd_error *err)
{
    sql_expr *e = new_expr(EX_CALL, cur(p));
    if (!e || !(e->name = strdup(cur(p)->text))) {
        free(e);
        return sql_oom(err);
    }
    next(p); /* name */
    next(p); /* ( */
    inferd_status st = INFERD_OK;
    if (cur(p)->kind == T_STAR && ahead(p, 1)->kind == T_RPAREN) {
        sql_expr *star = new_expr(EX_STAR, cur(p));
        if (!star) {
            st = sql_oom(err);
            goto fail;
        }
        next(p);
        if ((st = add_kid(p, e, star, err)))
            goto fail;
    } else if (cur(p)->kind != T_RPAREN) {
        for (;;) {
            sql_expr *arg = NULL;
            if ((st = parse_expr(p, PREC_OR, &arg, err)) || (st = add_kid(p, e, arg, err)))
                goto fail;
            if (cur(p)->kind != T_COMMA)
                break;
            next(p);
        }
    }
    if ((st = expect(p, T_RPAREN, "')'", err)))
        goto fail;
    close_at_prev(p, e);
    *out = e;
    return INFERD_OK;
fail:
    sql_expr_free(e);
    return st;
}

static inferd_status parse_primary(parser *p, sql_expr **out, inferd_error *err)
{
    const token *t = cur(p);
    sql_expr *e = NULL;
    switch (t->kind) {
    case T_INT:
    case T_DOUBLE:
    case T_STRING:
        if (!(e = new_expr(EX_LIT, t)))
            return sql_oom(err);
        e->lit = t->kind == T_INT      ? inferd_value_int(t->i)
                 : t->kind == T_DOUBLE ? inferd_value_double(t->d)
                                       : inferd_value_string_n(t->text, t->text_len);
        break;
    case T_QIDENT:
        if (!(e = new_expr(EX_COL, t)))
            return sql_oom(err);
        e->name = strdup(t->text);
        break;
    case T_LPAREN: {
        next(p);
        inferd_status st = parse_expr(p, PREC_OR, &e, err);
        if (st == INFERD_OK && (st = expect(p, T_RPAREN, "')'", err)))
            sql_expr_free(e);
        if (st == INFERD_OK)
            *out = e;
        return st;
    }
    case T_IDENT:
        if (tok_is_kw(t, "CASE"))
            return parse_case(p, out, err);
        if (tok_is_kw(t, "TRUE") || tok_is_kw(t, "FALSE") || tok_is_kw(t, "NULL")) {
            if (!(e = new_expr(EX_LIT, t)))
                return sql_oom(err);
            e->lit = tok_is_kw(t, "NULL") ? inferd_value_null()
                                          : inferd_value_bool(tok_is_kw(t, "TRUE"));
            break;
        }
        if (is_reserved(t))
            return expected(p, "an expression", err);
        if (ahead(p, 1)->kind == T_LPAREN)
            return parse_call(p, out, err);
        if (tok_is_kw(t, "self")) {
            if (!(e = new_expr(EX_SELF, t)))
                return sql_oom(err);
            break;
        }
        if (!(e = new_expr(EX_COL, t)))
            return sql_oom(err);
        e->name = strdup(t->text);
        break;
    default: return expected(p, "an expression", err);
    }
    if ((e->kind == EX_LIT && !e->lit) || (e->kind == EX_COL && !e->name)) {
        sql_expr_free(e);
        return sql_oom(err);
    }
    next(p);
    *out = e;
    return INFERD_OK;
}

/* primary { ->name | [expr] } */
static inferd_status parse_postfix(parser *p, sql_expr **out, inferd_error *err)
{
    sql_expr *e = NULL;
    inferd_status st = parse_primary(p, &e, err);
    while (st == INFERD_OK) {
        const token *t = cur(p);
        if (t->kind == T_ARROW) {
            next(p);
            const token *f = cur(p);
            if (f->kind != T_IDENT && f->kind != T_QIDENT) {
                st = expected(p, "a field name after '->'", err);
                break;
            }
            sql_expr *fe = new_expr(EX_FIELD, t);
            if (!fe || !(fe->name = strdup(f->text))) {
                free(fe);
                st = sql_oom(err);
                break;
            }
            next(p);
            st = add_kid(p, fe, e, err);
            e = fe;
            close_at_prev(p, e);
        } else if (t->kind == T_LBRACKET) {
            next(p);
            sql_expr *ie = new_expr(EX_INDEX, t), *idx = NULL;
            if (!ie) {
                st = sql_oom(err);
                break;
            }
            st = add_kid(p, ie, e, err);
            e = ie;
            if (st || (st = parse_expr(p, PREC_OR, &idx, err)) || (st = add_kid(p, e, idx, err)) ||
                (st = expect(p, T_RBRACKET, "']'", err)))
                break;
            close_at_prev(p, e);
        } else {
            *out = e;
            return INFERD_OK;
        }
    }
    sql_expr_free(e);
    return st;
}

static inferd_status parse_unary(parser *p, sql_expr **out, inferd_error *err)
{
    if (cur(p)->kind != T_MINUS)
        return parse_postfix(p, out, err);
    const token *minus = cur(p);
    next(p);
    if (++p->nesting > SQL_MAX_DEPTH) {
        p->nesting--;
        return sql_error_at(err, INFERD_EINVAL, minus->line, minus->col,
                            "expression nested too deeply (more than %d levels)", SQL_MAX_DEPTH);
    }
    sql_expr *operand = NULL;
    inferd_status st = parse_unary(p, &operand, err);
    p->nesting--;
    if (st)
        return st;
    /* -5 is a literal (so that it counts as one for validation) */
    if (operand->kind == EX_LIT && inferd_value_is(operand->lit, INFERD_VALUE_INT) &&
        operand->n_kids == 0) {
        inferd_value *neg = inferd_value_int(-inferd_value_int_or(operand->lit, 0));
        if (!neg) {
            sql_expr_free(operand);
            return sql_oom(err);
        }
        inferd_value_free(operand->lit);
        operand->lit = neg;
        operand->start = minus->start;
        operand->line = minus->line;
        operand->col = minus->col;
        *out = operand;
        return INFERD_OK;
    }
    if (operand->kind == EX_LIT && inferd_value_is(operand->lit, INFERD_VALUE_DOUBLE)) {
        inferd_value *neg = inferd_value_double(-inferd_value_double_or(operand->lit, 0));
        if (!neg) {
            sql_expr_free(operand);
            return sql_oom(err);
        }
        inferd_value_free(operand->lit);
        operand->lit = neg;
        operand->start = minus->start;
        operand->line = minus->line;
        operand->col = minus->col;
        *out = operand;
        return INFERD_OK;
    }
    sql_expr *e = new_expr(EX_NEG, minus);
    if (!e) {
        sql_expr_free(operand);
        return sql_oom(err);
    }
    if ((st = add_kid(p, e, operand, err))) {
        sql_expr_free(e);
        return st;
    }
    *out = e;
    return INFERD_OK;
}

/* Binary operators: symbols, then words (NOT counts when IN, LIKE or
 * BETWEEN follows it). */
static const struct {
    tok_kind tok;
    expr_kind kind;
    sql_op op;
    int prec;
} symbol_ops[] = {
    {T_PLUS, EX_ARITH, OP_ADD, PREC_ADD}, {T_MINUS, EX_ARITH, OP_SUB, PREC_ADD},
    {T_STAR, EX_ARITH, OP_MUL, PREC_MUL}, {T_SLASH, EX_ARITH, OP_DIV, PREC_MUL},
    {T_PERCENT, EX_ARITH, OP_MOD, PREC_MUL}, {T_EQ, EX_CMP, OP_EQ, PREC_CMP},
    {T_EQEQ, EX_CMP, OP_EQ, PREC_CMP}, {T_NE, EX_CMP, OP_NE, PREC_CMP},
    {T_LT, EX_CMP, OP_LT, PREC_CMP}, {T_LE, EX_CMP, OP_LE, PREC_CMP},
    {T_GT, EX_CMP, OP_GT, PREC_CMP}, {T_GE, EX_CMP, OP_GE, PREC_CMP},
};

static const struct {
    const char *word;
    expr_kind kind;
    int prec;
} word_ops[] = {
    {"OR", EX_OR, PREC_OR},           {"AND", EX_AND, PREC_AND},   {"IN", EX_IN, PREC_CMP},
    {"LIKE", EX_LIKE, PREC_CMP},      {"BETWEEN", EX_BETWEEN, PREC_CMP},
    {"IS", EX_ISNULL, PREC_CMP},      {"NOT", EX_NOT, PREC_CMP},
};

/* The binary operator at the cursor: its precedence (0 when there is none),
 * node kind and op. */
static int peek_binary(const parser *p, expr_kind *kind, sql_op *op)
{
    const token *t = cur(p);
    *op = OP_NONE;
    for (size_t i = 0; i < sizeof symbol_ops / sizeof symbol_ops[0]; i++)
        if (t->kind == symbol_ops[i].tok) {
            *kind = symbol_ops[i].kind;
            *op = symbol_ops[i].op;
            return symbol_ops[i].prec;
        }
    for (size_t i = 0; i < sizeof word_ops / sizeof word_ops[0]; i++)
        if (tok_is_kw(t, word_ops[i].word)) {
            *kind = word_ops[i].kind;
            return word_ops[i].prec;
        }
    return 0;
}

/* The right-hand side of IN, LIKE, IS, BETWEEN (the operator consumed). */
static inferd_status parse_special(parser *p, sql_expr *e, inferd_error *err)
{
    inferd_status st;
    sql_expr *kid = NULL;
    switch (e->kind) {
    case EX_IN:
        if ((st = expect(p, T_LPAREN, "'(' after IN", err)))
            return st;
        for (;;) {
            if ((st = parse_expr(p, PREC_OR, &kid, err)) || (st = add_kid(p, e, kid, err)))
                return st;
            if (cur(p)->kind != T_COMMA)
                break;
            next(p);
        }
        return expect(p, T_RPAREN, "')'", err);
    case EX_LIKE:
        if ((st = parse_expr(p, PREC_ADD, &kid, err)) || (st = add_kid(p, e, kid, err)))
            return st;
        if (is_kw(p, "ESCAPE")) {
            next(p);
            if ((st = parse_expr(p, PREC_ADD, &kid, err)) || (st = add_kid(p, e, kid, err)))
                return st;
        }
        return INFERD_OK;
    case EX_BETWEEN:
        if ((st = parse_expr(p, PREC_ADD, &kid, err)) || (st = add_kid(p, e, kid, err)) ||
            (st = expect_kw(p, "AND", err)) || (st = parse_expr(p, PREC_ADD, &kid, err)))
            return st;
        return add_kid(p, e, kid, err);
    case EX_ISNULL:
        if (is_kw(p, "NOT")) {
            e->negated = true;
            next(p);
        }
        return expect_kw(p, "NULL", err);
    default: return sql_error_at(err, INFERD_EINTERNAL, e->line, e->col, "unexpected operator");
    }
}

static inferd_status parse_expr(parser *p, int min_prec, sql_expr **out, inferd_error *err)
{
    if (++p->nesting > SQL_MAX_DEPTH) {
        p->nesting--;
        return sql_error_at(err, INFERD_EINVAL, cur(p)->line, cur(p)->col,
                            "expression nested too deeply (more than %d levels)", SQL_MAX_DEPTH);
    }
    sql_expr *lhs = NULL;
    inferd_status st;
    if (min_prec <= PREC_NOT && is_kw(p, "NOT")) {
        sql_expr *operand = NULL;
        if (!(lhs = new_expr(EX_NOT, cur(p)))) {
            st = sql_oom(err);
            goto done;
        }
        next(p);
        if ((st = parse_expr(p, PREC_NOT, &operand, err)) || (st = add_kid(p, lhs, operand, err)))
            goto done;
    } else if ((st = parse_unary(p, &lhs, err))) {
        goto done;
    }
    for (;;) {
        expr_kind kind;
        sql_op op;
        int prec = peek_binary(p, &kind, &op);
        if (prec == 0 || prec < min_prec)
            break;
        const token *at = cur(p);
        bool negated = false;
        next(p);
        if (kind == EX_NOT) { /* infix NOT: only before IN, LIKE, BETWEEN */
            if (is_kw(p, "IN"))
                kind = EX_IN;
            else if (is_kw(p, "LIKE"))
                kind = EX_LIKE;
            else if (is_kw(p, "BETWEEN"))
                kind = EX_BETWEEN;
            else {
                st = expected(p, "IN, LIKE or BETWEEN after NOT", err);
                goto done;
            }
            negated = true;
            next(p);
        }
        sql_expr *e = new_expr(kind, at);
        if (!e) {
            st = sql_oom(err);
            goto done;
        }
        e->op = op;
        e->negated = negated;
        /* the node reads as its left operand's position: errors point at
         * the expression's start */
        if ((st = add_kid(p, e, lhs, err))) {
            lhs = e;
            goto done;
        }
        lhs = e;
        e->line = e->kids[0]->line;
        e->col = e->kids[0]->col;
        if (kind == EX_IN || kind == EX_LIKE || kind == EX_BETWEEN || kind == EX_ISNULL) {
            st = parse_special(p, e, err);
        } else {
            sql_expr *rhs = NULL;
            if ((st = parse_expr(p, prec + 1, &rhs, err)) == INFERD_OK)
                st = add_kid(p, e, rhs, err);
        }
        if (st)
            goto done;
        close_at_prev(p, e);
    }
    st = INFERD_OK;
done:
    p->nesting--;
    if (st) {
        sql_expr_free(lhs);
        return st;
    }
    *out = lhs;
    return INFERD_OK;
}

/* ---- SELECT ---------------------------------------------------------------- */

static void query_free_items(sql_query *q)
{
    for (size_t i = 0; i < q->n_items; i++) {
        sql_expr_free(q->items[i].expr);
        free(q->items[i].alias);
        free(q->items[i].name);
    }
    free(q->items);
}

void sql_query_free(sql_query *q)
{
    if (!q)
        return;
    query_free_items(q);
    sql_expr_free(q->where);
    sql_expr_free(q->having);
    for (size_t i = 0; i < q->n_group; i++)
        sql_expr_free(q->group[i]);
    free(q->group);
    for (size_t i = 0; i < q->n_functions; i++)
        free(q->functions[i]);
    free(q->functions);
    free(q->stream);
    free(q->text);
    free(q);
}

const char *sql_query_stream(const sql_query *q) { return q ? q->stream : NULL; }
bool sql_query_has_window(const sql_query *q) { return q && q->window.kind != WIN_NONE; }

void sql_query_omit_nil(sql_query *q, bool omit)
{
    if (q)
        q->omit_nil = omit;
}

static inferd_status parse_select_item(parser *p, sql_query *q, inferd_error *err)
{
    select_item *items = realloc(q->items, (q->n_items + 1) * sizeof *items);
    if (!items)
        return sql_oom(err);
    q->items = items;
    select_item *it = &q->items[q->n_items++];
    *it = (select_item){.line = cur(p)->line, .col = cur(p)->col};
    if (cur(p)->kind == T_STAR) {
        next(p);
        return INFERD_OK;
    }
    inferd_status st = parse_expr(p, PREC_OR, &it->expr, err);
    if (st == INFERD_OK && is_kw(p, "AS")) {
        next(p);
        st = parse_name(p, "an alias after AS", &it->alias, err);
    }
    return st;
}

typedef struct unit_def {
    const char *name;
    int64_t ms;
} unit_def;

static const unit_def units[] = {
    {"ms", 1}, {"ss", 1000}, {"mi", 60000}, {"mm", 60000}, {"hh", 3600000}, {"dd", 86400000},
};

/* A positive integer argument of a window, scaled by unit_ms. */
static inferd_status window_int(parser *p, const char *what, int64_t unit_ms, int64_t *out,
                                inferd_error *err)
{
    const token *t = cur(p);
    if (t->kind != T_INT || t->i <= 0) {
        char buf[64];
        return sql_error_at(err, INFERD_EINVAL, t->line, t->col,
                            "%s must be a positive integer, found %s", what,
                            found(p, t, buf, sizeof buf));
    }
    if (t->i > INT64_MAX / unit_ms)
        return sql_error_at(err, INFERD_ERANGE, t->line, t->col, "%s is too large", what);
    *out = t->i * unit_ms;
    next(p);
    return INFERD_OK;
}

/* TUMBLINGWINDOW(unit, size) | HOPPINGWINDOW(unit, size, hop) |
 * SLIDINGWINDOW(unit, size) | COUNTWINDOW(n [, every]); cursor on the name. */
static inferd_status parse_window(parser *p, sql_query *q, inferd_error *err)
{
    const token *name = cur(p);
    window_spec *w = &q->window;
    if (w->kind != WIN_NONE)
        return sql_error_at(err, INFERD_EINVAL, name->line, name->col,
                            "only one window is allowed in GROUP BY");
    w->line = name->line;
    w->col = name->col;
    w->kind = tok_is_kw(name, "TUMBLINGWINDOW")  ? WIN_TUMBLING
              : tok_is_kw(name, "HOPPINGWINDOW") ? WIN_HOPPING
              : tok_is_kw(name, "SLIDINGWINDOW") ? WIN_SLIDING
                                                 : WIN_COUNT;
    next(p);
    next(p); /* ( */
    inferd_status st;
    if (w->kind == WIN_COUNT) {
        if ((st = window_int(p, "the count of COUNTWINDOW", 1, &w->count, err)))
            return st;
        w->every = w->count;
        if (cur(p)->kind == T_COMMA) {
            next(p);
            const token *at = cur(p);
            if ((st = window_int(p, "the interval of COUNTWINDOW", 1, &w->every, err)))
                return st;
            if (w->every > w->count)
                return sql_error_at(err, INFERD_EINVAL, at->line, at->col,
                                    "the interval of COUNTWINDOW (%lld) must not be larger than "
                                    "its count (%lld)",
                                    (long long)w->every, (long long)w->count);
        }
        return expect(p, T_RPAREN, "')'", err);
    }
    const token *u = cur(p);
    int64_t unit_ms = 0;
    if (u->kind == T_IDENT)
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
            if (strcasecmp(u->text, units[i].name) == 0)
                unit_ms = units[i].ms;
    if (!unit_ms) {
        char buf[64];
        return sql_error_at(err, INFERD_EINVAL, u->line, u->col,
                            "expected a time unit (ms, ss, mi, hh or dd), found %s",
                            found(p, u, buf, sizeof buf));
    }
    next(p);
    if ((st = expect(p, T_COMMA, "','", err)) ||
        (st = window_int(p, "the window size", unit_ms, &w->size_ms, err)))
        return st;
    w->hop_ms = w->size_ms;
    if (w->kind == WIN_HOPPING) {
        if ((st = expect(p, T_COMMA, "','", err)) ||
            (st = window_int(p, "the hop", unit_ms, &w->hop_ms, err)))
            return st;
    }
    return expect(p, T_RPAREN, "')'", err);
}

static inferd_status parse_group_by(parser *p, sql_query *q, inferd_error *err)
{
    q->has_group_by = true;
    for (;;) {
        inferd_status st;
        if (cur(p)->kind == T_IDENT && ahead(p, 1)->kind == T_LPAREN &&
            sql_is_window_name(cur(p)->text)) {
            st = parse_window(p, q, err);
        } else {
            sql_expr **g = realloc(q->group, (q->n_group + 1) * sizeof *g);
            if (!g)
                return sql_oom(err);
            q->group = g;
            q->group[q->n_group] = NULL;
            st = parse_expr(p, PREC_OR, &q->group[q->n_group], err);
            if (st == INFERD_OK)
                q->n_group++;
        }
        if (st)
            return st;
        if (cur(p)->kind != T_COMMA)
            return INFERD_OK;
        next(p);
    }
}

/* After the statement: an optional ';', then nothing. */
static inferd_status parse_end(parser *p, inferd_error *err)
{
    if (cur(p)->kind == T_SEMI)
        next(p);
    if (cur(p)->kind != T_EOF)
        return expected(p, "end of statement", err);
    return INFERD_OK;
}

static inferd_status parse_select_tokens(parser *p, sql_query *q, inferd_error *err)
{
    inferd_status st;
    if ((st = expect_kw(p, "SELECT", err)))
        return st;
    for (;;) {
        if ((st = parse_select_item(p, q, err)))
            return st;
        if (cur(p)->kind != T_COMMA)
            break;
        next(p);
    }
    if ((st = expect_kw(p, "FROM", err)) || (st = parse_name(p, "a stream name", &q->stream, err)))
        return st;
    if (is_kw(p, "WHERE")) {
        next(p);
        if ((st = parse_expr(p, PREC_OR, &q->where, err)))
            return st;
    }
    if (is_kw(p, "GROUP")) {
        const token *at = cur(p);
        next(p);
        if ((st = expect_kw(p, "BY", err)) || (st = parse_group_by(p, q, err)))
            return st;
        /* without a window every message would be a group of one */
        if (q->window.kind == WIN_NONE)
            return sql_error_at(err, INFERD_EINVAL, at->line, at->col,
                                "GROUP BY needs a window (TUMBLINGWINDOW, HOPPINGWINDOW, "
                                "SLIDINGWINDOW or COUNTWINDOW)");
    }
    if (is_kw(p, "HAVING")) {
        if (q->window.kind == WIN_NONE)
            return sql_error_at(err, INFERD_EINVAL, cur(p)->line, cur(p)->col,
                                "HAVING needs GROUP BY with a window");
        next(p);
        if ((st = parse_expr(p, PREC_OR, &q->having, err)))
            return st;
    }
    return parse_end(p, err);
}

inferd_status sql_parse_select(const char *sql, sql_query **out, inferd_error *err)
{
    *out = NULL;
    if (!sql)
        return inferd_error_set(err, INFERD_EINVAL, "no statement");
    parser p = {.src = sql};
    inferd_status st = sql_lex(sql, &p.toks, &p.n, err);
    if (st)
        return st;
    sql_query *q = calloc(1, sizeof *q);
    if (!q || !(q->text = strdup(sql))) {
        free(q);
        sql_tokens_free(p.toks, p.n);
        return sql_oom(err);
    }
    st = parse_select_tokens(&p, q, err);
    sql_tokens_free(p.toks, p.n);
    if (st) {
        sql_query_free(q);
        return st;
    }
    *out = q;
    return INFERD_OK;
}

/* ---- CREATE STREAM --------------------------------------------------------- */

static const struct {
    const char *name;
    sql_type type;
} type_names[] = {
    {"BIGINT", SQL_TYPE_BIGINT}, {"FLOAT", SQL_TYPE_FLOAT},     {"STRING", SQL_TYPE_STRING},
    {"BYTEA", SQL_TYPE_BYTEA},   {"BOOLEAN", SQL_TYPE_BOOLEAN}, {"DATETIME", SQL_TYPE_DATETIME},
    {"ARRAY", SQL_TYPE_ARRAY},   {"STRUCT", SQL_TYPE_STRUCT},
};

const char *sql_type_name(sql_type type)
{
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
        if (type_names[i].type == type)
            return type_names[i].name;
    return "ANY";
}

void sql_stream_def_free(sql_stream_def *def)
{
    if (!def)
        return;
    for (size_t i = 0; i < def->n_columns; i++)
        free(def->columns[i].name);
    free(def->columns);
    free(def->name);
    inferd_value_free(def->options);
    free(def);
}

/* A column type. ARRAY(type) and STRUCT(name type, ...) are accepted (as
 * eKuiper writes them); only the outer type is kept. */
static inferd_status parse_type(parser *p, sql_type *out, inferd_error *err)
{
    const token *t = cur(p);
    *out = SQL_TYPE_ANY;
    if (t->kind == T_IDENT)
        for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
            if (strcasecmp(t->text, type_names[i].name) == 0)
                *out = type_names[i].type;
    if (*out == SQL_TYPE_ANY) {
        char buf[64];
        return sql_error_at(err, INFERD_EINVAL, t->line, t->col,
                            "unknown type %s (BIGINT, FLOAT, STRING, BYTEA, BOOLEAN, DATETIME, "
                            "ARRAY or STRUCT)",
                            found(p, t, buf, sizeof buf));
    }
    next(p);
    if ((*out != SQL_TYPE_ARRAY && *out != SQL_TYPE_STRUCT) || cur(p)->kind != T_LPAREN)
        return INFERD_OK;
    if (++p->nesting > SQL_MAX_DEPTH)
        return sql_error_at(err, INFERD_EINVAL, t->line, t->col, "type nested too deeply");
    next(p);
    inferd_status st;
    sql_type inner;
    if (*out == SQL_TYPE_ARRAY) {
        st = parse_type(p, &inner, err);
    } else {
        for (;;) {
            char *field = NULL;
            st = parse_name(p, "a field name", &field, err);
            free(field);
            if (st || (st = parse_type(p, &inner, err)) || cur(p)->kind != T_COMMA)
                break;
            next(p);
        }
    }
    p->nesting--;
    return st ? st : expect(p, T_RPAREN, "')'", err);
}

static inferd_status parse_columns(parser *p, sql_stream_def *def, inferd_error *err)
{
    next(p); /* ( */
    if (cur(p)->kind == T_RPAREN) {
        next(p);
        return INFERD_OK;
    }
    for (;;) {
        const token *at = cur(p);
        char *name = NULL;
        inferd_status st = parse_name(p, "a column name", &name, err);
        if (st)
            return st;
        for (size_t i = 0; i < def->n_columns; i++)
            if (strcmp(def->columns[i].name, name) == 0) {
                free(name);
                return sql_error_at(err, INFERD_EINVAL, at->line, at->col, "duplicate column '%s'",
                                    def->columns[i].name);
            }
        sql_column *c = realloc(def->columns, (def->n_columns + 1) * sizeof *c);
        if (!c) {
            free(name);
            return sql_oom(err);
        }
        def->columns = c;
        def->columns[def->n_columns++] = (sql_column){.name = name};
        if ((st = parse_type(p, &def->columns[def->n_columns - 1].type, err)))
            return st;
        if (cur(p)->kind != T_COMMA)
            return expect(p, T_RPAREN, "')'", err);
        next(p);
    }
}

static inferd_status parse_options(parser *p, sql_stream_def *def, inferd_error *err)
{
    inferd_status st;
    if ((st = expect(p, T_LPAREN, "'(' after WITH", err)))
        return st;
    for (;;) {
        const token *k = cur(p);
        if (k->kind != T_IDENT)
            return expected(p, "an option name", err);
        char key[128];
        if (k->text_len >= sizeof key)
            return sql_error_at(err, INFERD_EINVAL, k->line, k->col, "option name too long");
        for (size_t i = 0; i <= k->text_len; i++)
            key[i] = (char)(k->text[i] >= 'a' && k->text[i] <= 'z' ? k->text[i] - 32 : k->text[i]);
        if (inferd_value_object_get(def->options, key))
            return sql_error_at(err, INFERD_EINVAL, k->line, k->col, "duplicate option '%s'", key);
        next(p);
        if ((st = expect(p, T_EQ, "'='", err)))
            return st;
        const token *v = cur(p);
        bool neg = false;
        if (v->kind == T_MINUS && (ahead(p, 1)->kind == T_INT || ahead(p, 1)->kind == T_DOUBLE)) {
            neg = true;
            next(p);
            v = cur(p);
        }
        inferd_value *val = NULL;
        if (v->kind == T_STRING && !neg)
            val = inferd_value_string_n(v->text, v->text_len);
        else if (v->kind == T_INT)
            val = inferd_value_int(neg ? -v->i : v->i);
        else if (v->kind == T_DOUBLE)
            val = inferd_value_double(neg ? -v->d : v->d);
        else if (!neg && (tok_is_kw(v, "TRUE") || tok_is_kw(v, "FALSE")))
            val = inferd_value_bool(tok_is_kw(v, "TRUE"));
        else
            return expected(p, "a value (a string, a number, TRUE or FALSE)", err);
        if (!val)
            return sql_oom(err);
        if ((st = inferd_value_object_set(def->options, key, val, err)))
            return st;
        next(p);
        if (cur(p)->kind != T_COMMA)
            return expect(p, T_RPAREN, "')'", err);
        next(p);
    }
}

static inferd_status parse_stream_tokens(parser *p, sql_stream_def *def, inferd_error *err)
{
    inferd_status st;
    if ((st = expect_kw(p, "CREATE", err)) || (st = expect_kw(p, "STREAM", err)) ||
        (st = parse_name(p, "a stream name", &def->name, err)))
        return st;
    if (cur(p)->kind == T_LPAREN && (st = parse_columns(p, def, err)))
        return st;
    if (is_kw(p, "WITH")) {
        next(p);
        if ((st = parse_options(p, def, err)))
            return st;
    }
    return parse_end(p, err);
}

inferd_status sql_parse_stream(const char *sql, sql_stream_def **out, inferd_error *err)
{
    *out = NULL;
    if (!sql)
        return inferd_error_set(err, INFERD_EINVAL, "no statement");
    parser p = {.src = sql};
    inferd_status st = sql_lex(sql, &p.toks, &p.n, err);
    if (st)
        return st;
    sql_stream_def *def = calloc(1, sizeof *def);
    if (!def || !(def->options = inferd_value_object())) {
        free(def);
        sql_tokens_free(p.toks, p.n);
        return sql_oom(err);
    }
    st = parse_stream_tokens(&p, def, err);
    sql_tokens_free(p.toks, p.n);
    if (st) {
        sql_stream_def_free(def);
        return st;
    }
    *out = def;
    return INFERD_OK;
}
