/* state/store.h: the state database (SQLite in the state folder): what
 * must come back after a restart. Streams (name, SQL) and two tables of
 * entries with the same shape (id, definition, running): rules and
 * pipelines. Each user opens its own connection; calls are serialised by
 * SQLite. Not installed. */
#ifndef INFERD_STATE_STORE_H
#define INFERD_STATE_STORE_H

#include <stdbool.h>

#include "inferd/status.h"

typedef struct state_store state_store;
typedef enum state_table { STATE_RULES, STATE_PIPELINES } state_table;

/* Opens (creating the file, owner-only, and the tables) path. */
inferd_status state_store_open(const char *path, state_store **out, inferd_error *err);
void state_store_close(state_store *s);

inferd_status state_put_stream(state_store *s, const char *name, const char *sql,
                               inferd_error *err);
inferd_status state_delete_stream(state_store *s, const char *name, inferd_error *err);
typedef void (*state_stream_fn)(void *ctx, const char *name, const char *sql);
/* fn for every stream, in name order. */
inferd_status state_load_streams(state_store *s, state_stream_fn fn, void *ctx,
                                 inferd_error *err);

/* Inserts or replaces an entry. */
inferd_status state_put(state_store *s, state_table t, const char *id, const char *definition,
                        bool running, inferd_error *err);
inferd_status state_set_running(state_store *s, state_table t, const char *id, bool running,
                                inferd_error *err);
inferd_status state_delete(state_store *s, state_table t, const char *id, inferd_error *err);
typedef void (*state_entry_fn)(void *ctx, const char *id, const char *definition, bool running);
/* fn for every entry of t, in id order. */
inferd_status state_load(state_store *s, state_table t, state_entry_fn fn, void *ctx,
                         inferd_error *err);

#endif
