/* sql/sql.h: the rule language: CREATE STREAM and SELECT statements, parsed
 * by a recursive-descent parser, bound to functions, and run over messages.
 * Not installed; used by the rules engine (src/rules).
 *
 * The language is the seeds' streaming SQL (docs/rules.md is the reference):
 *
 *   CREATE STREAM name [(col TYPE, ...)] [WITH (KEY = "value", ...)]
 *   SELECT expr [AS alias], ... | * FROM stream [WHERE cond]
 *          [GROUP BY [window,] expr, ...] [HAVING cond]
 *
 * Expressions: literals (integers, doubles, 'strings' or "strings", TRUE,
 * FALSE, NULL), column names (backquotes for any name), `self` (the whole
 * message: bytes on a BINARY stream, the object on a JSON one), `a->b` field
 * access, `a[i]` indexing (negative from the end), `+ - * / %`, comparisons
 * `= == != <> < <= > >=`, `AND OR NOT`, `CASE [x] WHEN ... THEN ... [ELSE
 * ...] END`, `x [NOT] IN (...)`, `x [NOT] LIKE 'pat%'`, `x IS [NOT] NULL`,
 * function calls `name(args)` and `count(*)`. Windows (GROUP BY only):
 * TUMBLINGWINDOW(unit, size), HOPPINGWINDOW(unit, size, hop),
 * SLIDINGWINDOW(unit, size), COUNTWINDOW(n [, every]); units ms, ss, mm,
 * hh, dd. Aggregates: count, sum, avg, min, max, collect, and aggregate
 * function components. Keywords and built-in function names are
 * case-insensitive; column names and plugin function names are not.
 *
 * Every error the parser or binder reports starts with the position:
 * "at line 1, column 23: expected FROM, found 'FORM'".
 * Values are inferd_values (inferd/value.h); ownership is as there.
 */
#ifndef INFERD_SQL_H
#define INFERD_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferd/status.h"
#include "inferd/value.h"

/* ---- CREATE STREAM ---------------------------------------------------- */

typedef enum sql_type {
    SQL_TYPE_ANY = 0,    /* no declared type */
    SQL_TYPE_BIGINT,     /* int64 */
    SQL_TYPE_FLOAT,      /* double (an int is widened) */
    SQL_TYPE_STRING,
    SQL_TYPE_BYTEA,      /* bytes (a base64 string in JSON is decoded) */
    SQL_TYPE_BOOLEAN,
    SQL_TYPE_DATETIME,   /* int milliseconds since the epoch, or an RFC 3339 string */
    SQL_TYPE_ARRAY,
    SQL_TYPE_STRUCT      /* object */
} sql_type;

typedef struct sql_column {
    char *name;          /* owned */
    sql_type type;
} sql_column;

typedef struct sql_stream_def {
    char *name;          /* owned */
    sql_column *columns; /* owned; n_columns == 0: schemaless, every field passes */
    size_t n_columns;
    /* The WITH options, keys upper-cased ("DATASOURCE", "FORMAT", "TYPE",
     * "CONF_KEY", "SHARED", ...), values as written: strings stay strings,
     * TRUE/FALSE become bools, numbers ints or doubles. Owned object, never
     * NULL (empty when there is no WITH). Which keys are valid is the
     * engine's business, not the parser's. */
    inferd_value *options;
} sql_stream_def;

/* Parses one CREATE STREAM statement (a trailing ';' is allowed). */
inferd_status sql_parse_stream(const char *sql, sql_stream_def **out, inferd_error *err);
void sql_stream_def_free(sql_stream_def *def);
/* "BIGINT", "FLOAT", ... for messages and GET /streams. */
const char *sql_type_name(sql_type type);
/* Converts one field of a message to a declared type (in place: *v may be
 * replaced). A value that cannot be converted is EINVAL naming the column,
 * the type it has and the type declared. NULL stays NULL. */
inferd_status sql_coerce(const sql_column *col, inferd_value **v, inferd_error *err);

/* ---- SELECT: parse, bind, run ---------------------------------------- */

typedef struct sql_query sql_query;

inferd_status sql_parse_select(const char *sql, sql_query **out, inferd_error *err);
void sql_query_free(sql_query *q);
/* The stream after FROM (borrowed from q). */
const char *sql_query_stream(const sql_query *q);
/* Whether the query has a window (and so emits on time or count, not on
 * every message). */
