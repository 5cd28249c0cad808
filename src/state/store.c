/* state/store.c: what must come back after a restart, in the state
 * database (SQLite): streams, rules and pipelines. The portable plugins'
 * table lives in the same file (src/portable/portables.c); each user opens
 * its own connection. */
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "state/store.h"

struct state_store {
    sqlite3 *db;
};

static inferd_status db_error(sqlite3 *db, const char *what, inferd_error *err)
{
    return inferd_error_set(err, INFERD_EIO, "state database: %s: %s", what, sqlite3_errmsg(db));
}

inferd_status state_store_open(const char *path, state_store **out, inferd_error *err)
{
    state_store *s = calloc(1, sizeof *s);
    if (!s)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    /* MQTT passwords live in rules' definitions: the owner's only. */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    chmod(path, 0600);
    int rc = sqlite3_open_v2(path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        inferd_status st = inferd_error_set(err, INFERD_EIO, "state database %s: %s", path,
                                            s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        state_store_close(s);
        return st;
    }
    sqlite3_busy_timeout(s->db, 5000);
    if (sqlite3_exec(s->db,
                     "CREATE TABLE IF NOT EXISTS streams ("
                     " name TEXT PRIMARY KEY, sql TEXT NOT NULL, created_at INTEGER NOT NULL);"
                     "CREATE TABLE IF NOT EXISTS rules ("
                     " id TEXT PRIMARY KEY, definition TEXT NOT NULL, running INTEGER NOT NULL,"
                     " created_at INTEGER NOT NULL);"
                     "CREATE TABLE IF NOT EXISTS pipelines ("
                     " id TEXT PRIMARY KEY, definition TEXT NOT NULL, running INTEGER NOT NULL,"
                     " created_at INTEGER NOT NULL);",
                     NULL, NULL, NULL) != SQLITE_OK) {
        inferd_status st = db_error(s->db, "creating tables streams, rules and pipelines", err);
        state_store_close(s);
        return st;
    }
    *out = s;
    return INFERD_OK;
}

void state_store_close(state_store *s)
{
    if (!s)
        return;
    sqlite3_close(s->db);
    free(s);
}

/* Runs one statement with n text parameters and no result rows (INTEGER
 * columns convert "1" and a time in digits by their affinity). */
static inferd_status exec(state_store *s, const char *what, const char *sql, inferd_error *err,
                          const char *const *params, size_t n)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_error(s->db, what, err);
    for (size_t i = 0; i < n; i++)
        sqlite3_bind_text(st, (int)i + 1, params[i], -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? INFERD_OK : db_error(s->db, what, err);
}

inferd_status state_put_stream(state_store *s, const char *name, const char *sql,
                               inferd_error *err)
{
    char now[32];
    snprintf(now, sizeof now, "%lld", (long long)time(NULL));
    const char *p[] = {name, sql, now};
    return exec(s, "recording a stream",
                "INSERT INTO streams (name, sql, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET sql = excluded.sql",
                err, p, 3);
}

inferd_status state_delete_stream(state_store *s, const char *name, inferd_error *err)
{
    const char *p[] = {name};
    return exec(s, "deleting a stream", "DELETE FROM streams WHERE name = ?", err, p, 1);
}

inferd_status state_load_streams(state_store *s, state_stream_fn fn, void *ctx,
                                 inferd_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT name, sql FROM streams ORDER BY name", -1, &st,
                           NULL) != SQLITE_OK)
        return db_error(s->db, "reading streams", err);
    while (sqlite3_step(st) == SQLITE_ROW)
        fn(ctx, (const char *)sqlite3_column_text(st, 0),
           (const char *)sqlite3_column_text(st, 1));
    sqlite3_finalize(st);
    return INFERD_OK;
}

/* The tables of entries (rules, pipelines): the same columns. The names are
 * constants, never input: they may be pasted into the statements. */
static const char *const tables[] = {[STATE_RULES] = "rules", [STATE_PIPELINES] = "pipelines"};

inferd_status state_put(state_store *s, state_table t, const char *id, const char *definition,
                        bool running, inferd_error *err)
{
    char now[32], sql[256], what[64];
    snprintf(now, sizeof now, "%lld", (long long)time(NULL));
    snprintf(sql, sizeof sql, "INSERT INTO %s (id, definition, running, created_at) "
             "VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET definition = "
             "excluded.definition, running = excluded.running", tables[t]);
    snprintf(what, sizeof what, "recording in %s", tables[t]);
    const char *p[] = {id, definition, running ? "1" : "0", now};
    return exec(s, what, sql, err, p, 4);
}

inferd_status state_set_running(state_store *s, state_table t, const char *id, bool running,
                                inferd_error *err)
{
    char sql[128], what[64];
    snprintf(sql, sizeof sql, "UPDATE %s SET running = ? WHERE id = ?", tables[t]);
    snprintf(what, sizeof what, "recording a state in %s", tables[t]);
    const char *p[] = {running ? "1" : "0", id};
    return exec(s, what, sql, err, p, 2);
}

inferd_status state_delete(state_store *s, state_table t, const char *id, inferd_error *err)
{
    char sql[128], what[64];
    snprintf(sql, sizeof sql, "DELETE FROM %s WHERE id = ?", tables[t]);
    snprintf(what, sizeof what, "deleting from %s", tables[t]);
    const char *p[] = {id};
    return exec(s, what, sql, err, p, 1);
}

inferd_status state_load(state_store *s, state_table t, state_entry_fn fn, void *ctx,
                         inferd_error *err)
{
    char sql[128], what[64];
    snprintf(sql, sizeof sql, "SELECT id, definition, running FROM %s ORDER BY id", tables[t]);
    snprintf(what, sizeof what, "reading %s", tables[t]);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_error(s->db, what, err);
    while (sqlite3_step(st) == SQLITE_ROW)
        fn(ctx, (const char *)sqlite3_column_text(st, 0),
           (const char *)sqlite3_column_text(st, 1), sqlite3_column_int(st, 2) != 0);
    sqlite3_finalize(st);
    return INFERD_OK;
}
