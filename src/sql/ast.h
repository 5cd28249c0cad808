/* sql/ast.h: what the pieces of the rule language share (private to
 * src/sql): tokens from the lexer, the syntax tree the parser builds and the
 * binder annotates, the built-in function table, and the evaluator that
 * window.c drives. Nothing here is visible outside src/sql. */
#ifndef INFERD_SQL_AST_H
#define INFERD_SQL_AST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sql/sql.h"

/* ---- tokens (lexer.c) --------------------------------------------------- */

typedef enum tok_kind {
    T_EOF = 0,
    T_IDENT,  /* a bare word: keyword or name (keywords are recognised by the parser) */
    T_QIDENT, /* `a backquoted name` */
    T_STRING, /* 'text' or "text" */
    T_INT,
    T_DOUBLE,
    T_LPAREN,
    T_RPAREN,
    T_LBRACKET,
    T_RBRACKET,
    T_COMMA,
    T_SEMI,
    T_DOT,
    T_STAR,
    T_PLUS,
    T_MINUS,
    T_SLASH,
    T_PERCENT,
    T_EQ,
    T_EQEQ,
    T_NE,
    T_LT,
    T_LE,
    T_GT,
    T_GE,
    T_ARROW
} tok_kind;

typedef struct token {
    tok_kind kind;
    size_t start, len; /* the token's bytes in the source */
    int line, col;     /* 1-based; col counts characters, not bytes */
    char *text;        /* owned: the decoded name or string (IDENT, QIDENT, STRING) */
    size_t text_len;
    int64_t i; /* T_INT */
    double d;  /* T_DOUBLE */
} token;

/* Splits src into tokens, the last one T_EOF. *out is owned by the caller
 * (free with sql_tokens_free). Errors carry the position. */
inferd_status sql_lex(const char *src, token **out, size_t *n, inferd_error *err);
void sql_tokens_free(token *toks, size_t n);

