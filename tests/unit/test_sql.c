/* test_sql.c: the rule language (src/sql/sql.h): lexing and parsing with
 * exact error positions, binding (functions, columns, output names), every
 * operator and built-in on good and bad input, NULL semantics, resolved and
 * aggregate plugin functions, every window kind at exact times, and garbage
 * input that must give errors, never crashes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql/sql.h"

#define assert_contains(haystack, needle)                                                          \
    do {                                                                                           \
        if (!strstr((haystack), (needle)))                                                         \
            fail_msg("'%s' does not contain '%s'", (haystack), (needle));                          \
    } while (0)

/* ---- helpers ------------------------------------------------------------------------ */

static inferd_value *J(const char *json)
{
    inferd_value *v = NULL;
    inferd_error err = {0};
    if (inferd_value_from_json(json, strlen(json), 0, &v, &err) != INFERD_OK)
        fail_msg("bad test JSON %s: %s", json, err.message);
    return v;
}

static char *to_json(const inferd_value *v)
{
    char *s = NULL;
    inferd_error err = {0};
    if (inferd_value_to_json(v, INFERD_JSON_COMPACT, &s, NULL, &err) != INFERD_OK)
        fail_msg("to_json: %s", err.message);
    return s;
}

static sql_query *parse_ok(const char *sql)
{
    sql_query *q = NULL;
    inferd_error err = {0};
    if (sql_parse_select(sql, &q, &err) != INFERD_OK)
        fail_msg("parsing %s: %s", sql, err.message);
    return q;
}

static sql_query *bound(const char *sql, const sql_stream_def *s, sql_resolve_fn resolve,
                        void *rctx)
{
    sql_query *q = parse_ok(sql);
    inferd_error err = {0};
    if (sql_query_bind(q, s, resolve, rctx, &err) != INFERD_OK)
        fail_msg("binding %s: %s", sql, err.message);
    return q;
}

static void select_fails(const char *sql, const char *want)
{
    sql_query *q = (sql_query *)1;
    inferd_error err = {0};
    inferd_status st = sql_parse_select(sql, &q, &err);
    if (st == INFERD_OK)
        fail_msg("parsing %s succeeded, want \"%s\"", sql, want);
    assert_null(q);
    if (strcmp(err.message, want) != 0)
        fail_msg("parsing %s:\n  got  \"%s\"\n  want \"%s\"", sql, err.message, want);
}

static void stream_fails(const char *sql, const char *want)
{
    sql_stream_def *d = (sql_stream_def *)1;
    inferd_error err = {0};
    if (sql_parse_stream(sql, &d, &err) == INFERD_OK)
        fail_msg("parsing %s succeeded, want \"%s\"", sql, want);
    assert_null(d);
    if (strcmp(err.message, want) != 0)
        fail_msg("parsing %s:\n  got  \"%s\"\n  want \"%s\"", sql, err.message, want);
}

static void bind_fails(const char *sql, const sql_stream_def *s, sql_resolve_fn resolve, void *rctx,
                       const char *want)
{
    sql_query *q = parse_ok(sql);
    inferd_error err = {0};
    if (sql_query_bind(q, s, resolve, rctx, &err) == INFERD_OK)
        fail_msg("binding %s succeeded, want \"%s\"", sql, want);
    if (strcmp(err.message, want) != 0)
        fail_msg("binding %s:\n  got  \"%s\"\n  want \"%s\"", sql, err.message, want);
    sql_query_free(q);
}

/* Pushes msg (JSON) at now; returns the JSON of the rows it gave, or
 * "error: <message>". */
static char *push_json(sql_run *r, const char *msg, int64_t now)
{
    inferd_value *m = J(msg), *rows = inferd_value_array();
    inferd_error err = {0};
    inferd_status st = sql_run_push(r, m, now, rows, &err);
    char *out;
    if (st != INFERD_OK) {
        assert_int_equal(inferd_value_array_len(rows), 0);
        size_t n = strlen(err.message) + 8;
        out = malloc(n);
        snprintf(out, n, "error: %s", err.message);
    } else {
        out = to_json(rows);
    }
    inferd_value_free(m);
    inferd_value_free(rows);
    return out;
}

static void expect_push(sql_run *r, const char *msg, int64_t now, const char *want)
{
    char *got = push_json(r, msg, now);
    if (strcmp(got, want) != 0)
        fail_msg("push %s at %lld:\n  got  %s\n  want %s", msg, (long long)now, got, want);
    free(got);
}

static void expect_tick(sql_run *r, int64_t now, const char *want)
{
    inferd_value *rows = inferd_value_array();
    inferd_error err = {0};
    if (sql_run_tick(r, now, rows, &err) != INFERD_OK)
        fail_msg("tick at %lld: %s", (long long)now, err.message);
    char *got = to_json(rows);
    if (strcmp(got, want) != 0)
        fail_msg("tick at %lld:\n  got  %s\n  want %s", (long long)now, got, want);
    free(got);
    inferd_value_free(rows);
}

static sql_run *run_of(const sql_query *q)
{
    sql_run *r = NULL;
    inferd_error err = {0};
    if (sql_run_new(q, &r, &err) != INFERD_OK)
        fail_msg("sql_run_new: %s", err.message);
    return r;
}

/* Evaluates expr against msg: the JSON of its value, or "error: ..." (a
 * bind error too). */
static char *eval_msg(const char *expr, const char *msg)
{
    char sql[1024];
    snprintf(sql, sizeof sql, "SELECT %s AS v FROM s", expr);
    sql_query *q = parse_ok(sql);
    inferd_error err = {0};
    char *out;
    if (sql_query_bind(q, NULL, NULL, NULL, &err) != INFERD_OK) {
        size_t n = strlen(err.message) + 16;
        out = malloc(n);
        snprintf(out, n, "bind error: %s", err.message);
        sql_query_free(q);
        return out;
    }
    sql_run *r = run_of(q);
    char *rows = push_json(r, msg, 0);
    if (strncmp(rows, "error: ", 7) == 0) {
        out = rows;
    } else {
        inferd_value *v = J(rows);
        assert_int_equal(inferd_value_array_len(v), 1);
        out = to_json(inferd_value_object_get(inferd_value_array_get(v, 0), "v"));
        inferd_value_free(v);
        free(rows);
    }
    sql_run_free(r);
    sql_query_free(q);
    return out;
}

#define MSG                                                                                        \
    "{\"i\":7,\"d\":2.5,\"s\":\"Hello\",\"b\":true,\"n\":null,\"a\":[1,2,3],\"o\":{\"x\":{\"y\":"  \
    "5},\"k\":\"v\"}}"

static void expect_eval(const char *expr, const char *want)
{
    char *got = eval_msg(expr, MSG);
    if (strcmp(got, want) != 0)
        fail_msg("%s:\n  got  %s\n  want %s", expr, got, want);
    free(got);
}

/* The evaluation fails with a message containing want. */
static void expect_eval_error(const char *expr, const char *want)
{
    char *got = eval_msg(expr, MSG);
    if (strncmp(got, "error: ", 7) != 0 && strncmp(got, "bind error: ", 12) != 0)
        fail_msg("%s: got %s, want an error containing \"%s\"", expr, got, want);
    if (!strstr(got, want))
        fail_msg("%s:\n  got  %s\n  want an error containing \"%s\"", expr, got, want);
    free(got);
}

static double eval_double(const char *expr)
{
    char *got = eval_msg(expr, MSG);
    char *end;
    double d = strtod(got, &end);
    if (*end != '\0')
        fail_msg("%s: got %s, want a number", expr, got);
    free(got);
    return d;
}

/* ---- lexing and parsing -------------------------------------------------------------- */

static void parse_select_shapes(void **state)
{
    (void)state;
    sql_query *q = parse_ok("select a, b->c AS `x y`, count(*) from `my stream` where a > 1 "
                            "group by b, TumblingWindow(SS, 10) having count(*) >= 2;");
    assert_string_equal(sql_query_stream(q), "my stream");
    assert_true(sql_query_has_window(q));
    sql_query_free(q);

    q = parse_ok("SELECT * FROM s -- a comment\n /* and\n another */");
    assert_string_equal(sql_query_stream(q), "s");
    assert_false(sql_query_has_window(q));
    sql_query_free(q);

    /* every window kind and unit parses */
    const char *windows[] = {"TUMBLINGWINDOW(ms, 5)", "HOPPINGWINDOW(mi, 2, 1)",
                             "SLIDINGWINDOW(hh, 1)",  "COUNTWINDOW(5)",
                             "COUNTWINDOW(5, 2)",     "tumblingwindow(dd, 1)",
                             "TUMBLINGWINDOW(mm, 1)"};
    for (size_t i = 0; i < sizeof windows / sizeof windows[0]; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM s GROUP BY %s", windows[i]);
        q = parse_ok(sql);
        assert_true(sql_query_has_window(q));
        sql_query_free(q);
    }
    sql_parse_select(NULL, &q, NULL);
    assert_null(q);
}

static void parse_errors_have_positions(void **state)
{
    (void)state;
    select_fails("SELECT a FORM s", "at line 1, column 10: expected FROM, found 'FORM'");
    select_fails("SELECT FROM s", "at line 1, column 8: expected an expression, found 'FROM'");
    select_fails("SELECT a FROM",
                 "at line 1, column 14: expected a stream name, found end of input");
    select_fails("SELECT a, FROM s", "at line 1, column 11: expected an expression, found 'FROM'");
    select_fails("SELECT (a FROM s", "at line 1, column 11: expected ')', found 'FROM'");
    select_fails("SELECT 'abc FROM s", "at line 1, column 8: unterminated string");
    select_fails("SELECT `abc FROM s", "at line 1, column 8: unterminated quoted name");
    select_fails("SELECT 99999999999999999999 FROM s",
                 "at line 1, column 8: integer out of range: 99999999999999999999");
    select_fails("SELECT 12abc FROM s", "at line 1, column 8: invalid number '12abc'");
    select_fails("SELECT a FROM s WHERE",
                 "at line 1, column 22: expected an expression, found end of input");
    select_fails("SELECT a\nFROM s\nWHERE a >",
                 "at line 3, column 10: expected an expression, found end of input");
    select_fails("SELECT a FROM s GROUP a", "at line 1, column 23: expected BY, found 'a'");
    select_fails("SELECT a FROM s GROUP BY TUMBLINGWINDOW(xx, 10)",
                 "at line 1, column 41: expected a time unit (ms, ss, mi, hh or dd), found 'xx'");
    select_fails("SELECT a FROM s GROUP BY TUMBLINGWINDOW(ss, 0)",
                 "at line 1, column 45: the window size must be a positive integer, found '0'");
    select_fails("SELECT a FROM s GROUP BY HOPPINGWINDOW(ss, 10)",
                 "at line 1, column 46: expected ',', found ')'");
    select_fails("SELECT a FROM s GROUP BY COUNTWINDOW(3, 5)",
                 "at line 1, column 41: the interval of COUNTWINDOW (5) must not be larger than "
                 "its count (3)");
    select_fails("SELECT a FROM s GROUP BY TUMBLINGWINDOW(ss, 1), COUNTWINDOW(3)",
                 "at line 1, column 49: only one window is allowed in GROUP BY");
    select_fails("SELECT a FROM s GROUP BY a",
                 "at line 1, column 17: GROUP BY needs a window (TUMBLINGWINDOW, HOPPINGWINDOW, "
                 "SLIDINGWINDOW or COUNTWINDOW)");
    select_fails("SELECT a FROM s HAVING a > 1",
                 "at line 1, column 17: HAVING needs GROUP BY with a window");
    select_fails("SELECT a FROM s extra",
                 "at line 1, column 17: expected end of statement, found 'extra'");
    select_fails("SELECT a FROM s; SELECT b FROM s",
                 "at line 1, column 18: expected end of statement, found 'SELECT'");
    select_fails("SELECT a->1 FROM s",
                 "at line 1, column 11: expected a field name after '->', found '1'");
    select_fails("SELECT a[1 FROM s", "at line 1, column 12: expected ']', found 'FROM'");
    select_fails("SELECT CASE WHEN a THEN 1 FROM s",
                 "at line 1, column 27: expected END, found 'FROM'");
    select_fails("SELECT CASE ELSE 1 END FROM s",
                 "at line 1, column 13: expected an expression, found 'ELSE'");
    select_fails("SELECT CASE a ELSE 1 END FROM s",
                 "at line 1, column 15: expected WHEN, found 'ELSE'");
    select_fails("SELECT a FROM s /* x", "at line 1, column 17: unterminated comment");
    select_fails("SELECT a # b FROM s", "at line 1, column 10: unexpected character '#'");
    select_fails("SELECT a FROM s WHERE a NOT 5",
                 "at line 1, column 29: expected IN, LIKE or BETWEEN after NOT, found '5'");
    select_fails("SELECT x IN 1 FROM s", "at line 1, column 13: expected '(' after IN, found '1'");
    select_fails("SELECT x IN () FROM s",
                 "at line 1, column 14: expected an expression, found ')'");
    select_fails("SELECT count(*, a) FROM s",
                 "at line 1, column 14: expected an expression, found '*'");
    select_fails("SELECT a AS FROM s",
                 "at line 1, column 13: expected an alias after AS, found 'FROM'");
    select_fails("SELECT a IS 5 FROM s", "at line 1, column 13: expected NULL, found '5'");
    select_fails("SELECT a BETWEEN 1 OR 2 FROM s",
                 "at line 1, column 20: expected AND, found 'OR'");
    select_fails("SELECT a FROM s WHERE a = NOT b",
                 "at line 1, column 27: expected an expression, found 'NOT'");
    select_fails("INSERT INTO s", "at line 1, column 1: expected SELECT, found 'INSERT'");
    select_fails("", "at line 1, column 1: expected SELECT, found end of input");
    /* columns count characters, not bytes */
    select_fails("SELECT 'héllo' FORM s", "at line 1, column 16: expected FROM, found 'FORM'");
    select_fails("SELECT a FROM s WHERE \x01",
                 "at line 1, column 23: unexpected character (byte 0x01)");
    /* long tokens are cut in messages */
    select_fails("SELECT a FROM s aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                 "at line 1, column 17: expected end of statement, found "
                 "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...'");
}

