/* portable/host.h: one supervised portable plugin process (the host side of
 * docs/portable-protocol.md). Internal to libinferd.
 *
 * A host owns the plugin's process, its socket and one thread that reads
 * the socket and the process's output, sends heartbeats, times out calls,
 * and restarts the process with back-off when it dies. Calls may come from
 * any thread; each call's callback runs exactly once (on the host's thread,
 * or on the caller's when the call is refused at once).
 */
#ifndef INFERD_PORTABLE_HOST_H
#define INFERD_PORTABLE_HOST_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "inferd/plugin.h"
#include "inferd/status.h"
#include "inferd/value.h"
#include "portable/package.h"
#include "portable/proto.h"

typedef struct portable_host portable_host;
typedef struct portable_inst portable_inst; /* an instance, replayed after every restart */

typedef struct portable_timeouts {
    uint64_t start_ms;         /* from spawn to hello */
    uint64_t call_ms;          /* each call */
    uint64_t heartbeat_ms;     /* ping interval */
    uint64_t heartbeat_timeout_ms;
    uint64_t stop_ms;          /* SIGTERM to SIGKILL */
    uint64_t log_lines_per_s;  /* its output lines logged a second at most (0: no bound) */
} portable_timeouts;

/* What the plugin's process may use (0: no bound), set with prlimit right
 * after it starts: memory is RLIMIT_DATA (private writable memory: heap,
 * anonymous mappings, thread stacks; not shared libraries or files), CPU
 * is RLIMIT_CPU (seconds over the process's life: SIGXCPU, then SIGKILL
 * two seconds later; the supervisor restarts it). */
typedef struct portable_limits {
    uint64_t memory_mb;
    uint64_t cpu_s;
} portable_limits;

typedef struct portable_host_config {
    const char *dir;                    /* the plugin's folder */
    const portable_manifest *manifest;  /* borrowed: outlives the host */
    const char *python;                 /* interpreter for language "python" */
    const char *sdk_dir;                /* put on PYTHONPATH ("" none) */
    const char *sock_dir;               /* private (0700) folder for the socket */
    portable_timeouts t;
    portable_limits limits;
    bool restart;                       /* false: a failure is final (install's trial run) */
    /* A program other than the manifest's executable, with its arguments
     * (NULL-ended): an isolated C plugin's worker (`inferd worker FILE`). */
    const char *exe;
    const char *const *args;
} portable_host_config;

typedef enum portable_state {
    PORTABLE_STARTING, PORTABLE_RUNNING, PORTABLE_RESTARTING, PORTABLE_FAILED, PORTABLE_STOPPED
} portable_state;
const char *portable_state_name(portable_state s);

typedef struct portable_status {
    portable_state state;
    pid_t pid;                /* 0 when no process */
    uint64_t restarts;
    uint64_t calls, call_failures;
    char last_error[512];     /* "" when none */
} portable_status;

/* Starts the plugin's process and the host's thread. */
inferd_status portable_host_start(const portable_host_config *cfg, portable_host **out,
                                  inferd_error *err);
/* Waits until the plugin runs (OK) or has failed to start (its error), at
 * most timeout_ms. */
inferd_status portable_host_wait_running(portable_host *h, uint64_t timeout_ms, inferd_error *err);
/* Stops the process (SIGTERM, then SIGKILL), fails what is in flight and
 * joins the thread; later calls fail at once ("stopped"). Idempotent. */
void portable_host_stop(portable_host *h);
/* Stops h, then frees it (its instances must be closed). NULL is fine. */
void portable_host_free(portable_host *h);
void portable_host_status(portable_host *h, portable_status *out);
/* A call of the host's instances is under way (from before it picks the
 * host to after its portable_host_call* returns): an upgrade's drain waits
 * for these and for the replies still pending. */
void portable_host_enter(portable_host *h);
void portable_host_leave(portable_host *h);
/* Waits up to timeout_ms until no call is under way or pending; true when so. */
bool portable_host_drain(portable_host *h, uint64_t timeout_ms);
/* Whether pi was started (a background or source instance). */
bool portable_host_inst_started(portable_host *h, const portable_inst *pi);
/* Whether a failure restarts the process (an install's first start does not). */
void portable_host_set_restart(portable_host *h, bool restart);
const char *portable_host_name(const portable_host *h);

/* ---- instances (replayed after every restart) -------------------------------- */

/* Records an instance of a component and opens it in the plugin when it
 * runs (now, synchronously; or at its next start). inst: the host instance
 * (borrowed; sources emit through it). */
inferd_status portable_host_open(portable_host *h, const portable_decl *decl,
                                 const inferd_value *props, inferd_instance *inst,
                                 portable_inst **out, inferd_error *err);
/* start / stop of a background or source instance (remembered for replay). */
inferd_status portable_host_start_inst(portable_host *h, portable_inst *pi, inferd_error *err);
void portable_host_stop_inst(portable_host *h, portable_inst *pi);
/* Closes it in the plugin and forgets it. */
void portable_host_close(portable_host *h, portable_inst *pi);

/* ---- calls -------------------------------------------------------------------- */

/* reply: the whole reply frame on success (the callee may take its parts);
 * NULL with st and err on failure (a reply with "ok": false is
 * INFERD_EPLUGIN with the plugin's message). */
typedef void (*portable_reply_fn)(void *ctx, proto_frame *reply, inferd_status st,
                                  const inferd_error *err);
/* Sends {"type": "call", "id", "op", "instance", ...fields} with blobs.
 * fields: an object (taken). OK: fn will be called exactly once. Not OK: fn
 * is not called (the plugin is not running, or the send failed). */
inferd_status portable_host_call_async(portable_host *h, portable_inst *pi, const char *op,
                                       inferd_value *fields, const proto_blob *blobs, size_t n,
                                       portable_reply_fn fn, void *ctx, inferd_error *err);
/* The same, waiting: *reply is filled (caller clears it) on success. */
inferd_status portable_host_call(portable_host *h, portable_inst *pi, const char *op,
                                 inferd_value *fields, const proto_blob *blobs, size_t n,
                                 proto_frame *reply, inferd_error *err);

#endif
