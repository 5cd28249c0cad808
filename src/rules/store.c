/* store.c: streams and rules in the state database (SQLite), so that they
 * come back after a restart. The portable plugins' table lives in the same
 * file (src/portable/portables.c); each opens its own connection. */
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rules/internal.h"

struct rstore {
    sqlite3 *db;
};

static inferd_status db_error(sqlite3 *db, const char *what, inferd_error *err)
{
    return inferd_error_set(err, INFERD_EIO, "state database: %s: %s", what, sqlite3_errmsg(db));
}

inferd_status rstore_open(const char *path, rstore **out, inferd_error *err)
{
    rstore *s = calloc(1, sizeof *s);
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
        rstore_close(s);
        return st;
    }
    sqlite3_busy_timeout(s->db, 5000);
    if (sqlite3_exec(s->db,
                     "CREATE TABLE IF NOT EXISTS streams ("
                     " name TEXT PRIMARY KEY, sql TEXT NOT NULL, created_at INTEGER NOT NULL);"
                     "CREATE TABLE IF NOT EXISTS rules ("
                     " id TEXT PRIMARY KEY, definition TEXT NOT NULL, running INTEGER NOT NULL,"
                     " created_at INTEGER NOT NULL);",
                     NULL, NULL, NULL) != SQLITE_OK) {
        inferd_status st = db_error(s->db, "creating tables streams and rules", err);
        rstore_close(s);
        return st;
    }
    *out = s;
    return INFERD_OK;
}

void rstore_close(rstore *s)
{
    if (!s)
        return;
    sqlite3_close(s->db);
    free(s);
}

/* Runs one statement with n text parameters and no result rows (INTEGER
 * columns convert "1" and a time in digits by their affinity). */
static inferd_status exec(rstore *s, const char *what, const char *sql, inferd_error *err,
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

inferd_status rstore_put_stream(rstore *s, const char *name, const char *sql, inferd_error *err)
{
    char now[32];
    snprintf(now, sizeof now, "%lld", (long long)time(NULL));
    const char *p[] = {name, sql, now};
    return exec(s, "recording a stream",
                "INSERT INTO streams (name, sql, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET sql = excluded.sql",
                err, p, 3);
}

inferd_status rstore_delete_stream(rstore *s, const char *name, inferd_error *err)
{
    const char *p[] = {name};
    return exec(s, "deleting a stream", "DELETE FROM streams WHERE name = ?", err, p, 1);
}

inferd_status rstore_put_rule(rstore *s, const char *id, const char *definition, bool running,
                              inferd_error *err)
{
    char now[32];
    snprintf(now, sizeof now, "%lld", (long long)time(NULL));
    const char *p[] = {id, definition, running ? "1" : "0", now};
    return exec(s, "recording a rule",
                "INSERT INTO rules (id, definition, running, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET definition = excluded.definition, "
                "running = excluded.running",
                err, p, 4);
}

inferd_status rstore_set_running(rstore *s, const char *id, bool running, inferd_error *err)
{
    const char *p[] = {running ? "1" : "0", id};
    return exec(s, "recording a rule's state", "UPDATE rules SET running = ? WHERE id = ?", err,
                p, 2);
}

inferd_status rstore_delete_rule(rstore *s, const char *id, inferd_error *err)
{
    const char *p[] = {id};
    return exec(s, "deleting a rule", "DELETE FROM rules WHERE id = ?", err, p, 1);
}

inferd_status rstore_load(rstore *s, rstore_stream_fn sfn, rstore_rule_fn rfn, void *ctx,
                          inferd_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT name, sql FROM streams ORDER BY name", -1, &st,
                           NULL) != SQLITE_OK)
        return db_error(s->db, "reading streams", err);
    while (sqlite3_step(st) == SQLITE_ROW)
        sfn(ctx, (const char *)sqlite3_column_text(st, 0),
            (const char *)sqlite3_column_text(st, 1));
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(s->db, "SELECT id, definition, running FROM rules ORDER BY id", -1,
                           &st, NULL) != SQLITE_OK)
        return db_error(s->db, "reading rules", err);
    while (sqlite3_step(st) == SQLITE_ROW)
        rfn(ctx, (const char *)sqlite3_column_text(st, 0),
            (const char *)sqlite3_column_text(st, 1), sqlite3_column_int(st, 2) != 0);
    sqlite3_finalize(st);
    return INFERD_OK;
}
