/* portable/package.h: portable plugin packages (docs/portable-protocol.md).
 *
 * A package is a zip with, at its root, the manifest <name>.json, the
 * executable it names, and optional files (install.sh, requirements.txt,
 * models). This file reads and checks manifests, extracts packages safely
 * (every entry checked before anything is written), runs install.sh under a
 * time limit, and removes installed folders. Internal to libinferd.
 */
#ifndef INFERD_PORTABLE_PACKAGE_H
#define INFERD_PORTABLE_PACKAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <stdint.h>

#include "inferd/plugin.h"
#include "inferd/props.h"
#include "inferd/status.h"
#include "inferd/value.h"

/* One HTTP route of a background component. */
typedef struct portable_route {
    char *method; /* owned: "GET", "POST", ... or "*" (any method) */
    char *path;   /* owned: starts with "/" */
} portable_route;

/* One component the package declares. */
typedef struct portable_decl {
    inferd_component_kind kind; /* FUNCTION, SOURCE, SINK, EVENT, BACKGROUND, ESTIMATOR */
    char *name, *description;   /* owned; description "" when absent */
    char *event;                /* owned; EVENT: the event name (NULL otherwise) */
    char *broker;               /* owned; ESTIMATOR: the estimator it serves/replaces */
    int32_t min_args, max_args; /* FUNCTION: default 0, -1 (any) */
    bool aggregate;             /* FUNCTION */
    portable_route *routes;     /* owned; BACKGROUND */
    inferd_prop_spec *props;    /* owned, END-terminated; NULL when it declares none */
    size_t n_routes;
} portable_decl;

/* A checked manifest. Everything in it is owned by it. */
typedef struct portable_manifest {
    char *name, *version, *language, *executable, *description; /* language "python" or "native" */
    portable_decl *decls; /* in the manifest's order: functions, sources, sinks, events,
                             backgrounds, estimators */
    size_t n_decls;
} portable_manifest;

/* Parses and checks <name>.json's text (len bytes). name: the plugin's name,
 * which must pass portable_name_valid. Every problem is an error naming the
 * field: "manifest pyai.json: functions[1]: name must be ...". On success
 * *out is a new manifest (free with portable_manifest_free). */
inferd_status portable_manifest_parse(const char *name, const char *text, size_t len,
                                      portable_manifest **out, inferd_error *err);

/* Reads dir/<name>.json, parses it, and checks the executable is a regular
 * file inside dir (no symbolic link anywhere on its way); native: its
 * owner-execute bit set. */
inferd_status portable_manifest_load(const char *dir, const char *name, portable_manifest **out,
                                     inferd_error *err);
/* Whether b declares the same components as a (names, kinds, arguments,
 * properties, routes, events, estimators; descriptions may differ): what
 * an upgrade in place needs. When not, why says the first difference. */
bool portable_manifest_same_decls(const portable_manifest *a, const portable_manifest *b,
                                  char *why, size_t cap);

/* Frees m and everything in it. NULL is allowed. */
void portable_manifest_free(portable_manifest *m);

/* The manifest as a JSON-ready object (for the REST API), owned by the
 * caller: {"name","version","language","executable","description",
 * "functions":[...],"sources":[...],"sinks":[...],"events":[...],
 * "backgrounds":[...],"estimators":[...]}, every component in full form
 * (functions: name, description, minArgs, maxArgs, aggregate; events: name,
 * event, description; ...). All six arrays are always there. NULL when memory
 * ran out. */
inferd_value *portable_manifest_describe(const portable_manifest *m);

/* Whether a plugin name is acceptable: 1-64 chars of [A-Za-z0-9_-], starting
 * with a letter or digit (it becomes a folder and a file name). */
bool portable_name_valid(const char *name);

/* Extracts the zip at zip_path into dest (which must not exist; its parent
 * must), checking EVERY entry before writing anything: no absolute names, no
 * "." or ".." segment, no backslashes, no empty segments, no control
 * characters, no duplicates (nor a file that another entry uses as a folder),
 * no symbolic links or other non-regular entries (zip external attributes
 * with opsys UNIX), no encrypted entries, at most 10000 entries and 2 GiB
 * uncompressed in all (and a zip-bomb guard: an entry that decompresses to
 * more than its declared size fails), names <= 1024 bytes. Regular files
 * keep their owner-execute bit when the zip records one (mode 0755, else
 * 0644); folders 0755. On ANY failure dest is removed and nothing is left
 * behind. Errors name the entry: "package pyai.zip: entry ../x: a path may
 * not leave the package folder". */
inferd_status portable_package_extract(const char *zip_path, const char *dest, inferd_error *err);

/* Runs dir/install.sh (when it exists) as `/bin/sh install.sh` in dir, with
 * a clean environment (PATH=/usr/local/bin:/usr/bin:/bin, HOME=dir,
 * LANG=C.UTF-8), stdin /dev/null, stdout+stderr read line by line and logged
 * (info, log component "portable") as "[install NAME] line", in its own
 * process group. After timeout_ms the whole group is killed (SIGKILL); so are
 * processes it left behind in its group when it exits. Fails with the exit
 * status (or signal) or "install.sh did not finish within N ms", plus the
 * last lines of its output, as many as fit in the error message (which holds
 * INFERD_ERROR_MESSAGE_MAX bytes). No install.sh: INFERD_OK. */
/* Kills every process (but this one) whose environment holds the entry
 * `marker` ("NAME=VALUE"): what an install.sh or a plugin process started,
 * whatever it did to leave its process group (setsid, a double fork). Each
 * of those is spawned with a marker of its own for this. A process that
 * wipes its environment escapes: documented. Returns how many it killed. */
size_t portable_sweep_marked(const char *marker);

inferd_status portable_package_run_install(const char *dir, const char *name, uint64_t timeout_ms,
                                           inferd_error *err);

/* rm -rf path: never follows a symbolic link (a link is removed, not what it
 * points to). A path that does not exist is fine. 0, or -1 with errno set
 * (at the first thing that could not be removed). */
int portable_remove_tree(const char *path);

/* Starts path (argv, envp) in dir, stdin /dev/null, stdout to out_fd and
 * stderr to err_fd, in its own process group with default signals and no
 * other descriptor (spawn.c). posix_spawn's result: 0, or an errno. */
int portable_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[],
                   const char *dir, int out_fd, int err_fd);

/* isolated.c: a C plugin that runs in a worker (plugins.isolated). The
 * daemon's own executable (/proc/self/exe), malloc'd, or NULL. */
char *portable_self_exe(void);
/* Runs `inferd worker --describe so`: *name (the plugin's) and *manifest
 * (its portable manifest as JSON text), both malloc'd; or why not (its
 * components, a plugin that does not load, one whose loading crashes). */
inferd_status portable_isolated_describe(const char *so, char **name, char **manifest,
                                         inferd_error *err);

/* The manifest's declaration, as the one validator checks it (`inferd
 * describe manifest`; the short forms and x- keys are read before it). */
const inferd_prop_spec *portable_manifest_specs(void);

#endif /* INFERD_PORTABLE_PACKAGE_H */