static void nesting_is_bounded(void **state)
{
    (void)state;
    size_t n = 5000;
    char *sql = malloc(3 * n + 64);
    /* parentheses */
    strcpy(sql, "SELECT ");
    for (size_t i = 0; i < n; i++)
        strcat(sql, "(");
    strcat(sql, "1");
    for (size_t i = 0; i < n; i++)
        strcat(sql, ")");
    strcat(sql, " FROM s");
    sql_query *q = NULL;
    inferd_error err = {0};
    assert_int_equal(sql_parse_select(sql, &q, &err), INFERD_EINVAL);
    assert_contains(err.message, "nested too deeply");
    /* a long left-leaning chain */
    strcpy(sql, "SELECT 1");
    for (size_t i = 0; i < n / 2; i++)
        strcat(sql, "+1");
    strcat(sql, " FROM s");
    assert_int_equal(sql_parse_select(sql, &q, &err), INFERD_EINVAL);
    assert_contains(err.message, "nested too deeply");
    /* unary minus */
    strcpy(sql, "SELECT ");
    for (size_t i = 0; i < n; i++)
        strcat(sql, "- ");
    strcat(sql, "a FROM s");
    assert_int_equal(sql_parse_select(sql, &q, &err), INFERD_EINVAL);
    assert_contains(err.message, "nested too deeply");
    free(sql);
    /* forty levels are fine */
    char ok[128] = "SELECT ";
    for (int i = 0; i < 40; i++)
        strcat(ok, "(");
    strcat(ok, "1");
    for (int i = 0; i < 40; i++)
        strcat(ok, ")");
    strcat(ok, " AS v FROM s");
    q = parse_ok(ok);
    sql_query_free(q);
}

static void lexer_literals(void **state)
{
    (void)state;
    expect_eval("'it''s'", "\"it's\"");
    expect_eval("\"say \\\"hi\\\"\"", "\"say \\\"hi\\\"\"");
    expect_eval("'a\\nb\\tc\\\\'", "\"a\\nb\\tc\\\\\"");
    expect_eval("'100\\%'", "\"100\\\\%\""); /* unknown escapes stay */
    expect_eval("\"\"", "\"\"");
    expect_eval("1e3", "1000.0");
    expect_eval("1.5E-1", "0.15");
    expect_eval("-9223372036854775807", "-9223372036854775807");
    expect_eval("`s`", "\"Hello\"");
    expect_eval("TRUE", "true");
    expect_eval("false", "false");
    expect_eval("Null", "null");
    expect_eval("1 -- the rest of the line is a comment\n", "1");
    expect_eval("/* before */ 2", "2");
}

/* ---- CREATE STREAM ---------------------------------------------------------------------- */

static void stream_definitions(void **state)
{
    (void)state;
    sql_stream_def *d = NULL;
    inferd_error err = {0};
    assert_int_equal(
        sql_parse_stream("create stream demo (id BIGINT, temp float, name String, img BYTEA, "
                         "ok BOOLEAN, at DATETIME, tags ARRAY(STRING), meta STRUCT(a BIGINT, "
                         "b ARRAY(FLOAT)), `odd name` bigint) WITH (DATASOURCE=\"t/#\", "
                         "format='json', Shared=TRUE, conf_key=\"x\", retries=3, ratio=-0.5, "
                         "neg=-2, off=false);",
                         &d, &err),
        INFERD_OK);
    assert_string_equal(d->name, "demo");
    assert_int_equal(d->n_columns, 9);
    const char *names[] = {"id", "temp", "name", "img", "ok", "at", "tags", "meta", "odd name"};
    sql_type types[] = {SQL_TYPE_BIGINT, SQL_TYPE_FLOAT,   SQL_TYPE_STRING,
                        SQL_TYPE_BYTEA,  SQL_TYPE_BOOLEAN, SQL_TYPE_DATETIME,
                        SQL_TYPE_ARRAY,  SQL_TYPE_STRUCT,  SQL_TYPE_BIGINT};
    for (size_t i = 0; i < 9; i++) {
        assert_string_equal(d->columns[i].name, names[i]);
        assert_int_equal(d->columns[i].type, types[i]);
    }
    char *opts = to_json(d->options);
    assert_string_equal(opts, "{\"DATASOURCE\":\"t/#\",\"FORMAT\":\"json\",\"SHARED\":true,"
                              "\"CONF_KEY\":\"x\",\"RETRIES\":3,\"RATIO\":-0.5,\"NEG\":-2,"
                              "\"OFF\":false}");
    free(opts);
    sql_stream_def_free(d);

    /* schemaless forms */
    const char *schemaless[] = {"CREATE STREAM s () WITH (TYPE=\"mqtt\")", "CREATE STREAM s",
                                "CREATE STREAM s ();", "CREATE STREAM s WITH (FORMAT=\"BINARY\")"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(sql_parse_stream(schemaless[i], &d, &err), INFERD_OK);
        assert_string_equal(d->name, "s");
        assert_int_equal(d->n_columns, 0);
        assert_non_null(d->options);
        sql_stream_def_free(d);
    }

    const char *type_names[] = {"ANY",     "BIGINT",   "FLOAT", "STRING", "BYTEA",
                                "BOOLEAN", "DATETIME", "ARRAY", "STRUCT"};
    for (int t = SQL_TYPE_ANY; t <= SQL_TYPE_STRUCT; t++)
        assert_string_equal(sql_type_name((sql_type)t), type_names[t]);
}

static void stream_errors(void **state)
{
    (void)state;
    stream_fails("CREATE STREAM s (a INTEGER)",
                 "at line 1, column 20: unknown type 'INTEGER' (BIGINT, FLOAT, STRING, BYTEA, "
                 "BOOLEAN, DATETIME, ARRAY or STRUCT)");
    stream_fails("CREATE STREAM (a BIGINT)",
                 "at line 1, column 15: expected a stream name, found '('");
    stream_fails("CREATE STREAM s (a BIGINT) WITH (FORMAT)",
                 "at line 1, column 40: expected '=', found ')'");
    stream_fails("CREATE STREAM s (a BIGINT, a FLOAT)",
                 "at line 1, column 28: duplicate column 'a'");
    stream_fails("CREATE TABLE s ()", "at line 1, column 8: expected STREAM, found 'TABLE'");
    stream_fails("CREATE STREAM s (a BIGINT",
                 "at line 1, column 26: expected ')', found end of input");
    stream_fails("CREATE STREAM s (a)", "at line 1, column 19: unknown type ')' (BIGINT, FLOAT, "
                                        "STRING, BYTEA, BOOLEAN, DATETIME, ARRAY or STRUCT)");
    stream_fails("CREATE STREAM s () WITH (A=1, a=2)",
                 "at line 1, column 31: duplicate option 'A'");
    stream_fails("CREATE STREAM s () WITH (A=x)",
                 "at line 1, column 28: expected a value (a string, a number, TRUE or FALSE), "
                 "found 'x'");
    stream_fails("CREATE STREAM s () WITH A=1",
                 "at line 1, column 25: expected '(' after WITH, found 'A'");
    stream_fails("CREATE STREAM s () garbage",
                 "at line 1, column 20: expected end of statement, found 'garbage'");
    stream_fails("CREATE STREAM s (a ARRAY(NOPE))",
                 "at line 1, column 26: unknown type 'NOPE' (BIGINT, FLOAT, STRING, BYTEA, "
                 "BOOLEAN, DATETIME, ARRAY or STRUCT)");
    stream_fails("SELECT * FROM s", "at line 1, column 1: expected CREATE, found 'SELECT'");
}

static void coerce_one(sql_type type, const char *in, const char *want)
{
    sql_column col = {.name = "c", .type = type};
    inferd_value *v = J(in);
    inferd_error err = {0};
    inferd_status st = sql_coerce(&col, &v, &err);
    if (strncmp(want, "error: ", 7) == 0) {
        if (st == INFERD_OK)
            fail_msg("coercing %s to %s succeeded", in, sql_type_name(type));
        assert_string_equal(err.message, want + 7);
    } else {
        if (st != INFERD_OK)
            fail_msg("coercing %s to %s: %s", in, sql_type_name(type), err.message);
        char *got = to_json(v);
        assert_string_equal(got, want);
        free(got);
    }
    inferd_value_free(v);
}

static void coerce_fields(void **state)
{
    (void)state;
    coerce_one(SQL_TYPE_BIGINT, "5", "5");
    coerce_one(SQL_TYPE_BIGINT, "5.0", "5");
    coerce_one(SQL_TYPE_BIGINT, "5.5", "error: column 'c' is declared BIGINT, got double");
    coerce_one(SQL_TYPE_BIGINT, "\"5\"", "error: column 'c' is declared BIGINT, got string");
    coerce_one(SQL_TYPE_BIGINT, "null", "null");
    coerce_one(SQL_TYPE_FLOAT, "5", "5.0");
    coerce_one(SQL_TYPE_FLOAT, "2.5", "2.5");
    coerce_one(SQL_TYPE_FLOAT, "true", "error: column 'c' is declared FLOAT, got bool");
    coerce_one(SQL_TYPE_STRING, "\"x\"", "\"x\"");
    coerce_one(SQL_TYPE_STRING, "1", "error: column 'c' is declared STRING, got int");
    coerce_one(SQL_TYPE_BOOLEAN, "false", "false");
    coerce_one(SQL_TYPE_BOOLEAN, "0", "error: column 'c' is declared BOOLEAN, got int");
    coerce_one(SQL_TYPE_ARRAY, "[1]", "[1]");
    coerce_one(SQL_TYPE_ARRAY, "{}", "error: column 'c' is declared ARRAY, got object");
    coerce_one(SQL_TYPE_STRUCT, "{\"a\":1}", "{\"a\":1}");
    coerce_one(SQL_TYPE_STRUCT, "[]", "error: column 'c' is declared STRUCT, got array");
    coerce_one(SQL_TYPE_DATETIME, "1700000000000", "1700000000000");
    coerce_one(SQL_TYPE_DATETIME, "\"2024-05-01T12:00:00.250Z\"", "1714564800250");
    coerce_one(SQL_TYPE_DATETIME, "\"2024-05-01T14:00:00+02:00\"", "1714564800000");
    coerce_one(SQL_TYPE_DATETIME, "\"1970-01-01T00:00:00Z\"", "0");
    coerce_one(SQL_TYPE_DATETIME, "\"yesterday\"",
               "error: column 'c' is declared DATETIME, got string");
    coerce_one(SQL_TYPE_DATETIME, "\"2024-13-01T00:00:00Z\"",
               "error: column 'c' is declared DATETIME, got string");
    coerce_one(SQL_TYPE_ANY, "[1,{}]", "[1,{}]");
    /* BYTEA: JSON carries bytes as base64 */
    sql_column col = {.name = "img", .type = SQL_TYPE_BYTEA};
    inferd_value *v = J("\"AAEC/w==\"");
    inferd_error err = {0};
    assert_int_equal(sql_coerce(&col, &v, &err), INFERD_OK);
    const void *data;
    size_t len;
    assert_int_equal(inferd_value_get_bytes(v, &data, &len, NULL), INFERD_OK);
    assert_int_equal(len, 4);
    assert_memory_equal(data, "\x00\x01\x02\xff", 4);
    assert_int_equal(sql_coerce(&col, &v, &err), INFERD_OK); /* bytes stay bytes */
    inferd_value_free(v);
    coerce_one(SQL_TYPE_BYTEA, "\"not base64!\"",
               "error: column 'c' is declared BYTEA, got string");
}

/* ---- operators ---------------------------------------------------------------------------- */