/* Sets err to "at line L, column C: <message>" and returns code. */
inferd_status sql_error_at(inferd_error *err, inferd_status code, int line, int col,
                           const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* ---- the syntax tree (parser.c builds it, bind.c annotates it) ---------- */

typedef enum expr_kind {
    EX_LIT,   /* lit */
    EX_COL,   /* name: a column of the message */
    EX_SELF,  /* the whole message */
    EX_STAR,  /* '*' as the argument of count(*) or collect(*) */
    EX_FIELD, /* kids[0]->name */
    EX_INDEX, /* kids[0][kids[1]] */
    EX_NEG,   /* -kids[0] */
    EX_NOT,   /* NOT kids[0] */
    EX_ARITH, /* kids[0] op kids[1], op one of + - * / % */
    EX_CMP,   /* kids[0] op kids[1], op a comparison */
    EX_AND,
    EX_OR,
    EX_IN,      /* kids[0] [NOT] IN (kids[1..]) */
    EX_LIKE,    /* kids[0] [NOT] LIKE kids[1] [ESCAPE kids[2]] */
    EX_ISNULL,  /* kids[0] IS [NOT] NULL */
    EX_BETWEEN, /* kids[0] [NOT] BETWEEN kids[1] AND kids[2] */
    EX_CASE,    /* [operand] (when, then)... [else]: see has_operand, has_else */
    EX_CALL     /* name(kids...) */
} expr_kind;

typedef enum sql_op {
    OP_NONE = 0,
    OP_ADD,
    OP_SUB,
    OP_MUL,
    OP_DIV,
    OP_MOD,
    OP_EQ,
    OP_NE,
    OP_LT,
    OP_LE,
    OP_GT,
    OP_GE
} sql_op;

struct builtin;

typedef struct sql_expr {
    expr_kind kind;
    int line, col;     /* where the expression starts (a call: its name) */
    size_t start, end; /* its text in sql_query.text, for error messages */
    int depth;         /* height of this subtree (bounded, so recursion is too) */
    sql_op op;
    bool negated;     /* NOT IN, NOT LIKE, IS NOT NULL, NOT BETWEEN */
    bool has_operand; /* CASE x WHEN ... */
    bool has_else;
    inferd_value *lit;      /* owned (EX_LIT) */
    char *name;             /* owned: column, field or function name as written */
    struct sql_expr **kids; /* owned */
    size_t n_kids;
    /* Set by the binder on EX_CALL: either a built-in or a resolved function. */
    const struct builtin *builtin; /* borrowed (static table) */
    sql_function fn;               /* a resolved function when builtin is NULL */
    bool aggregate;                /* the call aggregates over a group */
    /* Set by the binder on an EX_COL that names another SELECT item's alias:
     * that item's index + 1 (0: a column of the message). */
    size_t alias_of;
} sql_expr;

void sql_expr_free(sql_expr *e);

/* How deep an expression may nest: evaluation and freeing recurse. */
#define SQL_MAX_DEPTH 200

typedef enum window_kind {
    WIN_NONE = 0,
    WIN_TUMBLING,
    WIN_HOPPING,
    WIN_SLIDING,
    WIN_COUNT
} window_kind;

typedef struct window_spec {
    window_kind kind;
    int64_t size_ms, hop_ms; /* time windows (tumbling: hop_ms == size_ms) */
    int64_t count, every;    /* COUNTWINDOW(count [, every]); every == count without it */
    int line, col;
} window_spec;

typedef struct select_item {
    sql_expr *expr; /* owned; NULL for '*' */
    char *alias;    /* owned, may be NULL */
    char *name;     /* owned: the output name, set by the binder (NULL for '*') */
    int line, col;
    bool referenced; /* another item names its alias: its value is kept per row */
} select_item;

struct sql_query {
    char *text;         /* owned copy of the statement (errors quote from it) */
    char *stream;       /* owned */
    select_item *items; /* owned */
    size_t n_items;
    sql_expr *where, *having; /* owned, may be NULL */
    sql_expr **group;         /* owned: GROUP BY expressions, the window excluded */
    size_t n_group;
    bool has_group_by;
    window_spec window;
    bool bound;
    /* A window without aggregates or GROUP BY expressions emits each of its
     * rows (eKuiper's SELECT * ... GROUP BY COUNTWINDOW(5)); otherwise one
     * row per group. Set by the binder. */
    bool per_row;
    char **functions; /* owned: non-built-in function names, first use first */
    size_t n_functions;
    bool omit_nil;    /* result rows leave out columns that are NULL */
};

/* ---- evaluation (eval.c) ------------------------------------------------ */

/* What an expression is evaluated against. Outside a group rows is NULL;
 * in a group, row is its last row and aggregates run over rows. */
typedef struct eval_ctx {
    const sql_query *q;
    const inferd_value *row;         /* borrowed */
    const inferd_value *const *rows; /* borrowed, the group's rows (or NULL) */
    size_t n_rows;
    int64_t win_start, win_end; /* window_start(), window_end() */
    int64_t msg_ts;             /* event_time(): the row's message's time */
    inferd_value **item_vals;   /* sql_eval_select: referenced items' values (or NULL) */
    const inferd_value *null;   /* borrowed: the one NULL every result may point to */
} eval_ctx;

/* A result: borrowed from the message, the tree or ctx->null, or owned
 * (then owned == v). Borrowing keeps large payloads (images) from being
 * copied on their way to a function. */
typedef struct ev {
    const inferd_value *v;
    inferd_value *owned;
} ev;

void ev_release(ev *x);
/* The value as one the caller owns (moves it out of x or copies it). */
inferd_value *ev_take(ev *x);

inferd_status sql_eval(eval_ctx *c, const sql_expr *e, ev *out, inferd_error *err);
/* A WHERE or HAVING condition: *pass is true only for TRUE (NULL and FALSE
 * drop), a non-boolean is an error. what names the clause in errors. */
inferd_status sql_eval_cond(eval_ctx *c, const sql_expr *e, const char *what, bool *pass,
                            inferd_error *err);
/* Evaluates the select list into a new object (*out owned by the caller). */
inferd_status sql_eval_select(eval_ctx *c, inferd_value **out, inferd_error *err);
/* Prefixes err with the clause (may be NULL) and the expression's text:
 * "in WHERE 'a > 'x'': ...", "in 'sqrt(x)': ...". Returns err's code. */
inferd_status sql_error_in(const sql_query *q, const char *what, const sql_expr *e,
                           inferd_error *err);

/* ---- built-in functions (builtins.c) ------------------------------------ */

typedef enum builtin_kind {
    BI_SCALAR,    /* called once per row */
    BI_AGGREGATE, /* called once per group, each argument an array over the rows */
    BI_WINDOW     /* window_start(), window_end(): need a window, read ctx */
} builtin_kind;

typedef struct builtin {
    const char *name; /* lower case; matched case-insensitively */
    int min_args, max_args;
    builtin_kind kind;
    bool null_ok; /* receives NULL arguments (else any NULL argument gives NULL) */
    bool star_ok; /* accepts '*' as its only argument */
    inferd_status (*call)(const eval_ctx *c, const inferd_value *const *args, size_t n,
                          inferd_value **out, inferd_error *err);
    /* Optional bind-time check of literal arguments (args[i] NULL when not a literal). */
    inferd_status (*validate)(const inferd_value *const *args, size_t n, inferd_error *err);
} builtin;

const builtin *sql_builtin_find(const char *name);
/* Whether name is a window function (TUMBLINGWINDOW, ...), for a clear error. */
bool sql_is_window_name(const char *name);

/* ---- shared helpers ----------------------------------------------------- */

/* "out of memory" with ENOMEM. */
inferd_status sql_oom(inferd_error *err);
/* Compares two non-NULL values as `=`/`<` do: numbers with numbers, strings
 * with strings, bools with bools (eq_only), bytes, arrays and objects for
 * equality only; any other mix is an ETYPE error naming both types. */
inferd_status sql_compare(const inferd_value *a, const inferd_value *b, bool eq_only, int *cmp,
                          inferd_error *err);

/* a op b for + - * / % on two non-NULL values (the rules at eval.c's top). */
inferd_status sql_arith(sql_op op, const inferd_value *a, const inferd_value *b, inferd_value **out,
                        inferd_error *err);

#endif