bool sql_query_has_window(const sql_query *q);
/* Result rows leave out the columns whose value is NULL (the seed engine's
 * rows, unless its rule option sendNilField); off by default. `*` copies
 * the message as it is. */
void sql_query_omit_nil(sql_query *q, bool omit);

/* Functions that are not built in are resolved by the caller. A resolved
 * function is called synchronously from the thread that runs the query; it
 * may block (a portable plugin, an estimator). An aggregate function is
 * called once per group when its window closes, each argument being the
 * array of that argument's values over the group's rows. */
typedef struct sql_function {
    int min_args, max_args;          /* max_args -1: any number */
    bool aggregate;
    /* args borrowed; *result a new value owned by the caller. Errors are
     * reported as the rule's exceptions; the message is kept as is. */
    inferd_status (*call)(void *ctx, const inferd_value *const *args, size_t n,
                          inferd_value **result, inferd_error *err);
    /* Optional: checks literal arguments at bind time (args[i] is NULL
     * where the argument is not a literal). */
    inferd_status (*validate)(void *ctx, const inferd_value *const *args, size_t n,
                              inferd_error *err);
    void *ctx;                       /* owned by the resolver, outlives the query */
} sql_function;

/* Returns INFERD_OK and fills *out, or INFERD_ENOTFOUND when the name is not
 * a function the resolver knows (the binder then says "unknown function"),
 * or another error that the binder reports as it is. */
typedef inferd_status (*sql_resolve_fn)(void *rctx, const char *name, sql_function *out,
                                        inferd_error *err);

/* Binds every function call: built-in functions first (their names cannot
 * be taken by plugins), then resolve (may be NULL: built-ins only). Checks
 * arity, aggregates outside a window or nested in aggregates, and, when
 * stream has declared columns, that every column named exists. Errors give
 * the position of the call or column. A query must be bound (once) before
 * it runs. */
inferd_status sql_query_bind(sql_query *q, const sql_stream_def *stream, sql_resolve_fn resolve,
                             void *rctx, inferd_error *err);

/* The names of the non-built-in functions a bound query calls, each once,
 * in order of first appearance (the engine waits for their plugins). */
size_t sql_query_function_count(const sql_query *q);
const char *sql_query_function_name(const sql_query *q, size_t i);

/* One running instance of a bound query: its window state. Not thread-safe:
 * one thread pushes and ticks. */
typedef struct sql_run sql_run;

inferd_status sql_run_new(const sql_query *q, sql_run **out, inferd_error *err);
void sql_run_free(sql_run *r);

/* Feeds one message that arrived at now_ms (milliseconds, any monotonic
 * clock the caller keeps using). msg is borrowed: a JSON stream's message is
 * an object (columns are its fields), a BINARY stream's message is bytes
 * (only `self` and `*`, which gives {"self": bytes}, can name it).
 *
 * Result rows are objects appended to rows (an array the caller owns),
 * named by alias, else the column name, else the last field of `a->b`,
 * else the function name, else "kuiper_field_N" (N counts these unnamed
 * items from 0, as the seed engine names them); a second use of a name
 * is an error at bind time. Without a window a message gives zero rows
 * (WHERE is false or NULL) or one. With a window the message is kept
 * (after WHERE) and rows come from windows that close: a COUNTWINDOW or
 * SLIDINGWINDOW closes on a message; time windows close in sql_run_tick.
 * Every row of one window's emission is appended in group order.
 *
 * An evaluation error (a type error, a failing function) is returned with a
 * message that names the expression; the message is dropped, nothing is
 * appended, the run stays usable for the next message. */
inferd_status sql_run_push(sql_run *r, const inferd_value *msg, int64_t now_ms,
                           inferd_value *rows, inferd_error *err);
/* Closes the time windows that end at or before now_ms, appending their
 * rows (one row per group, or one per message when the query has neither
 * aggregates nor GROUP BY expressions; an empty window emits nothing).
 * Every window that ended is closed even when one fails: the rows of the
 * others are appended and the first error is returned. Windows are
 * aligned to multiples of their size (of hop for HOPPINGWINDOW) on the
 * clock the caller uses. */
inferd_status sql_run_tick(sql_run *r, int64_t now_ms, inferd_value *rows, inferd_error *err);
/* When sql_run_tick must next be called, or -1 when no time window is
 * waiting to close. */
int64_t sql_run_next_deadline(const sql_run *r);
/* Messages held in open windows now (the rule's buffer_length counter). */
size_t sql_run_held(const sql_run *r);

#endif
