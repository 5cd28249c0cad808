/* fuzz_sql: the SQL of streams and rules. The first byte picks CREATE
 * STREAM or SELECT; a SELECT that parses is bound (built-ins only) against
 * a stream with declared columns and one without, and what binds runs one
 * message through and a tick. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sql/sql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *sql = malloc(size);
    if (!sql)
        return 0;
    memcpy(sql, data + 1, size - 1);
    sql[size - 1] = '\0';
    if (data[0] & 1) {
        sql_stream_def *def = NULL;
        if (sql_parse_stream(sql, &def, NULL) == INFERD_OK)
            sql_stream_def_free(def);
        free(sql);
        return 0;
    }
    static const char *const typed = "CREATE STREAM s (a BIGINT, b FLOAT, c STRING, d BOOLEAN, "
                                     "e ARRAY, f STRUCT, g BYTEA, h DATETIME) WITH (TYPE=\"mqtt\")";
    sql_stream_def *stream = NULL;
    if (sql_parse_stream((data[0] & 2) ? typed : "CREATE STREAM s () WITH (TYPE=\"mqtt\")",
                         &stream, NULL) != INFERD_OK)
        abort();
    sql_query *q = NULL;
    if (sql_parse_select(sql, &q, NULL) == INFERD_OK &&
        sql_query_bind(q, stream, NULL, NULL, NULL) == INFERD_OK) {
        sql_run *run = NULL;
        if (sql_run_new(q, &run, NULL) == INFERD_OK) {
            static const char msg[] = "{\"a\": 3, \"b\": 2.5, \"c\": \"x\", \"d\": true, "
                                      "\"e\": [1, 2], \"f\": {\"k\": 1}, \"h\": 1000}";
            inferd_value *m = NULL, *rows = inferd_value_array();
            inferd_value_from_json(msg, sizeof msg - 1, 8, &m, NULL);
            sql_run_push(run, m, 1000, rows, NULL);
            sql_run_tick(run, 100000, rows, NULL);
            inferd_value_free(m);
            inferd_value_free(rows);
            sql_run_free(run);
        }
    }
    sql_query_free(q);
    sql_stream_def_free(stream);
    free(sql);
    return 0;
}