static void arithmetic(void **state)
{
    (void)state;
    expect_eval("1 + 2 * 3", "7");
    expect_eval("(1 + 2) * 3", "9");
    expect_eval("7 / 2", "3");
    expect_eval("-7 / 2", "-3");
    expect_eval("7 % 3", "1");
    expect_eval("-7 % 3", "-1");
    expect_eval("7.0 / 2", "3.5");
    expect_eval("i + d", "9.5");
    expect_eval("i - 10", "-3");
    expect_eval("d * 2", "5.0");
    expect_eval("7.5 % 2", "1.5");
    expect_eval("- i", "-7");
    expect_eval("-d", "-2.5");
    expect_eval("- -i", "7");
    expect_eval("2 - 3 - 4", "-5"); /* left to right */
    expect_eval("100 / 10 / 5", "2");
    expect_eval("i + n", "null");
    expect_eval("n * 2", "null");
    expect_eval("-n", "null");
    expect_eval("1 / n", "null");
    expect_eval_error("i / 0", "in 'i / 0': division by zero");
    expect_eval_error("i % 0", "modulo by zero");
    expect_eval_error("d / 0.0", "division by zero");
    expect_eval_error("9223372036854775807 + 1", "integer overflow in 9223372036854775807 + 1");
    expect_eval_error("-9223372036854775807 - 2", "integer overflow");
    expect_eval_error("4611686018427387904 * 2", "integer overflow");
    expect_eval_error("(-9223372036854775807 - 1) / -1", "integer overflow");
    expect_eval("(-9223372036854775807 - 1) % -1", "0");
    expect_eval_error("-(-9223372036854775807 - 1)", "integer overflow");
    expect_eval_error("s + 1", "cannot apply + to string and int");
    expect_eval_error("b * 2", "cannot apply * to bool and int");
    expect_eval_error("a - 1", "cannot apply - to array and int");
    expect_eval_error("-s", "cannot negate a string");
}

static void comparisons(void **state)
{
    (void)state;
    expect_eval("i = 7", "true");
    expect_eval("i == 7", "true");
    expect_eval("i != 7", "false");
    expect_eval("i <> 8", "true");
    expect_eval("i < 8", "true");
    expect_eval("i <= 7", "true");
    expect_eval("i > 7", "false");
    expect_eval("i >= 8", "false");
    expect_eval("7 = 7.0", "true");
    expect_eval("d > 2", "true");
    expect_eval("'abc' < 'abd'", "true");
    expect_eval("'ab' < 'abc'", "true");
    expect_eval("s = 'Hello'", "true");
    expect_eval("b = TRUE", "true");
    expect_eval("b != FALSE", "true");
    expect_eval("a = a", "true");
    expect_eval("o->x = o->x", "true");
    expect_eval("i = n", "null");
    expect_eval("n = n", "null");
    expect_eval("n < 1", "null");
    expect_eval_error("i = 'x'", "cannot compare int with string");
    expect_eval_error("s > 1", "cannot compare string with int");
    expect_eval_error("b < TRUE", "values of type bool can only be compared with = and !=");
    expect_eval_error("a < a", "values of type array can only be compared with = and !=");
    expect_eval_error("b = 1", "cannot compare bool with int");
    expect_eval("1 < 2 = TRUE", "true"); /* comparisons associate to the left */
}

static void logic_and_null(void **state)
{
    (void)state;
    expect_eval("TRUE AND TRUE", "true");
    expect_eval("TRUE AND FALSE", "false");
    expect_eval("NULL AND FALSE", "false");
    expect_eval("FALSE AND NULL", "false");
    expect_eval("NULL AND TRUE", "null");
    expect_eval("TRUE AND NULL", "null");
    expect_eval("NULL OR TRUE", "true");
    expect_eval("TRUE OR NULL", "true");
    expect_eval("NULL OR FALSE", "null");
    expect_eval("FALSE OR FALSE", "false");
    expect_eval("NOT TRUE", "false");
    expect_eval("NOT NULL", "null");
    expect_eval("NOT NOT b", "true");
    expect_eval("NOT i = 7", "false");              /* NOT binds looser than = */
    expect_eval("TRUE OR FALSE AND FALSE", "true"); /* AND binds tighter than OR */
    expect_eval("FALSE AND 1", "false");            /* stops before the right side */
    expect_eval("TRUE OR 1", "true");
    expect_eval_error("TRUE AND 1", "AND needs a boolean, got int");
    expect_eval_error("i OR TRUE", "OR needs a boolean, got int");
    expect_eval_error("NOT s", "NOT needs a boolean, got string");
    expect_eval("n IS NULL", "true");
    expect_eval("missing IS NULL", "true");
    expect_eval("i IS NULL", "false");
    expect_eval("i IS NOT NULL", "true");
    expect_eval("n IS NOT NULL", "false");
}

static void in_like_between_case(void **state)
{
    (void)state;
    expect_eval("i IN (1, 7, 9)", "true");
    expect_eval("i IN (1, 2)", "false");
    expect_eval("i NOT IN (1, 2)", "true");
    expect_eval("i IN (1, n)", "null");
    expect_eval("i IN (n, 7)", "true");
    expect_eval("n IN (1, 2)", "null");
    expect_eval("i NOT IN (1, n)", "null");
    expect_eval("s IN ('a', 'Hello')", "true");
    expect_eval("i IN (i - 1, i + 1, i * 1)", "true");
    expect_eval_error("i IN ('a')", "cannot compare int with string");

    expect_eval("s LIKE 'He%'", "true");
    expect_eval("s LIKE '%llo'", "true");
    expect_eval("s LIKE 'H_llo'", "true");
    expect_eval("s LIKE 'H_lo'", "false");
    expect_eval("s LIKE '%l%l%'", "true");
    expect_eval("s LIKE 'hello'", "false"); /* case-sensitive */
    expect_eval("s NOT LIKE 'x%'", "true");
    expect_eval("'' LIKE '%'", "true");
    expect_eval("'' LIKE '_'", "false");
    expect_eval("'héllo' LIKE 'h_llo'", "true"); /* _ is one character */
    expect_eval("'100%' LIKE '100\\%'", "true");
    expect_eval("'1000' LIKE '100\\%'", "false");
    expect_eval("'a_b' LIKE 'a!_b' ESCAPE '!'", "true");
    expect_eval("'axb' LIKE 'a!_b' ESCAPE '!'", "false");
    expect_eval("'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaab' LIKE '%a%a%a%a%a%a%a%a%c'", "false");
    expect_eval("n LIKE 'a'", "null");
    expect_eval("s LIKE n", "null");
    expect_eval_error("i LIKE '7'", "LIKE needs strings, got int");
    expect_eval_error("s LIKE 'a' ESCAPE 'ab'", "ESCAPE needs one character, got 'ab'");

    expect_eval("i BETWEEN 1 AND 10", "true");
    expect_eval("i BETWEEN 8 AND 10", "false");
    expect_eval("i NOT BETWEEN 8 AND 10", "true");
    expect_eval("i BETWEEN 7 AND 7", "true");
    expect_eval("i BETWEEN n AND 10", "null");
    expect_eval("i BETWEEN n AND 5", "false");
    expect_eval("i BETWEEN 1 AND 10 AND b", "true");

    expect_eval("CASE WHEN i > 5 THEN 'big' ELSE 'small' END", "\"big\"");
    expect_eval("CASE WHEN i > 50 THEN 'big' WHEN i > 5 THEN 'mid' END", "\"mid\"");
    expect_eval("CASE WHEN i > 50 THEN 'big' END", "null");
    expect_eval("CASE WHEN n THEN 1 ELSE 2 END", "2");
    expect_eval("CASE i WHEN 1 THEN 'one' WHEN 7 THEN 'seven' ELSE 'many' END", "\"seven\"");
    expect_eval("CASE n WHEN n THEN 'null matches' ELSE 'never' END", "\"never\"");
    expect_eval("CASE s WHEN 'x' THEN 1 END", "null");
    expect_eval_error("CASE WHEN i THEN 1 END", "CASE WHEN needs a boolean, got int");
    expect_eval_error("CASE i WHEN 'x' THEN 1 END", "cannot compare int with string");
}

static void fields_and_indexes(void **state)
{
    (void)state;
    expect_eval("o->x->y", "5");
    expect_eval("o->k", "\"v\"");
    expect_eval("o->`k`", "\"v\"");
    expect_eval("o->missing", "null");
    expect_eval("o->missing->deeper", "null");
    expect_eval("n->x", "null");
    expect_eval("self->i", "7");
    expect_eval("self->o->x", "{\"y\":5}");
    expect_eval("a[0]", "1");
    expect_eval("a[2]", "3");
    expect_eval("a[-1]", "3");
    expect_eval("a[-3]", "1");
    expect_eval("a[3]", "null");
    expect_eval("a[-4]", "null");
    expect_eval("a[n]", "null");
    expect_eval("n[0]", "null");
    expect_eval("a[i - 6]", "2");
    expect_eval("parse_json('[{\"label\":\"cat\"}]')[0]->label", "\"cat\"");
    expect_eval("parse_json('{\"a\":[10,20]}')->a[-1]", "20");
    expect_eval_error("s->x", "cannot use -> on a string");
    expect_eval_error("i->x", "cannot use -> on a int");
    expect_eval_error("a->x", "cannot use -> on a array");
    expect_eval_error("s[0]", "cannot index a string");
    expect_eval_error("o[0]", "cannot index a object");
    expect_eval_error("a['x']", "an index must be an integer, got string");
    expect_eval_error("a[1.0]", "an index must be an integer, got double");
}

/* ---- built-in functions ---------------------------------------------------------------- */

static void math_functions(void **state)
{
    (void)state;
    expect_eval("abs(-3)", "3");
    expect_eval("ABS(-2.5)", "2.5");
    expect_eval_error("abs(-9223372036854775807 - 1)", "abs: integer overflow");
    expect_eval_error("abs('x')", "in 'abs('x')': abs: argument 1 must be a number, got string");
    expect_eval("ceil(1.2)", "2.0");
    expect_eval("ceil(4)", "4");
    expect_eval("floor(-1.2)", "-2.0");
    expect_eval("floor(4)", "4");
    expect_eval("round(2.5)", "3.0");
    expect_eval("round(-2.5)", "-3.0");
    expect_eval("round(3.14159, 2)", "3.14");
    expect_eval("round(1250, -2)", "1300.0");
    expect_eval("round(7, 1)", "7");
    expect_eval_error("round(1.5, 'x')", "round: argument 2 must be an integer, got string");
    expect_eval("sqrt(16)", "4.0");
    expect_eval_error("sqrt(-1)", "sqrt: argument 1 must not be negative, got -1");
    expect_eval_error("sqrt(s)", "sqrt: argument 1 must be a number, got string");
    expect_eval("power(2, 10)", "1024.0");
    expect_eval("mod(7, 3)", "1");
    expect_eval("mod(7.5, 2)", "1.5");
    expect_eval_error("mod(7, 0)", "mod: modulo by zero");
    expect_eval_error("mod('7', 2)", "mod: argument 1 must be a number, got string");
    expect_eval("exp(0)", "1.0");
    expect_eval("ln(1)", "0.0");
    expect_eval_error("ln(0)", "ln: argument 1 must be positive, got 0");
    expect_eval("log(1000)", "3.0");
    expect_eval("log(2, 8)", "3.0");
    expect_eval_error("log(1, 8)", "log: argument 1 (the base) must be positive and not 1, got 1");
    expect_eval_error("log(2, -8)", "log: argument 2 must be positive, got -8");
    expect_eval_error("log(-1)", "log: argument 1 must be positive");
    assert_true(fabs(eval_double("sin(pi() / 2)") - 1) < 1e-12);
    assert_true(fabs(eval_double("cos(pi())") + 1) < 1e-12);
    assert_true(fabs(eval_double("tan(pi() / 4)") - 1) < 1e-12);
    assert_true(fabs(eval_double("asin(1)") - M_PI / 2) < 1e-12);
    assert_true(fabs(eval_double("acos(1)")) < 1e-12);
    assert_true(fabs(eval_double("atan(1)") - M_PI / 4) < 1e-12);
    assert_true(fabs(eval_double("atan2(1, 1)") - M_PI / 4) < 1e-12);
    assert_true(fabs(eval_double("pi()") - M_PI) < 1e-15);
    expect_eval_error("asin(2)", "asin: argument 1 must be between -1 and 1, got 2");
    for (int k = 0; k < 50; k++) {
        double r = eval_double("rand()");
        assert_true(r >= 0 && r < 1);
    }
    expect_eval("sign(-4)", "-1");
    expect_eval("sign(0.0)", "0");
    expect_eval("sign(d)", "1");
    expect_eval("sqrt(n)", "null");
    expect_eval("power(2, n)", "null");
    expect_eval_error("pi(1)", "function 'pi' takes 0 arguments, got 1");
    expect_eval_error("sqrt()", "function 'sqrt' takes 1 argument, got 0");
    expect_eval_error("round(1, 2, 3)", "function 'round' takes 1 to 2 arguments, got 3");
    /* the seed engine's bit, hyperbolic, angle and trunc functions */
    expect_eval("bitand(12, 10)", "8");
    expect_eval("bitor(12, 10)", "14");
    expect_eval("bitxor(12, 10)", "6");
    expect_eval("bitnot(12)", "-13");
    expect_eval("bitand(i, n)", "null");
    expect_eval_error("bitand(1.5, 1)", "bitand: argument 1 must be an integer, got double");
    expect_eval_error("bitnot('x')", "bitnot: argument 1 must be an integer, got string");
    expect_eval("cosh(0)", "1.0");
    expect_eval("sinh(0)", "0.0");
    expect_eval("tanh(0)", "0.0");
    assert_true(fabs(eval_double("tanh(1)") - tanh(1)) < 1e-15);
    expect_eval("degrees(pi())", "180.0");
    assert_true(fabs(eval_double("radians(180)") - M_PI) < 1e-15);
    expect_eval("trunc(3.14159, 2)", "3.14");
    expect_eval("trunc(-3.789, 1)", "-3.7");
    expect_eval("trunc(1299, -2)", "1200.0");
    expect_eval("trunc(7, 1)", "7");
    expect_eval_error("trunc(1.5, 0.5)", "trunc: argument 2 must be an integer, got double");
    expect_eval_error("trunc(1.5)", "function 'trunc' takes 2 arguments, got 1");
}

static void string_functions(void **state)
{
    (void)state;
    expect_eval("concat('a', 'b', 'c')", "\"abc\"");
    expect_eval("concat(s, '-', i, '-', d, '-', b)", "\"Hello-7-2.5-true\"");
    expect_eval("concat('x', n)", "null");
    expect_eval_error("concat('x', a)",
                      "concat: argument 2 must be a string, number or bool, got array");
    expect_eval_error("concat()", "function 'concat' takes at least 1 argument, got 0");
    expect_eval("lower(s)", "\"hello\"");
    expect_eval("upper('héllo')", "\"HéLLO\"");
    expect_eval("length('héllo')", "5");
    expect_eval("length('')", "0");
    expect_eval_error("length(a)", "length: argument 1 must be a string, got array");
    expect_eval("trim('  x y \\t')", "\"x y\"");
    expect_eval("ltrim('  x ')", "\"x \"");
    expect_eval("rtrim('  x ')", "\"  x\"");
    expect_eval("substring(s, 1)", "\"ello\"");
    expect_eval("substring(s, 1, 3)", "\"el\"");
    expect_eval("substring(s, 3, 100)", "\"lo\"");
    expect_eval("substring(s, 10)", "\"\"");
    expect_eval("substring(s, 3, 1)", "\"\"");
    expect_eval("substring('héllo', 1, 2)", "\"é\"");
    expect_eval_error("substring(s, -1)", "substring: argument 2 must not be negative");
    expect_eval_error("substring(s, 'a')", "substring: argument 2 must be an integer, got string");
    expect_eval("startswith(s, 'He')", "true");
    expect_eval("startswith(s, 'he')", "false");
    expect_eval("endswith(s, 'llo')", "true");
    expect_eval("endswith('lo', 'hello')", "false");
    expect_eval("indexof(s, 'l')", "2");
    expect_eval("indexof('héllo', 'l')", "2");
    expect_eval("indexof(s, 'z')", "-1");
    expect_eval("replace('a.b.c', '.', '::')", "\"a::b::c\"");
    expect_eval("replace(s, '', 'x')", "\"Hello\"");
    expect_eval("replace('aaa', 'aa', 'b')", "\"ba\"");
    expect_eval("split_value('a/b/c', '/', 0)", "\"a\"");
    expect_eval("split_value('a/b/c', '/', 2)", "\"c\"");
    expect_eval("split_value('a//c', '/', 1)", "\"\"");
    expect_eval_error("split_value('a/b/c', '/', 3)",
                      "split_value: index 3 is out of range (3 parts)");
    expect_eval_error("split_value('a/b', '', 0)", "split_value: the separator is empty");
    expect_eval_error("split_value('a/b', '/', -1)",
                      "split_value: argument 3 must not be negative");
    expect_eval("lpad('x', 2)", "\"  x\"");
    expect_eval("rpad('x', 3)", "\"x   \"");
    expect_eval_error("lpad('x', -1)", "lpad: argument 2 must be between 0 and 1048576, got -1");
    expect_eval("reverse('abc')", "\"cba\"");
    expect_eval("reverse('héllo')", "\"olléh\"");
    expect_eval("numbytes('héllo')", "6");
    expect_eval("chr(65)", "\"A\"");
    expect_eval("chr(233)", "\"é\"");
    expect_eval("chr(8364)", "\"€\"");
    expect_eval("chr(128512)", "\"\xf0\x9f\x98\x80\"");
    expect_eval_error("chr(55296)", "chr: 55296 is not a Unicode code point");
    expect_eval_error("chr(-1)", "chr: -1 is not a Unicode code point");
    expect_eval("regexp_matches('abc123', '[0-9]+')", "true");
    expect_eval("regexp_matches('abc', '^b')", "false");
    expect_eval("regexp_matches('abc123', '\\d{3}$')", "true");
    expect_eval("regexp_matches('a b', 'a\\sb')", "true");
    expect_eval("regexp_matches('ab', '\\W')", "false");
    expect_eval("regexp_substr('abc123def45', '[0-9]+')", "\"123\"");
    expect_eval("regexp_substr('abc', '\\d')", "\"\"");
    expect_eval("regexp_substr('x=1;y=22', '[\\d]+;')", "\"1;\"");
    expect_eval("regexp_replace('a1b22c333', '[0-9]+', '#')", "\"a#b#c#\"");
    expect_eval("regexp_replace('john smith', '([a-z]+) ([a-z]+)', '$2, $1')",
                "\"smith, john\"");
    expect_eval("regexp_replace('cost 5', '([0-9])', '$$$1')", "\"cost $5\"");
    expect_eval("regexp_replace('abc', 'x*', '-')", "\"-a-b-c-\"");
    expect_eval("regexp_replace('abc', 'b*', '-')", "\"-a-c-\"");
    expect_eval("regexp_replace('', 'x*', '-')", "\"-\"");
    expect_eval("regexp_replace('^^', '^', 'x')", "\"x^^\"");
    expect_eval("regexp_matches(n, 'a')", "null");
    expect_eval_error("regexp_matches('a', '(')",
                      "regexp_matches: bad regular expression '(': ");
    expect_eval_error("regexp_matches('aa', '(a)\\1')",
                      "regexp_matches: back-references (\\1) are not supported");
    expect_eval_error("regexp_matches('a', '((a{50}){50}){50}')",
                      "regexp_matches: at most 2 bounded repetitions {n,m} of at most 100");
    expect_eval_error("regexp_matches('a', 'a{101}')", "of at most 100 are supported");
    expect_eval("regexp_matches('aaa', '^a{2,3}$')", "true");
    expect_eval_error("regexp_matches('a', 'x{2,3}++')", "repetition operators in a row");
    expect_eval_error("regexp_matches('a', 'a*?')", "repetition operators in a row");
    expect_eval("regexp_matches('xx', '^((((x+)+)+)+)+$')", "true");
    expect_eval_error("regexp_matches('x', '(((((x+)+)+)+)+)+')",
                      "at most 4 groups repeated with + are supported");
    expect_eval("regexp_matches('a*+', '[*+]{2}')", "true");
    expect_eval("regexp_matches('a{', 'a\\{')", "true");
    expect_eval_error("regexp_matches(1, 'a')",
                      "regexp_matches: argument 1 must be a string, got int");
    expect_eval_error("regexp_replace('a', 'a', 1)",
                      "regexp_replace: argument 3 must be a string, got int");
    expect_eval_error("numbytes(1)", "numbytes: argument 1 must be a string or bytes, got int");
    expect_eval("LOWER(n)", "null");
    /* each string function names itself and the argument it refuses */
    const char *bad[][2] = {
        {"lower(1)", "lower: argument 1 must be a string, got int"},
        {"upper(b)", "upper: argument 1 must be a string, got bool"},
        {"trim(a)", "trim: argument 1 must be a string, got array"},
        {"ltrim(o)", "ltrim: argument 1 must be a string, got object"},
        {"rtrim(d)", "rtrim: argument 1 must be a string, got double"},
        {"startswith(s, 1)", "startswith: argument 2 must be a string, got int"},
        {"endswith(1, s)", "endswith: argument 1 must be a string, got int"},
        {"indexof(s, a)", "indexof: argument 2 must be a string, got array"},
        {"replace(s, 'l', 1)", "replace: argument 3 must be a string, got int"},
        {"split_value(s, '/', '0')", "split_value: argument 3 must be an integer, got string"},
        {"rpad(s, 1.5)", "rpad: argument 2 must be an integer, got double"},
        {"reverse(i)", "reverse: argument 1 must be a string, got int"},
        {"substring(s, 0, 'x')", "substring: argument 3 must be an integer, got string"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        expect_eval_error(bad[k][0], bad[k][1]);
}

static void encoding_json_type_functions(void **state)
{
    (void)state;
    expect_eval("encode('hello', 'base64')", "\"aGVsbG8=\"");
    expect_eval("decode('aGVsbG8=', 'base64')", "\"aGVsbG8=\""); /* bytes write as base64 */
    expect_eval("typeof(decode('aGVsbG8=', 'base64'))", "\"bytes\"");
    expect_eval("numbytes(decode('aGVsbG8=', 'base64'))", "5");
    expect_eval("cast(decode('aGVsbG8=', 'BASE64'), 'string')", "\"hello\"");
    expect_eval_error("decode('***', 'base64')", "decode");
    expect_eval_error("encode('x', 'hex')",
                      "at line 1, column 8: encode: unsupported encoding 'hex' (only 'base64')");
    expect_eval_error("decode('x', 1)", "decode: argument 2 must be a string, got int");
    expect_eval_error("encode(1, 'base64')",
                      "encode: argument 1 must be a string or bytes, got int");

    expect_eval("to_json(o)", "\"{\\\"x\\\":{\\\"y\\\":5},\\\"k\\\":\\\"v\\\"}\"");
    expect_eval("to_json(n)", "\"null\"");
    expect_eval("to_json(a)", "\"[1,2,3]\"");
    expect_eval("parse_json('{\"k\": [1, 2.5, \"x\"]}')", "{\"k\":[1,2.5,\"x\"]}");
    expect_eval_error("parse_json('{')", "parse_json");
    expect_eval_error("parse_json(1)", "parse_json: argument 1 must be a string, got int");
    expect_eval("json_path_query(o, 'x.y')", "5");
    expect_eval("json_path_query(self, '$.a[1]')", "2");
    expect_eval("json_path_query(self, 'a[-1]')", "3");
    expect_eval("json_path_query(self, '$.o.k')", "\"v\"");
    expect_eval("json_path_query(self, 'o.nope.x')", "null");
    expect_eval("json_path_query(self, 'a[9]')", "null");
    expect_eval("json_path_query(self, '$')", MSG);
    expect_eval_error("json_path_query(self, 'a[x]')",
                      "json_path_query: bad index at '[x]' in path 'a[x]'");
    expect_eval_error("json_path_query(self, 'a..b')",
                      "json_path_query: empty field name in path 'a..b'");
    expect_eval_error("json_path_query(self, 'a[0]b')",
                      "json_path_query: expected '.' or '[' at 'b' in path 'a[0]b'");
    expect_eval("object_keys(o)", "[\"x\",\"k\"]");
    expect_eval_error("object_keys(a)", "object_keys: argument 1 must be an object, got array");
    expect_eval("cardinality(a)", "3");
    expect_eval("cardinality(parse_json('[]'))", "0");
    expect_eval_error("cardinality(s)", "cardinality: argument 1 must be an array, got string");

    expect_eval("cast('42', 'bigint')", "42");
    expect_eval("cast(3.9, 'BIGINT')", "3");
    expect_eval("cast(TRUE, 'bigint')", "1");
    expect_eval_error("cast('4x', 'bigint')", "cast: cannot convert string '4x' to bigint");
    expect_eval_error("cast(1e30, 'bigint')", "cast: 1e+30 is out of bigint's range");
    expect_eval_error("cast(a, 'bigint')", "cast: cannot convert array to bigint");
    expect_eval("cast(i, 'float')", "7.0");
    expect_eval("cast('2.5', 'float')", "2.5");
    expect_eval_error("cast('x', 'float')", "cast: cannot convert string 'x' to float");
    expect_eval("cast(i, 'string')", "\"7\"");
    expect_eval("cast(d, 'string')", "\"2.5\"");
    expect_eval("cast(b, 'string')", "\"true\"");
    expect_eval("cast(a, 'string')", "\"[1,2,3]\"");
    expect_eval("cast('TRUE', 'boolean')", "true");
    expect_eval("cast('0', 'boolean')", "false");
    expect_eval("cast(0.0, 'boolean')", "false");
    expect_eval("cast(3, 'boolean')", "true");
    expect_eval_error("cast('maybe', 'boolean')", "cast: cannot convert string 'maybe' to boolean");
    expect_eval("typeof(cast('aGk=', 'bytea'))", "\"bytes\"");
    expect_eval_error("cast(1, 'bytea')", "cast: cannot convert int to bytea");
    expect_eval("cast(n, 'bigint')", "null");
    expect_eval_error("cast(1, 'int128')",
                      "at line 1, column 8: cast: unknown type 'int128' (bigint, float, string, "
                      "boolean or bytea)");
    expect_eval_error("cast(1, s)", "cast: unknown type 'Hello'");
    expect_eval("isnull(n)", "true");
    expect_eval("isnull(missing)", "true");
    expect_eval("isnull(0)", "false");
    expect_eval("coalesce(n, missing, 3, 4)", "3");
    expect_eval("coalesce(n)", "null");
    const char *types[][2] = {{"n", "\"null\""},   {"b", "\"bool\""},   {"i", "\"int\""},
                              {"d", "\"double\""}, {"s", "\"string\""}, {"a", "\"array\""},
                              {"o", "\"object\""}};
    for (size_t k = 0; k < 7; k++) {
        char expr[32];
        snprintf(expr, sizeof expr, "typeof(%s)", types[k][0]);
        expect_eval(expr, types[k][1]);
    }
}

static void time_hash_id_functions(void **state)
{
    (void)state;
    double before = eval_double("now()");
    assert_true(before > 1.6e12); /* after 2020: milliseconds since the epoch */
    double other = eval_double("unix_ts_ms()");
    assert_true(other >= before);
    expect_eval("format_time(0, 'yyyy-MM-dd HH:mm:ss')", "\"1970-01-01 00:00:00\"");
    expect_eval("format_time(1714564800250, 'yyyy-MM-dd''T''HH:mm:ss.SSS')",
                "\"2024-05-01T12:00:00.250\"");
    expect_eval("format_time(1714564800250, 'yyyy/MM/dd')", "\"2024/05/01\"");
    expect_eval("format_time(1709251199999, 'dd.MM.yy H:m:s SSS')", "\"29.02.24 23:59:59 999\"");
    expect_eval("format_time(-1, 'yyyy-MM-dd HH:mm:ss.SSS')", "\"1969-12-31 23:59:59.999\"");
    expect_eval("format_time(0, 'd/M ''o''''clock''')", "\"1/1 o'clock\"");
    expect_eval("format_time(0, '''''')", "\"'\"");
    expect_eval_error("format_time('x', 'yyyy')",
                      "format_time: argument 1 must be an integer, got string");

    expect_eval("md5('')", "\"d41d8cd98f00b204e9800998ecf8427e\"");
    expect_eval("md5('The quick brown fox jumps over the lazy dog')",
                "\"9e107d9d372bb6826bd81d3542a419d6\"");
    expect_eval("sha256('')",
                "\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"");
    expect_eval("sha256('abc')",
                "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"");
    /* 56 bytes: the padding needs a second block */
    expect_eval("sha256('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')",
                "\"248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1\"");
    expect_eval("md5(decode('aGVsbG8=', 'base64')) = md5('hello')", "true");
    expect_eval("sha1('abc')", "\"a9993e364706816aba3e25717850c26c9cd0d89d\"");
    expect_eval("sha384('abc')", "\"cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5b"
                                 "ed8086072ba1e7cc2358baeca134c825a7\"");
    expect_eval("sha512('abc')", "\"ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d3"
                                 "9a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f\"");
    expect_eval_error("sha256(1)", "sha256: argument 1 must be a string or bytes, got int");

    char *u1 = eval_msg("newuuid()", "{}"), *u2 = eval_msg("newuuid()", "{}");
    assert_int_equal(strlen(u1), 38); /* quoted */
    assert_int_equal(u1[9], '-');
    assert_int_equal(u1[15], '4'); /* version 4 */
    assert_true(strchr("89ab", u1[20]) != NULL);
    assert_string_not_equal(u1, u2);
    free(u1);
    free(u2);
}

/* ---- messages, names, bytes ------------------------------------------------------------ */

/* The seed engine's rows: NULL columns left out (unless sendNilField),
 * unnamed ones kuiper_field_N from 0, event_time() the message's time (a
 * group's last). */
static void nil_columns_names_and_event_time(void **state)
{
    (void)state;
    sql_query *q = bound("SELECT color, ts, size * 5, 'x', event_time() FROM s", NULL, NULL, NULL);
    sql_query_omit_nil(q, true);
    sql_run *r = run_of(q);
    expect_push(r, "{\"ts\":7}", 1234,
                "[{\"ts\":7,\"kuiper_field_1\":\"x\",\"event_time\":1234}]");
    expect_push(r, "{\"color\":\"red\",\"ts\":8,\"size\":3}", 99,
                "[{\"color\":\"red\",\"ts\":8,\"kuiper_field_0\":15,\"kuiper_field_1\":"
                "\"x\",\"event_time\":99}]");
    sql_run_free(r);
    sql_query_omit_nil(q, false); /* sendNilField */
    r = run_of(q);
    expect_push(r, "{\"ts\":7}", 5,
                "[{\"color\":null,\"ts\":7,\"kuiper_field_0\":null,\"kuiper_field_1\":\"x\","
                "\"event_time\":5}]");
    sql_run_free(r);
    sql_query_free(q);

    q = bound("SELECT count(*) AS n, event_time() AS t FROM s GROUP BY COUNTWINDOW(2)", NULL, NULL,
              NULL);
    r = run_of(q);
    expect_push(r, "{}", 10, "[]");
    expect_push(r, "{}", 20, "[{\"n\":2,\"t\":20}]");
    sql_run_free(r);
    sql_query_free(q);
    q = bound("SELECT event_time() AS t FROM s GROUP BY COUNTWINDOW(2)", NULL, NULL, NULL);
    r = run_of(q);
    expect_push(r, "{}", 10, "[]");
    expect_push(r, "{}", 20, "[{\"t\":10},{\"t\":20}]");
    sql_run_free(r);
    sql_query_free(q);
}

/* The seed engine's aliases: an item names another's alias, before or
 * after it, and the alias wins over a column; its value is computed once
 * per row (a random id is the same twice); a cycle is refused. */
static void aliases_in_select(void **state)
{
    (void)state;
    sql_query *q = bound("select size + 1 as size, size + 1 as b from s", NULL, NULL, NULL);
    sql_run *r = run_of(q);
    expect_push(r, "{\"size\":3}", 0, "[{\"size\":4,\"b\":5}]");
    sql_run_free(r);
    sql_query_free(q);

    q = bound("select a + 1 as b, size as a from s", NULL, NULL, NULL);
    r = run_of(q);
    expect_push(r, "{\"size\":3}", 0, "[{\"b\":4,\"a\":3}]");
    sql_run_free(r);
    sql_query_free(q);

    q = bound("SELECT newuuid() AS id, id AS again, concat(id, '') = again AS same FROM s", NULL,
              NULL, NULL);
    r = run_of(q);
    char *got = push_json(r, "{}", 0);
    assert_non_null(strstr(got, "\"same\":true"));
    free(got);
    sql_run_free(r);
    sql_query_free(q);

    /* In a window: an alias of an aggregate. */
    q = bound("SELECT count(*) AS n, n * 10 AS tens FROM s GROUP BY COUNTWINDOW(2)", NULL, NULL,
              NULL);
    r = run_of(q);
    expect_push(r, "{}", 1, "[]");
    expect_push(r, "{}", 2, "[{\"n\":2,\"tens\":20}]");
    sql_run_free(r);
    sql_query_free(q);

    bind_fails("SELECT b + 1 AS a, a + 1 AS b FROM s", NULL, NULL, NULL,
               "at line 1, column 20: alias 'a' refers back to itself through the other aliases");
    /* a chain is bounded (evaluation follows it by recursion): 32 hops pass */
    char sql[1024] = "SELECT ";
    for (int i = 0; i < 40; i++)
        snprintf(sql + strlen(sql), sizeof sql - strlen(sql), "a%d AS a%d, ", i + 1, i);
    strcat(sql, "1 AS a40 FROM s");
    q = parse_ok(sql);
    inferd_error err = {0};
    assert_int_equal(sql_query_bind(q, NULL, NULL, NULL, &err), INFERD_EINVAL);
    assert_non_null(strstr(err.message, "aliases chain more than 32 deep at 'a33'"));
    sql_query_free(q);
    strcpy(sql, "SELECT ");
    for (int i = 0; i < 32; i++)
        snprintf(sql + strlen(sql), sizeof sql - strlen(sql), "a%d + 1 AS a%d, ", i + 1, i);
    strcat(sql, "1 AS a32 FROM s");
    q = bound(sql, NULL, NULL, NULL);
    r = run_of(q);
    got = push_json(r, "{}", 0);
    assert_non_null(strstr(got, "\"a0\":33,"));
    free(got);
    sql_run_free(r);
    sql_query_free(q);
}

static void select_star_self_and_names(void **state)
{
    (void)state;
    /* `i` in `renamed` is the alias i (i * 2), as the seed engine reads it. */
    sql_query *q = bound("SELECT *, i AS renamed, i * 2 AS i FROM s", NULL, NULL, NULL);
    sql_run *r = run_of(q);
    expect_push(r, "{\"i\":1,\"j\":2}", 0, "[{\"i\":2,\"j\":2,\"renamed\":2}]");
    sql_run_free(r);
    sql_query_free(q);

    q = bound("SELECT i, o->x->y, abs(i), i + 1, self->j, upper(s) AS `S`, 'lit', self FROM s",
              NULL, NULL, NULL);
    r = run_of(q);
    expect_push(r, "{\"i\":-1,\"o\":{\"x\":{\"y\":3}},\"j\":4,\"s\":\"a\"}", 0,
                "[{\"i\":-1,\"y\":3,\"abs\":1,\"kuiper_field_0\":0,\"j\":4,\"S\":\"A\",\"kuiper_field_1\":\"lit\","
                "\"self\":{\"i\":-1,\"o\":{\"x\":{\"y\":3}},\"j\":4,\"s\":\"a\"}}]");
    sql_run_free(r);
    sql_query_free(q);

    bind_fails("SELECT a, b AS a FROM s", NULL, NULL, NULL,
               "at line 1, column 11: duplicate output name 'a' (rename one with AS)");
    bind_fails("SELECT x->a, y->a FROM s", NULL, NULL, NULL,
               "at line 1, column 14: duplicate output name 'a' (rename one with AS)");
    bind_fails("SELECT abs(1), abs(2) FROM s", NULL, NULL, NULL,
               "at line 1, column 16: duplicate output name 'abs' (rename one with AS)");

    /* bytes: only self and * name the message; a column is NULL */
    q = bound("SELECT self, *, numbytes(self) AS size, x FROM s", NULL, NULL, NULL);
    r = run_of(q);
    inferd_value *msg = inferd_value_bytes("\x01\x02\x03", 3), *rows = inferd_value_array();
    inferd_error err = {0};
    assert_int_equal(sql_run_push(r, msg, 0, rows, &err), INFERD_OK);
    char *got = to_json(rows);
    assert_string_equal(got, "[{\"self\":\"AQID\",\"size\":3,\"x\":null}]");
    free(got);
    const inferd_value *self = inferd_value_object_get(inferd_value_array_get(rows, 0), "self");
    assert_true(inferd_value_is(self, INFERD_VALUE_BYTES));
    inferd_value_free(rows);
    inferd_value_free(msg);
    sql_run_free(r);
    sql_query_free(q);

    /* WHERE: TRUE only */
    q = bound("SELECT i FROM s WHERE i > 1", NULL, NULL, NULL);
    r = run_of(q);
    expect_push(r, "{\"i\":2}", 0, "[{\"i\":2}]");
    expect_push(r, "{\"i\":1}", 0, "[]");
    expect_push(r, "{\"i\":null}", 0, "[]");
    expect_push(r, "{}", 0, "[]");
    expect_push(r, "{\"i\":\"x\"}", 0, "error: in WHERE 'i > 1': cannot compare string with int");
    sql_run_free(r);
    sql_query_free(q);

    q = bound("SELECT i FROM s WHERE i", NULL, NULL, NULL);
    r = run_of(q);
    expect_push(r, "{\"i\":3}", 0, "error: in WHERE 'i': WHERE needs a boolean, got int");
    expect_push(r, "{\"i\":true}", 0, "[{\"i\":true}]");
    sql_run_free(r);
    sql_query_free(q);
}

static void schema_binding(void **state)
{
    (void)state;
    sql_stream_def *d = NULL;
    inferd_error err = {0};
    assert_int_equal(sql_parse_stream("CREATE STREAM demo (temp FLOAT, dev STRING)", &d, &err),
                     INFERD_OK);
    sql_query *q = bound("SELECT temp, dev, self->other FROM demo WHERE temp > 1", d, NULL, NULL);
    sql_query_free(q);
    bind_fails("SELECT temp, humidity FROM demo", d, NULL, NULL,
               "at line 1, column 14: unknown column 'humidity' in stream 'demo'");
    bind_fails("SELECT temp FROM demo WHERE\n  Dev = 'x'", d, NULL, NULL,
               "at line 2, column 3: unknown column 'Dev' in stream 'demo'");
    sql_stream_def_free(d);
    /* schemaless: unknown columns are NULL when the query runs */
    q = bound("SELECT humidity FROM demo", NULL, NULL, NULL);
    sql_run *r = run_of(q);
    expect_push(r, "{\"temp\":1}", 0, "[{\"humidity\":null}]");
    sql_run_free(r);
    /* bound once only; a run needs a bound query */
    assert_int_equal(sql_query_bind(q, NULL, NULL, NULL, &err), INFERD_ESTATE);
    sql_query_free(q);
    q = parse_ok("SELECT a FROM s");
    assert_int_equal(sql_run_new(q, &r, &err), INFERD_ESTATE);
    assert_null(r);
    sql_query_free(q);
}

static void aggregate_placement(void **state)
{
    (void)state;
    bind_fails("SELECT count(*) FROM s", NULL, NULL, NULL,
               "at line 1, column 8: aggregate function 'count' needs a window (GROUP BY "
               "TUMBLINGWINDOW(...), ...)");
    bind_fails("SELECT window_start() FROM s", NULL, NULL, NULL,
               "at line 1, column 8: function 'window_start' needs a window (GROUP BY "
               "TUMBLINGWINDOW(...), ...)");
    bind_fails("SELECT sum(count(*)) FROM s GROUP BY COUNTWINDOW(2)", NULL, NULL, NULL,
               "at line 1, column 12: aggregate function 'count' cannot be nested in another "
               "aggregate ('sum')");
    bind_fails("SELECT a FROM s WHERE count(*) > 1 GROUP BY COUNTWINDOW(2)", NULL, NULL, NULL,
               "at line 1, column 23: aggregate function 'count' is not allowed in WHERE");
    bind_fails("SELECT count(*) FROM s GROUP BY max(a), COUNTWINDOW(2)", NULL, NULL, NULL,
               "at line 1, column 33: aggregate function 'max' is not allowed in GROUP BY");
    bind_fails("SELECT abs(*) FROM s", NULL, NULL, NULL,
               "at line 1, column 12: '*' is only allowed in count(*) and collect(*)");
    bind_fails("SELECT TUMBLINGWINDOW(ss, 1) FROM s", NULL, NULL, NULL,
               "at line 1, column 8: TUMBLINGWINDOW is a window: it belongs in GROUP BY");
    bind_fails("SELECT nosuch(1) FROM s", NULL, NULL, NULL,
               "at line 1, column 8: unknown function 'nosuch'");
    bind_fails("SELECT sum(a, b) FROM s GROUP BY COUNTWINDOW(2)", NULL, NULL, NULL,
               "at line 1, column 8: function 'sum' takes 1 argument, got 2");
}

/* ---- resolved functions ------------------------------------------------------------------- */

typedef struct test_plugins {
    int resolves, calls, validates;
} test_plugins;

static inferd_status fn_counter(void *ctx, const inferd_value *const *args, size_t n,
                                inferd_value **result, inferd_error *err)
{
    test_plugins *t = ctx;
    t->calls++;
    *result = inferd_value_int(t->calls);
    return INFERD_OK;
}

static inferd_status fn_twice(void *ctx, const inferd_value *const *args, size_t n,
                              inferd_value **result, inferd_error *err)
{
    ((test_plugins *)ctx)->calls++;
    if (inferd_value_is(args[0], INFERD_VALUE_NULL)) /* plugins see NULL arguments */
        return (*result = inferd_value_string("got null")) ? INFERD_OK : INFERD_ENOMEM;
    int64_t v;
    if (inferd_value_get_int(args[0], &v, err))
        return inferd_error_set(err, INFERD_EPLUGIN, "twice wants an int");
    *result = inferd_value_int(2 * v);
    return INFERD_OK;
}

static inferd_status fn_nothing(void *ctx, const inferd_value *const *args, size_t n,
                                inferd_value **result, inferd_error *err)
{
    *result = NULL; /* a NULL result is the NULL value */
    return INFERD_OK;
}

/* An aggregate: joins its argument's values over the group with '|'. */
static inferd_status fn_join(void *ctx, const inferd_value *const *args, size_t n,
                             inferd_value **result, inferd_error *err)
{
    ((test_plugins *)ctx)->calls++;
    assert_int_equal(n, 1);
    assert_true(inferd_value_is(args[0], INFERD_VALUE_ARRAY));
    char buf[256] = "";
    for (size_t i = 0; i < inferd_value_array_len(args[0]); i++) {
        char *j = to_json(inferd_value_array_get(args[0], i));
        if (i)
            strcat(buf, "|");
        strcat(buf, j);
        free(j);
    }
    *result = inferd_value_string(buf);
    return INFERD_OK;
}

static inferd_status validate_scale(void *ctx, const inferd_value *const *args, size_t n,
                                    inferd_error *err)
{
    ((test_plugins *)ctx)->validates++;
    if (args[1] && inferd_value_int_or(args[1], 0) <= 0)
        return inferd_error_set(err, INFERD_EINVAL, "scale: the factor must be a positive int");
    return INFERD_OK;
}

static inferd_status resolve(void *rctx, const char *name, sql_function *out, inferd_error *err)
{
    test_plugins *t = rctx;
    t->resolves++;
    *out = (sql_function){.ctx = t};
    if (strcmp(name, "counter") == 0) {
        out->call = fn_counter;
    } else if (strcmp(name, "twice") == 0) {
        out->min_args = out->max_args = 1;
        out->call = fn_twice;
    } else if (strcmp(name, "nothing") == 0) {
        out->max_args = -1;
        out->call = fn_nothing;
    } else if (strcmp(name, "join") == 0) {
        out->min_args = out->max_args = 1;
        out->aggregate = true;
        out->call = fn_join;
    } else if (strcmp(name, "scale") == 0) {
        out->min_args = out->max_args = 2;
        out->call = fn_twice;
        out->validate = validate_scale;
    } else if (strcmp(name, "sick") == 0) {
        return inferd_error_set(err, INFERD_EPLUGIN, "plugin 'p' is not running");
    } else {
        return INFERD_ENOTFOUND;
    }
    return INFERD_OK;
}

static void resolver_functions(void **state)
{
    (void)state;
    test_plugins t = {0};
    sql_query *q = bound("SELECT counter() AS c, twice(i) AS t, twice(counter()) AS tc, "
                         "nothing(1, 2, 3) AS z, twice(missing) AS tn FROM s WHERE twice(i) > 0",
                         NULL, resolve, &t);
    assert_int_equal(sql_query_function_count(q), 3);
    assert_string_equal(sql_query_function_name(q, 0), "counter");
    assert_string_equal(sql_query_function_name(q, 1), "twice");
    assert_string_equal(sql_query_function_name(q, 2), "nothing");
    assert_null(sql_query_function_name(q, 3));
    sql_run *r = run_of(q);
    /* WHERE's twice (1), counter (2), twice, counter (3), twice(3), twice(null) */
    /* calls in order: WHERE's twice (1), counter (2), twice(i) (3), counter (4) and
     * twice of it (5), twice(missing) (6); counter returns the calls so far */
    expect_push(r, "{\"i\":5}", 0, "[{\"c\":2,\"t\":10,\"tc\":8,\"z\":null,\"tn\":\"got null\"}]");
    assert_int_equal(t.calls, 6);
    /* a failing plugin: its error as it is, the expression named, the run goes on */
    expect_push(r, "{\"i\":\"x\"}", 0, "error: in WHERE 'twice(i) > 0': twice wants an int");
    expect_push(r, "{\"i\":-1}", 0, "[]"); /* calls 7 and 8 */
    expect_push(r, "{\"i\":1}", 0, "[{\"c\":10,\"t\":2,\"tc\":24,\"z\":null,\"tn\":\"got null\"}]");
    assert_int_equal(t.calls, 14);
    sql_run_free(r);
    sql_query_free(q);

    /* built-ins first: a resolver never sees their names */
    t = (test_plugins){0};
    q = bound("SELECT ABS(1), Concat('a') FROM s", NULL, resolve, &t);
    assert_int_equal(t.resolves, 0);
    assert_int_equal(sql_query_function_count(q), 0);
    sql_query_free(q);

    bind_fails("SELECT twice() FROM s", NULL, resolve, &t,
               "at line 1, column 8: function 'twice' takes 1 argument, got 0");
    bind_fails("SELECT counter(1) FROM s", NULL, resolve, &t,
               "at line 1, column 8: function 'counter' takes 0 arguments, got 1");
    bind_fails("SELECT a, nope(a) FROM s", NULL, resolve, &t,
               "at line 1, column 11: unknown function 'nope'");
    bind_fails("SELECT Twice(a) FROM s", NULL, resolve, &t,
               "at line 1, column 8: unknown function 'Twice'"); /* plugin names keep their case */
    bind_fails("SELECT sick(a) FROM s", NULL, resolve, &t,
               "at line 1, column 8: plugin 'p' is not running");
    bind_fails("SELECT twice(*) FROM s", NULL, resolve, &t,
               "at line 1, column 14: '*' is only allowed in count(*) and collect(*)");
    bind_fails("SELECT join(a) FROM s", NULL, resolve, &t,
               "at line 1, column 8: aggregate function 'join' needs a window (GROUP BY "
               "TUMBLINGWINDOW(...), ...)");
    bind_fails("SELECT join(twice(join(a))) FROM s GROUP BY COUNTWINDOW(2)", NULL, resolve, &t,
               "at line 1, column 19: aggregate function 'join' cannot be nested in another "
               "aggregate ('join')");
    t.validates = 0;
    bind_fails("SELECT scale(a, 0) FROM s", NULL, resolve, &t,
               "at line 1, column 8: scale: the factor must be a positive int");
    assert_int_equal(t.validates, 1);
    q = bound("SELECT scale(a, 3), scale(a, b) AS other FROM s", NULL, resolve, &t);
    assert_int_equal(t.validates, 3);
    sql_query_free(q);

    /* an aggregate plugin function over a window, called once per group */
    t = (test_plugins){0};
    q = bound("SELECT g, join(v) AS j, count(*) AS n FROM s GROUP BY g, COUNTWINDOW(4)", NULL,
              resolve, &t);
    r = run_of(q);
    expect_push(r, "{\"g\":1,\"v\":\"a\"}", 0, "[]");
    expect_push(r, "{\"g\":2,\"v\":10}", 1, "[]");
    expect_push(r, "{\"g\":1}", 2, "[]");
    assert_int_equal(t.calls, 0);
    expect_push(r, "{\"g\":1,\"v\":[1]}", 3,
                "[{\"g\":1,\"j\":\"\\\"a\\\"|null|[1]\",\"n\":3},{\"g\":2,\"j\":\"10\",\"n\":1}]");
    assert_int_equal(t.calls, 2);
    sql_run_free(r);
    sql_query_free(q);
}

/* ---- windows ------------------------------------------------------------------------------ */

static void tumbling_window(void **state)
{
    (void)state;
    sql_query *q = bound("SELECT count(*) AS n, sum(a) AS s, a AS last, window_start() AS ws, "
                         "window_end() AS we FROM s WHERE a > 0 GROUP BY TUMBLINGWINDOW(ss, 10)",
                         NULL, NULL, NULL);
    sql_run *r = run_of(q);
    assert_int_equal(sql_run_next_deadline(r), -1);
    expect_push(r, "{\"a\":1}", 1000, "[]");
    expect_push(r, "{\"a\":-5}", 2000, "[]"); /* WHERE drops it: not held */
    expect_push(r, "{\"a\":2}", 5000, "[]");
    assert_int_equal(sql_run_held(r), 2);
    assert_int_equal(sql_run_next_deadline(r), 10000);
    expect_tick(r, 9999, "[]");
    expect_push(r, "{\"a\":4}", 12000, "[]");
    expect_tick(r, 10000, "[{\"n\":2,\"s\":3,\"last\":2,\"ws\":0,\"we\":10000}]");
    assert_int_equal(sql_run_held(r), 1);
    assert_int_equal(sql_run_next_deadline(r), 20000);
    expect_tick(r, 15000, "[]");
    /* a late tick closes every window that ended; the empty one emits nothing */
    expect_push(r, "{\"a\":8}", 31000, "[]");
    expect_tick(r, 45000,
                "[{\"n\":1,\"s\":4,\"last\":4,\"ws\":10000,\"we\":20000},"
                "{\"n\":1,\"s\":8,\"last\":8,\"ws\":30000,\"we\":40000}]");
    assert_int_equal(sql_run_held(r), 0);
    assert_int_equal(sql_run_next_deadline(r), -1);
    expect_tick(r, 100000, "[]");
    sql_run_free(r);
    /* a clock before 0 aligns too */
    r = run_of(q);
    expect_push(r, "{\"a\":1}", -15000, "[]");
    assert_int_equal(sql_run_next_deadline(r), -10000);
    expect_tick(r, -10000, "[{\"n\":1,\"s\":1,\"last\":1,\"ws\":-20000,\"we\":-10000}]");
    expect_push(r, "{\"a\":2}", -1, "[]");
    assert_int_equal(sql_run_held(r), 1);
    sql_run_free(r); /* frees what is still held */
    sql_query_free(q);
}

static void hopping_window(void **state)
{
    (void)state;
    sql_query *q = bound("SELECT collect(a) AS c, window_start() AS ws, window_end() AS we "
                         "FROM s GROUP BY HOPPINGWINDOW(ss, 10, 5)",
                         NULL, NULL, NULL);
    sql_run *r = run_of(q);
    expect_push(r, "{\"a\":1}", 1000, "[]");
    assert_int_equal(sql_run_next_deadline(r), 5000); /* [-5000, 5000) holds it */
    expect_tick(r, 5000, "[{\"c\":[1],\"ws\":-5000,\"we\":5000}]");
    expect_push(r, "{\"a\":2}", 7000, "[]");
    assert_int_equal(sql_run_next_deadline(r), 10000);
    expect_tick(r, 10000, "[{\"c\":[1,2],\"ws\":0,\"we\":10000}]");
    assert_int_equal(sql_run_held(r), 1); /* 1 is in no later window */
    expect_push(r, "{\"a\":3}", 12000, "[]");
    expect_tick(r, 15000, "[{\"c\":[2,3],\"ws\":5000,\"we\":15000}]");
    expect_tick(r, 20000, "[{\"c\":[3],\"ws\":10000,\"we\":20000}]");
    assert_int_equal(sql_run_held(r), 0);
    assert_int_equal(sql_run_next_deadline(r), -1);
    sql_run_free(r);
    sql_query_free(q);

    /* a hop longer than the window leaves gaps */
    q = bound("SELECT collect(a) AS c FROM s GROUP BY HOPPINGWINDOW(ms, 2, 5)", NULL, NULL, NULL);
    r = run_of(q);
    expect_push(r, "{\"a\":1}", 0, "[]");
    expect_push(r, "{\"a\":2}", 1, "[]");
    expect_push(r, "{\"a\":3}", 3, "[]"); /* in no window */
    expect_push(r, "{\"a\":4}", 6, "[]");
    expect_tick(r, 100, "[{\"c\":[1,2]},{\"c\":[4]}]");
    assert_int_equal(sql_run_held(r), 0);
    sql_run_free(r);
    sql_query_free(q);
}

static void sliding_window(void **state)
{
    (void)state;
    sql_query *q =
        bound("SELECT count(*) AS n, collect(a) AS c FROM s GROUP BY SLIDINGWINDOW(ss, 10)", NULL,
              NULL, NULL);
    sql_run *r = run_of(q);
    expect_push(r, "{\"a\":1}", 1000, "[{\"n\":1,\"c\":[1]}]");
    expect_push(r, "{\"a\":2}", 5000, "[{\"n\":2,\"c\":[1,2]}]");
    expect_push(r, "{\"a\":3}", 11000, "[{\"n\":2,\"c\":[2,3]}]"); /* (1000, 11000] */
    assert_int_equal(sql_run_held(r), 2);
    assert_int_equal(sql_run_next_deadline(r), -1);
    expect_tick(r, 15000, "[]"); /* ticks only let old rows go */
    assert_int_equal(sql_run_held(r), 1);
    expect_tick(r, 30000, "[]");
    assert_int_equal(sql_run_held(r), 0);
    sql_run_free(r);
    sql_query_free(q);
}

static void count_windows(void **state)
{
    (void)state;
    sql_query *q = bound("SELECT sum(a) AS s, window_start() AS ws, window_end() AS we FROM s "
                         "GROUP BY COUNTWINDOW(3)",
                         NULL, NULL, NULL);
    sql_run *r = run_of(q);
    expect_push(r, "{\"a\":1}", 10, "[]");
    expect_push(r, "{\"a\":2}", 20, "[]");
    expect_push(r, "{\"a\":3}", 30, "[{\"s\":6,\"ws\":10,\"we\":30}]");
    assert_int_equal(sql_run_held(r), 0);
    expect_push(r, "{\"a\":4}", 40, "[]");
    expect_push(r, "{\"a\":5}", 50, "[]");
    assert_int_equal(sql_run_next_deadline(r), -1);
    expect_tick(r, 1000000, "[]"); /* time does not close count windows */
    expect_push(r, "{\"a\":6}", 60, "[{\"s\":15,\"ws\":40,\"we\":60}]");
    sql_run_free(r);
    sql_query_free(q);

    /* COUNTWINDOW(3, 2): every 2 messages, the last 3 (once 3 came) */
    q = bound("SELECT collect(a) AS c FROM s GROUP BY COUNTWINDOW(3, 2)", NULL, NULL, NULL);
    r = run_of(q);
    expect_push(r, "{\"a\":1}", 0, "[]");
    expect_push(r, "{\"a\":2}", 0, "[]"); /* only 2 so far */
    expect_push(r, "{\"a\":3}", 0, "[]");
    expect_push(r, "{\"a\":4}", 0, "[{\"c\":[2,3,4]}]");
    expect_push(r, "{\"a\":5}", 0, "[]");
    expect_push(r, "{\"a\":6}", 0, "[{\"c\":[4,5,6]}]");
    assert_int_equal(sql_run_held(r), 3);
    sql_run_free(r);
    sql_query_free(q);

    /* COUNTWINDOW(2, 1) */
    q = bound("SELECT collect(a) AS c FROM s GROUP BY COUNTWINDOW(2, 1)", NULL, NULL, NULL);
    r = run_of(q);
    expect_push(r, "{\"a\":1}", 0, "[]");
    expect_push(r, "{\"a\":2}", 0, "[{\"c\":[1,2]}]");
    expect_push(r, "{\"a\":3}", 0, "[{\"c\":[2,3]}]");
    sql_run_free(r);
    sql_query_free(q);
}

static void groups_having_and_rows(void **state)
{
    (void)state;
    sql_query *q = bound("SELECT dev, count(*) AS n, max(t) AS mx, min(t) AS mn, avg(t) AS av, "
                         "t AS last FROM s GROUP BY dev, TUMBLINGWINDOW(ms, 100) "
                         "HAVING count(*) > 1 OR dev = 'c'",
                         NULL, NULL, NULL);
    sql_run *r = run_of(q);
    expect_push(r, "{\"dev\":\"a\",\"t\":1}", 1, "[]");
    expect_push(r, "{\"dev\":\"b\",\"t\":5}", 2, "[]");
    expect_push(r, "{\"dev\":\"a\",\"t\":4}", 3, "[]");
    expect_push(r, "{\"dev\":\"c\",\"t\":2.5}", 4, "[]");
    expect_push(r, "{\"dev\":\"a\",\"t\":2}", 5, "[]");
    expect_tick(r, 100,
                "[{\"dev\":\"a\",\"n\":3,\"mx\":4,\"mn\":1,\"av\":2,\"last\":2},"
                "{\"dev\":\"c\",\"n\":1,\"mx\":2.5,\"mn\":2.5,\"av\":2.5,\"last\":2.5}]");
    sql_run_free(r);
    sql_query_free(q);

    /* GROUP BY an expression; NULL keys form their own group */
    q = bound("SELECT t % 2 AS k, count(t) AS n, sum(t) AS s FROM s "
              "GROUP BY t % 2, COUNTWINDOW(5)",
              NULL, NULL, NULL);
    r = run_of(q);
    expect_push(r, "{\"t\":1}", 0, "[]");
    expect_push(r, "{\"t\":2}", 0, "[]");
    expect_push(r, "{\"t\":null}", 0, "[]");
    expect_push(r, "{\"t\":3}", 0, "[]");
    expect_push(r, "{\"t\":4}", 0,
                "[{\"k\":1,\"n\":2,\"s\":4},{\"k\":0,\"n\":2,\"s\":6},"
                "{\"k\":null,\"n\":0,\"s\":null}]");
    sql_run_free(r);
    sql_query_free(q);

    /* no aggregates and no GROUP BY values: every row of the window */
    q = bound("SELECT *, window_end() AS we FROM s GROUP BY COUNTWINDOW(2) HAVING a != 2", NULL,
              NULL, NULL);
    r = run_of(q);
    expect_push(r, "{\"a\":1}", 5, "[]");
    expect_push(r, "{\"a\":2}", 6, "[{\"a\":1,\"we\":6}]");
    expect_push(r, "{\"a\":3}", 7, "[]");
    expect_push(r, "{\"a\":4}", 8, "[{\"a\":3,\"we\":8},{\"a\":4,\"we\":8}]");
    sql_run_free(r);
    sql_query_free(q);

    /* collect(*) and aggregates over no non-NULL value */
    q = bound("SELECT collect(*) AS rows, count(x) AS nx, sum(x) AS sx, avg(x) AS ax, max(x) AS mx "
              "FROM s GROUP BY COUNTWINDOW(2)",
              NULL, NULL, NULL);
    r = run_of(q);
    expect_push(r, "{\"a\":1}", 0, "[]");
    expect_push(r, "{\"a\":2}", 0,
                "[{\"rows\":[{\"a\":1},{\"a\":2}],\"nx\":0,\"sx\":null,\"ax\":null,\"mx\":null}]");
    sql_run_free(r);
    sql_query_free(q);
}

static void aggregate_values(void **state)
{
    (void)state;
    struct {
        const char *select, *msgs[3], *want;
    } cases[] = {
        {"sum(v)", {"1", "2", "3"}, "6"},
        {"sum(v)", {"1", "2.5", "null"}, "3.5"},
        {"avg(v)", {"1", "2", "4"}, "2"}, /* ints: truncated, as eKuiper */
        {"avg(v)", {"1", "2", "4.0"}, "2.3333333333333335"},
        {"avg(v)", {"null", "3", "null"}, "3"},
        {"min(v)", {"3", "1.5", "2"}, "1.5"},
        {"max(v)", {"3", "10", "2"}, "10"},
        {"max(v)", {"\"b\"", "\"c\"", "\"a\""}, "\"c\""},
        {"min(v)", {"\"b\"", "null", "\"a\""}, "\"a\""},
        {"count(v)", {"1", "null", "0"}, "2"},
        {"count(*)", {"null", "null", "null"}, "3"},
        {"collect(v)", {"1", "null", "\"x\""}, "[1,null,\"x\"]"},
        {"sum(v)", {"9223372036854775807", "1", "0"}, "error: in 'sum(v)': sum: integer overflow"},
        {"sum(v)",
         {"1", "\"x\"", "0"},
         "error: in 'sum(v)': sum: argument 1 must be a number, got string"},
        {"max(v)", {"1", "\"x\"", "0"}, "error: in 'max(v)': max: cannot compare string with int"},
        {"min(v)",
         {"true", "1", "0"},
         "error: in 'min(v)': min: argument 1 must be a number or a string, got bool"},
        {"sum(v) / count(*)", {"3", "3", "4"}, "3"},
        {"round(avg(v) * 1.0, 1)", {"3", "3", "4"}, "3.0"},
        {"max(v) - min(v)", {"3", "9", "4"}, "6"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT %s AS r FROM s GROUP BY COUNTWINDOW(3)", cases[i].select);
        sql_query *q = bound(sql, NULL, NULL, NULL);
        sql_run *r = run_of(q);
        char *got = NULL;
        for (int k = 0; k < 3; k++) {
            char msg[128];
            snprintf(msg, sizeof msg, "{\"v\":%s}", cases[i].msgs[k]);
            free(got);
            got = push_json(r, msg, k);
        }
        char want[256];
        if (strncmp(cases[i].want, "error: ", 7) == 0)
            snprintf(want, sizeof want, "%s", cases[i].want);
        else
            snprintf(want, sizeof want, "[{\"r\":%s}]", cases[i].want);
        if (strcmp(got, want) != 0)
            fail_msg("%s:\n  got  %s\n  want %s", cases[i].select, got, want);
        free(got);
        assert_int_equal(sql_run_held(r), 0); /* a failed window is consumed too */
        sql_run_free(r);
        sql_query_free(q);
    }
}

static void runs_survive_errors(void **state)
{
    (void)state;
    sql_query *q = bound("SELECT 10 / d AS q FROM s", NULL, NULL, NULL);
    sql_run *r = run_of(q);
    expect_push(r, "{\"d\":2}", 0, "[{\"q\":5}]");
    expect_push(r, "{\"d\":0}", 0, "error: in '10 / d': division by zero");
    expect_push(r, "{\"d\":\"x\"}", 0, "error: in '10 / d': cannot apply / to int and string");
    expect_push(r, "{\"d\":5}", 0, "[{\"q\":2}]");
    sql_run_free(r);
    sql_query_free(q);

    /* a group key that fails drops its message only */
    q = bound("SELECT count(*) AS n FROM s GROUP BY 1 / d, COUNTWINDOW(2)", NULL, NULL, NULL);
    r = run_of(q);
    expect_push(r, "{\"d\":1}", 0, "[]");
    expect_push(r, "{\"d\":0}", 0, "error: in GROUP BY '1 / d': division by zero");
    assert_int_equal(sql_run_held(r), 1);
    expect_push(r, "{\"d\":1}", 0, "[{\"n\":2}]");
    sql_run_free(r);
    sql_query_free(q);

    /* HAVING with a bad type fails the window, the next one works */
    q = bound("SELECT count(*) AS n FROM s GROUP BY COUNTWINDOW(1) HAVING collect(a)[0]", NULL,
              NULL, NULL);
    r = run_of(q);
    expect_push(r, "{\"a\":1}", 0,
                "error: in HAVING 'collect(a)[0]': HAVING needs a boolean, got int");
    expect_push(r, "{\"a\":true}", 0, "[{\"n\":1}]");
    expect_push(r, "{\"a\":false}", 0, "[]");
    sql_run_free(r);
    sql_query_free(q);

    /* a tick closes every window that ended: the failing ones are reported,
     * the others give their rows */
    inferd_error err = {0};
    q = bound("SELECT sum(a) AS s FROM s GROUP BY TUMBLINGWINDOW(ss, 10)", NULL, NULL, NULL);
    r = run_of(q);
    expect_push(r, "{\"a\":\"x\"}", 1000, "[]");
    expect_push(r, "{\"a\":2}", 12000, "[]");
    expect_push(r, "{\"a\":\"y\"}", 22000, "[]");
    expect_push(r, "{\"a\":3}", 35000, "[]");
    inferd_value *rows = inferd_value_array();
    assert_int_equal(sql_run_tick(r, 30000, rows, &err), INFERD_ETYPE);
    assert_string_equal(err.message, "in 'sum(a)': sum: argument 1 must be a number, got string "
                                     "(and 1 more windows failed)");
    char *got = to_json(rows);
    assert_string_equal(got, "[{\"s\":2}]");
    free(got);
    assert_int_equal(sql_run_held(r), 1);
    assert_int_equal(sql_run_next_deadline(r), 40000);
    inferd_value_free(rows);
    expect_tick(r, 40000, "[{\"s\":3}]");
    sql_run_free(r);
    sql_query_free(q);

    /* bad arguments */
    q = bound("SELECT a FROM s", NULL, NULL, NULL);
    r = run_of(q);
    inferd_value *msg = J("{}"), *not_array = inferd_value_object();
    assert_int_equal(sql_run_push(r, msg, 0, not_array, &err), INFERD_EINVAL);
    assert_int_equal(sql_run_push(r, NULL, 0, not_array, &err), INFERD_EINVAL);
    assert_int_equal(sql_run_tick(r, 0, not_array, &err), INFERD_EINVAL);
    inferd_value_free(msg);
    inferd_value_free(not_array);
    sql_run_free(r);
    sql_query_free(q);
}

/* ---- garbage in ------------------------------------------------------------------------- */

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Parses sql both ways; what parses is bound and run a little. Every error
 * must carry a position. Returns 1 when a SELECT parsed, 2 when it also bound. */
static int try_statement(const char *sql)
{
    int ok = 0;
    inferd_error err = {0};
    sql_stream_def *d = NULL;
    if (sql_parse_stream(sql, &d, &err) == INFERD_OK)
        sql_stream_def_free(d);
    else if (strncmp(err.message, "at line ", 8) != 0)
        fail_msg("stream error without a position for [%s]: %s", sql, err.message);
    sql_query *q = NULL;
    if (sql_parse_select(sql, &q, &err) != INFERD_OK) {
        if (strncmp(err.message, "at line ", 8) != 0)
            fail_msg("select error without a position for [%s]: %s", sql, err.message);
        return ok;
    }
    ok = 1;
    test_plugins t = {0};
    if (sql_query_bind(q, NULL, resolve, &t, &err) == INFERD_OK) {
        ok = 2;
        sql_run *r = run_of(q);
        inferd_value *rows = inferd_value_array();
        const char *msgs[] = {"{\"a\":1,\"b\":{\"c\":[1,2]},\"x\":\"s\"}", "{\"a\":null}", "{}",
                              "{\"a\":\"x\",\"b\":2.5,\"x\":[true]}", "{\"a\":-3,\"x\":\"%\"}"};
        for (int i = 0; i < 5; i++) {
            inferd_value *m = J(msgs[i]);
            sql_run_push(r, m, i * 700, rows, &err);
            sql_run_tick(r, i * 700, rows, &err);
            inferd_value_free(m);
        }
        /* the end of time closes every time window, also those that fail */
        if (sql_run_tick(r, INT64_MAX, rows, &err) != INFERD_OK)
            assert_true(strlen(err.message) > 0);
        if (sql_run_next_deadline(r) != -1)
            fail_msg("[%s]: deadline %lld after the last tick, %zu held", sql,
                     (long long)sql_run_next_deadline(r), sql_run_held(r));
        inferd_value_free(rows);
        sql_run_free(r);
    } else if (strncmp(err.message, "at line ", 8) != 0) {
        fail_msg("bind error without a position for [%s]: %s", sql, err.message);
    }
    sql_query_free(q);
    return ok;
}

/* A small random text builder for the generated statements. */
typedef struct gen {
    char buf[2048];
    size_t len;
    uint64_t *seed;
} gen;

static void put(gen *g, const char *s)
{
    size_t n = strlen(s);
    if (g->len + n < sizeof g->buf - 1) {
        memcpy(g->buf + g->len, s, n + 1);
        g->len += n;
    }
}

static const char *pick(gen *g, const char *const *list, size_t n)
{
    return list[rng(g->seed) % n];
}
#define PICK(g, list) pick(g, list, sizeof list / sizeof list[0])

/* A random expression that is mostly well-formed (and mostly ill-typed). */
static void gen_expr(gen *g, int depth)
{
    static const char *const atoms[] = {
        "a",   "x",   "b->c",  "b->c[0]",   "self",           "self->a", "1",
        "-2",  "2.5", "'s'",   "'%'",       "NULL",           "TRUE",    "FALSE",
        "`a`", "b",   "x[-1]", "counter()", "window_start()", "rand()"};
    static const char *const ops[] = {" + ",  " - ", " * ",  " / ",   " % ",  " = ",
                                      " != ", " < ", " >= ", " AND ", " OR ", " LIKE "};
    static const char *const fns[] = {
        "abs",    "concat",          "twice",       "join",    "sum",    "count",
        "max",    "collect",         "coalesce",    "cast",    "lower",  "sqrt",
        "isnull", "json_path_query", "split_value", "to_json", "nothing"};
    int kind = depth > 3 ? 0 : (int)(rng(g->seed) % 9);
    switch (kind) {
    case 0:
    case 1: put(g, PICK(g, atoms)); break;
    case 2:
        gen_expr(g, depth + 1);
        put(g, PICK(g, ops));
        gen_expr(g, depth + 1);
        break;
    case 3: {
        put(g, PICK(g, fns));
        put(g, "(");
        int n = (int)(rng(g->seed) % 3);
        for (int i = 0; i < n; i++) {
            if (i)
                put(g, ", ");
            gen_expr(g, depth + 1);
        }
        put(g, ")");
        break;
    }
    case 4:
        put(g, "NOT (");
        gen_expr(g, depth + 1);
        put(g, ")");
        break;
    case 5:
        gen_expr(g, depth + 1);
        put(g, rng(g->seed) % 2 ? " IS NULL" : " IS NOT NULL");
        break;
    case 6:
        gen_expr(g, depth + 1);
        put(g, " IN (");
        gen_expr(g, depth + 1);
        put(g, ", ");
        gen_expr(g, depth + 1);
        put(g, ")");
        break;
    case 7:
        put(g, "CASE WHEN ");
        gen_expr(g, depth + 1);
        put(g, " THEN ");
        gen_expr(g, depth + 1);
        put(g, " ELSE ");
        gen_expr(g, depth + 1);
        put(g, " END");
        break;
    default:
        put(g, "(");
        gen_expr(g, depth + 1);
        put(g, ")[0]");
        break;
    }
}

static void gen_select(gen *g)
{
    static const char *const windows[] = {"TUMBLINGWINDOW(ms, 500)", "HOPPINGWINDOW(ms, 1000, 300)",
                                          "SLIDINGWINDOW(ms, 900)", "COUNTWINDOW(2)",
                                          "COUNTWINDOW(3, 1)"};
    g->len = 0;
    g->buf[0] = '\0';
    put(g, "SELECT ");
    int items = 1 + (int)(rng(g->seed) % 3);
    for (int i = 0; i < items; i++) {
        char alias[16];
        if (i)
            put(g, ", ");
        if (rng(g->seed) % 6 == 0) {
            put(g, "*");
            continue;
        }
        gen_expr(g, 0);
        snprintf(alias, sizeof alias, " AS c%d", i);
        put(g, alias);
    }
    put(g, " FROM s");
    if (rng(g->seed) % 2) {
        put(g, " WHERE ");
        gen_expr(g, 1);
    }
    bool window = rng(g->seed) % 2;
    if (window) {
        put(g, " GROUP BY ");
        if (rng(g->seed) % 2) {
            gen_expr(g, 2);
            put(g, ", ");
        }
        put(g, PICK(g, windows));
        if (rng(g->seed) % 3 == 0) {
            put(g, " HAVING ");
            gen_expr(g, 1);
        }
    }
}

/* Damages a statement: cuts it, drops a span, or doubles a span. */
static void mutate(gen *g)
{
    if (g->len < 2)
        return;
    size_t a = rng(g->seed) % g->len, b = a + rng(g->seed) % (g->len - a);
    switch (rng(g->seed) % 3) {
    case 0: g->len = a; break;
    case 1:
        memmove(g->buf + a, g->buf + b, g->len - b);
        g->len -= b - a;
        break;
    default:
        if (g->len + (b - a) < sizeof g->buf - 1) {
            memmove(g->buf + b + (b - a), g->buf + b, g->len - b);
            memcpy(g->buf + b, g->buf + a, b - a);
            g->len += b - a;
        }
        break;
    }
    g->buf[g->len] = '\0';
}

static void garbage_never_crashes(void **state)
{
    (void)state;
    uint64_t seed = 0x9E3779B97F4A7C15u;
    char buf[512];
    /* random bytes */
    for (int k = 0; k < 3000; k++) {
        size_t len = rng(&seed) % 64;
        for (size_t i = 0; i < len; i++)
            buf[i] = (char)(rng(&seed) % 255 + 1);
        buf[len] = '\0';
        try_statement(buf);
    }
    /* token soups */
    static const char *const words[] = {"SELECT",
                                        "FROM",
                                        "WHERE",
                                        "GROUP",
                                        "BY",
                                        "HAVING",
                                        "AS",
                                        "(",
                                        ")",
                                        ",",
                                        "*",
                                        "a",
                                        "b->c",
                                        "[0]",
                                        "[-1]",
                                        "1",
                                        "0",
                                        "2.5",
                                        "'s'",
                                        "\"t\"",
                                        "AND",
                                        "OR",
                                        "NOT",
                                        "IN",
                                        "LIKE",
                                        "CASE",
                                        "WHEN",
                                        "THEN",
                                        "ELSE",
                                        "END",
                                        "TUMBLINGWINDOW(ss, 1)",
                                        "COUNTWINDOW(2)",
                                        "count(*)",
                                        "=",
                                        "<",
                                        "+",
                                        "-",
                                        "/",
                                        "NULL",
                                        "self",
                                        "s",
                                        ";",
                                        "CREATE",
                                        "STREAM",
                                        "WITH",
                                        "BIGINT",
                                        "ARRAY",
                                        "IS",
                                        "BETWEEN",
                                        "->",
                                        "[",
                                        "]",
                                        "abs(",
                                        "`q`",
                                        "ESCAPE",
                                        "/*",
                                        "*/",
                                        "--",
                                        "\n",
                                        "1e400",
                                        "99999999999999999999"};
    for (int k = 0; k < 5000; k++) {
        size_t count = rng(&seed) % 16, w = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < count && w < sizeof buf - 64; i++)
            w += (size_t)snprintf(buf + w, sizeof buf - w, "%s ",
                                  words[rng(&seed) % (sizeof words / sizeof words[0])]);
        try_statement(buf);
    }
    /* generated statements, whole and damaged */
    gen g = {.seed = &seed};
    int parsed = 0, ran = 0, total = 20000;
    for (int k = 0; k < total; k++) {
        gen_select(&g);
        if (k % 2)
            mutate(&g);
        int stages = try_statement(g.buf);
        parsed += stages >= 1;
        ran += stages >= 2;
    }
    print_message("generated: %d of %d parsed, %d bound and ran\n", parsed, total, ran);
    /* the generator reaches the binder and the runner, not just the parser */
    assert_true(parsed > total / 3);
    assert_true(ran > total / 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_select_shapes),
        cmocka_unit_test(parse_errors_have_positions),
        cmocka_unit_test(nesting_is_bounded),
        cmocka_unit_test(lexer_literals),
        cmocka_unit_test(stream_definitions),
        cmocka_unit_test(stream_errors),
        cmocka_unit_test(coerce_fields),
        cmocka_unit_test(arithmetic),
        cmocka_unit_test(comparisons),
        cmocka_unit_test(logic_and_null),
        cmocka_unit_test(in_like_between_case),
        cmocka_unit_test(fields_and_indexes),
        cmocka_unit_test(math_functions),
        cmocka_unit_test(string_functions),
        cmocka_unit_test(encoding_json_type_functions),
        cmocka_unit_test(time_hash_id_functions),
        cmocka_unit_test(select_star_self_and_names),
        cmocka_unit_test(nil_columns_names_and_event_time),
        cmocka_unit_test(aliases_in_select),
        cmocka_unit_test(schema_binding),
        cmocka_unit_test(aggregate_placement),
        cmocka_unit_test(resolver_functions),
        cmocka_unit_test(tumbling_window),
        cmocka_unit_test(hopping_window),
        cmocka_unit_test(sliding_window),
        cmocka_unit_test(count_windows),
        cmocka_unit_test(groups_having_and_rows),
        cmocka_unit_test(aggregate_values),
        cmocka_unit_test(runs_survive_errors),
        cmocka_unit_test(garbage_never_crashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
