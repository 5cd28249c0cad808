/* portable/portables.c: installed portable plugins: install, remove, the
 * state database, and starting them at boot (portables.h). */
#include "portable/portables.h"
#include "core/build_value.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "inferd/log.h"
#include "portable/host.h"
#include "portable/package.h"
#include "plugin/internal.h"
#include "portable/proxy.h"

#define LOG "portable"

typedef struct installed {
    char *name;
    char *dir;                 /* owned: <state>/plugins/<name> */
    char *file;                /* owned: the zip it came from */
    int64_t installed_at;      /* unix seconds */
    portable_manifest *m;      /* owned; NULL when the package is broken (error says why) */
    portable_manifest *decl_m; /* owned: after an upgrade, the first version's, which the
                                  registry's components (the proxy) were made of; else NULL */
    portable_proxy *proxy;     /* owned */
    portable_host *host;       /* owned; NULL before start */
    bool registered;
    bool inactive;             /* deactivated (recorded): not registered, not started */
    char *worker_so;           /* owned: a C plugin isolated in a worker (plugins.isolated):
                                  its file; NULL for a package */
    char error[INFERD_ERROR_MESSAGE_MAX]; /* why it could not be loaded ("" when fine) */
    struct installed *next;
} installed;

struct inferd_portables {
    inferd_registry *reg;      /* borrowed */
    char *state_dir, *plugins_dir, *sock_dir;
    char *python, *sdk_dir;
    portable_timeouts t;
    portable_limits limits;    /* every package's, unless... */
    inferd_value *limits_by;   /* owned: portable.limits, checked */
    uint64_t install_timeout_ms;
    sqlite3 *db;
    int lock_fd;
    pthread_mutex_t mu;        /* the list; installs and removals one at a time */
    installed *list;
    inferd_portables_hook hook;
    void *hook_ctx;
};

static char *path_join(const char *a, const char *b)
{
    char *s = NULL;
    return asprintf(&s, "%s/%s", a, b) < 0 ? NULL : s;
}

static int mkdir_p(const char *path, mode_t mode)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, mode) != 0 && errno != EEXIST ? -1 : 0;
}

/* state.dir, or $XDG_STATE_HOME/inferd, or ~/.local/state/inferd. */
static char *state_dir_of(const inferd_config *cfg)
{
    const char *dir = inferd_config_string(cfg, "state.dir");
    if (dir && dir[0])
        return strdup(dir);
    const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    char *s = NULL;
    if (xdg && xdg[0] == '/')
        return asprintf(&s, "%s/inferd", xdg) < 0 ? NULL : s;
    if (home && home[0])
        return asprintf(&s, "%s/.local/state/inferd", home) < 0 ? NULL : s;
    return strdup("./inferd-state");
}

/* ---- the database ------------------------------------------------------------ */

static inferd_status db_error(sqlite3 *db, const char *what, inferd_error *err)
{
    return inferd_error_set(err, INFERD_EIO, "state database: %s: %s", what, sqlite3_errmsg(db));
}

static inferd_status db_open(inferd_portables *p, inferd_error *err)
{
    char *path = path_join(p->state_dir, "inferd.db");
    if (!path)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    /* It holds MQTT passwords and tokens: the owner's only (SQLite's
     * journals take the database's mode). */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    chmod(path, 0600);
    int rc = sqlite3_open_v2(path, &p->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                               SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc != SQLITE_OK) {
        inferd_status st = inferd_error_set(err, INFERD_EIO, "state database %s: %s", path,
                                            p->db ? sqlite3_errmsg(p->db) : sqlite3_errstr(rc));
        free(path);
        return st;
    }
    free(path);
    sqlite3_busy_timeout(p->db, 5000);
    if (sqlite3_exec(p->db,
                     "CREATE TABLE IF NOT EXISTS portables ("
                     " name TEXT PRIMARY KEY, version TEXT NOT NULL, file TEXT NOT NULL,"
                     " installed_at INTEGER NOT NULL)",
                     NULL, NULL, NULL) != SQLITE_OK)
        return db_error(p->db, "creating table portables", err);
    /* Added by later versions: a database made before has them added once
     * (the error for a column there already is the expected one). */
    sqlite3_exec(p->db, "ALTER TABLE portables ADD COLUMN active INTEGER NOT NULL DEFAULT 1",
                 NULL, NULL, NULL);
    /* The folder under plugins/ (NULL: the name); an upgrade unpacks beside. */
    sqlite3_exec(p->db, "ALTER TABLE portables ADD COLUMN folder TEXT", NULL, NULL, NULL);
    return INFERD_OK;
}

static inferd_status db_set_active(inferd_portables *p, const char *name, bool active,
                                   inferd_error *err)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(p->db, "UPDATE portables SET active = ? WHERE name = ?", -1, &s,
                           NULL) != SQLITE_OK)
        return db_error(p->db, "recording the plugin's activation", err);
    sqlite3_bind_int(s, 1, active);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? INFERD_OK : db_error(p->db, "recording the plugin's activation",
                                                    err);
}

static inferd_status db_insert(inferd_portables *p, const installed *it, inferd_error *err)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(p->db, "INSERT INTO portables (name, version, file, installed_at) "
                                  "VALUES (?, ?, ?, ?)", -1, &s, NULL) != SQLITE_OK)
        return db_error(p->db, "recording the plugin", err);
    sqlite3_bind_text(s, 1, it->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, it->m->version, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, it->file, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, it->installed_at);
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? INFERD_OK : db_error(p->db, "recording the plugin", err);
}

static inferd_status db_delete(inferd_portables *p, const char *name, inferd_error *err)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(p->db, "DELETE FROM portables WHERE name = ?", -1, &s, NULL) !=
        SQLITE_OK)
        return db_error(p->db, "forgetting the plugin", err);
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? INFERD_OK : db_error(p->db, "forgetting the plugin", err);
}

/* ---- one plugin ---------------------------------------------------------------- */

static void installed_free(inferd_portables *p, installed *it)
{
    if (!it)
        return;
    portable_host_stop(it->host);
    if (it->registered) {
        inferd_error e = {0};
        /* What the service let go of may take a moment (a batch in flight). */
        if (inferd_registry_unload_wait(p->reg, it->name, 2000, &e) != INFERD_OK) {
            /* Instances of its components live on (a running service's
             * estimator or event subscriber): they keep the descriptor and
             * the stopped host, whose calls now fail; the next start of the
             * daemon no longer has them. */
            inferd_log_warn(LOG, "%s: %s; its calls fail from now on", it->name, e.message);
            return;
        }
    }
    portable_host_free(it->host);
    portable_proxy_free(it->proxy);
    portable_manifest_free(it->m);
    portable_manifest_free(it->decl_m);
    free(it->worker_so);
    free(it->name), free(it->dir), free(it->file);
    free(it);
}

/* Loads the manifest of it->dir and registers its components. */
static inferd_status load(inferd_portables *p, installed *it, inferd_error *err)
{
    inferd_status st = portable_manifest_load(it->dir, it->name, &it->m, err);
    if (st == INFERD_OK)
        st = portable_proxy_new(it->m, p->reg, &it->proxy, err);
    if (st == INFERD_OK)
        st = inferd_registry_add(p->reg, portable_proxy_descriptor(it->proxy), it->dir, err);
    it->registered = st == INFERD_OK;
    return st;
}

static portable_limits limits_of(const inferd_portables *p, const char *name)
{
    portable_limits l = p->limits;
    const inferd_value *own = inferd_value_object_get(p->limits_by, name);
    int64_t v;
    if (inferd_value_get_int(inferd_value_object_get(own, "memory_limit_mb"), &v, NULL) ==
        INFERD_OK)
        l.memory_mb = (uint64_t)v;
    if (inferd_value_get_int(inferd_value_object_get(own, "cpu_limit_s"), &v, NULL) == INFERD_OK)
        l.cpu_s = (uint64_t)v;
    return l;
}

static inferd_status start_host(inferd_portables *p, installed *it, bool restart,
                                inferd_error *err)
{
    portable_host_config hc = {.dir = it->dir, .manifest = it->m, .python = p->python,
                               .sdk_dir = p->sdk_dir, .sock_dir = p->sock_dir, .t = p->t,
                               .limits = limits_of(p, it->m->name), .restart = restart};
    /* An isolated C plugin's process is this program's worker. */
    char *self = it->worker_so ? portable_self_exe() : NULL;
    const char *args[] = {"worker", it->worker_so, NULL};
    if (it->worker_so) {
        if (!self)
            return inferd_error_set(err, INFERD_EIO, "plugin %s: cannot find inferd's own "
                                    "executable (/proc/self/exe) to run its worker", it->name);
        hc.exe = self;
        hc.args = args;
    }
    inferd_status st = portable_host_start(&hc, &it->host, err);
    free(self);
    if (st == INFERD_OK)
        portable_proxy_bind(it->proxy, it->host);
    return st;
}

static installed *find(inferd_portables *p, const char *name)
{
    for (installed *it = p->list; it; it = it->next)
        if (strcmp(it->name, name) == 0)
            return it;
    return NULL;
}

/* ---- open / start / free --------------------------------------------------------- */

/* The C plugins of plugins.isolated: each described by its worker, then
 * registered as a portable plugin whose process is that worker (started
 * with the others by inferd_portables_start). Not recorded: the
 * configuration names them at every start. */
static inferd_status open_isolated(inferd_portables *p, const inferd_config *cfg,
                                   inferd_error *err)
{
    const inferd_props *props = inferd_config_props(cfg);
    const char *dir = inferd_config_string(cfg, "plugins.dir");
    dir = dir && *dir ? dir : inferd_default_plugin_dir();
    for (size_t i = 0; i < inferd_props_list_len(props, "plugins.isolated"); i++) {
        const char *want = inferd_props_list_at(props, "plugins.isolated", i);
        char path[4096];
        if (!inferd_registry_plugin_file(dir, want, path, sizeof path))
            return inferd_error_set(err, INFERD_ENOTFOUND, "plugins.isolated: plugin '%s' is "
                                    "not in the plugin folder %s", want, dir);
        char *name = NULL, *text = NULL;
        inferd_status st = portable_isolated_describe(path, &name, &text, err);
        installed *it = st == INFERD_OK ? calloc(1, sizeof *it) : NULL;
        if (st == INFERD_OK && !it)
            st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        if (st == INFERD_OK && (find(p, name) || inferd_registry_find_plugin(p->reg, name)))
            st = inferd_error_set(err, INFERD_EEXIST, "the name %s is taken", name);
        if (st == INFERD_OK)
            st = portable_manifest_parse(name, text, strlen(text), &it->m, err);
        if (st == INFERD_OK) {
            it->name = name;
            name = NULL;
            it->worker_so = strdup(path);
            it->file = strdup(path);
            char *slash = strrchr(path, '/');
            if (slash)
                *slash = '\0';
            it->dir = strdup(path);
            if (!it->worker_so || !it->file || !it->dir)
                st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        }
        if (st == INFERD_OK && (st = portable_proxy_new(it->m, p->reg, &it->proxy, err)) ==
                                   INFERD_OK &&
            (st = inferd_registry_add(p->reg, portable_proxy_descriptor(it->proxy),
                                      it->worker_so, err)) == INFERD_OK)
            it->registered = true;
        free(name);
        free(text);
        if (st != INFERD_OK) {
            installed_free(p, it);
            return inferd_error_prefix(err, "plugins.isolated: %s", want);
        }
        it->next = p->list;
        p->list = it;
        inferd_log_info(LOG, "plugin %s %s runs isolated in a worker process (%s)", it->name,
                        it->m->version, it->worker_so);
    }
    return INFERD_OK;
}

inferd_status inferd_portables_open(const inferd_config *cfg, inferd_registry *reg, bool exclusive,
                                    inferd_portables **out, inferd_error *err)
{
    *out = NULL;
    inferd_portables *p = calloc(1, sizeof *p);
    if (!p)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    pthread_mutex_init(&p->mu, NULL);
    p->reg = reg;
    p->lock_fd = -1;
    p->state_dir = state_dir_of(cfg);
    p->plugins_dir = p->state_dir ? path_join(p->state_dir, "plugins") : NULL;
    const char *py = inferd_config_string(cfg, "portable.python");
    const char *sdk = inferd_config_string(cfg, "portable.sdk_dir");
    p->python = strdup(py && py[0] ? py : "python3");
    p->sdk_dir = strdup(sdk && sdk[0] ? sdk : inferd_default_python_dir());
    p->t = (portable_timeouts){
        .start_ms = (uint64_t)inferd_config_int(cfg, "portable.start_timeout_ms"),
        .call_ms = (uint64_t)inferd_config_int(cfg, "portable.call_timeout_ms"),
        .heartbeat_ms = (uint64_t)inferd_config_int(cfg, "portable.heartbeat_ms"),
        .heartbeat_timeout_ms = (uint64_t)inferd_config_int(cfg, "portable.heartbeat_timeout_ms"),
        .stop_ms = (uint64_t)inferd_config_int(cfg, "portable.stop_timeout_ms"),
        .log_lines_per_s = (uint64_t)inferd_config_int(cfg, "portable.log_lines_per_s")};
    p->install_timeout_ms = (uint64_t)inferd_config_int(cfg, "portable.install_timeout_ms");
    p->limits = (portable_limits){
        .memory_mb = (uint64_t)inferd_config_int(cfg, "portable.memory_limit_mb"),
        .cpu_s = (uint64_t)inferd_config_int(cfg, "portable.cpu_limit_s")};
    const inferd_value *by = NULL; /* checked with the configuration (its declared fields) */
    inferd_status checked = inferd_config_get(cfg, "portable.limits", &by, err);
    if (checked == INFERD_OK && !(p->limits_by = inferd_value_copy(by)))
        checked = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    if (checked != INFERD_OK) {
        inferd_portables_free(p);
        return checked;
    }
    char tmpl[] = "/tmp/inferd-XXXXXX"; /* mkdtemp makes it 0700 */
    const char *sock = mkdtemp(tmpl);
    p->sock_dir = sock ? strdup(sock) : NULL;
    if (!p->state_dir || !p->plugins_dir || !p->python || !p->sdk_dir || !p->sock_dir) {
        inferd_portables_free(p);
        return inferd_error_set(err, sock ? INFERD_ENOMEM : INFERD_EIO,
                                sock ? "out of memory" : "cannot make a private folder in /tmp");
    }
    /* The state folder is private: its database holds secrets. */
    if (mkdir_p(p->plugins_dir, 0700) != 0 || chmod(p->state_dir, 0700) != 0) {
        inferd_status st = inferd_error_set(err, INFERD_EIO, "state.dir %s: %s", p->state_dir,
                                            strerror(errno));
        inferd_portables_free(p);
        return st;
    }
    /* A daemon and `inferd plugin install/remove` take the folder's lock;
     * readers (plugin list) do not need it. */
    char *lock = path_join(p->state_dir, "lock");
    p->lock_fd = lock && exclusive ? open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600) : -1;
    int open_errno = errno;
    free(lock);
    if (exclusive && p->lock_fd < 0) { /* not another daemon: the folder itself */
        inferd_status st = inferd_error_set(err, INFERD_EIO, "state.dir %s: cannot open its "
                                            "lock file: %s", p->state_dir,
                                            strerror(open_errno));
        inferd_portables_free(p);
        return st;
    }
    if (exclusive && flock(p->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        inferd_status st = inferd_error_set(
            err, INFERD_EBUSY,
            "state.dir %s is in use by a running inferd daemon: install and remove portable "
            "plugins through it (POST, DELETE /plugins/portables), or stop it first",
            p->state_dir);
        inferd_portables_free(p);
        return st;
    }
    inferd_status st = db_open(p, err);
    if (st != INFERD_OK) {
        inferd_portables_free(p);
        return st;
    }

    /* The recorded plugins, in name order. */
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(p->db, "SELECT name, file, installed_at, active, "
                                  "coalesce(folder, name) FROM portables ORDER BY name DESC",
                           -1, &s, NULL) != SQLITE_OK) {
        st = db_error(p->db, "reading portables", err);
        inferd_portables_free(p);
        return st;
    }
    while (sqlite3_step(s) == SQLITE_ROW) {
        installed *it = calloc(1, sizeof *it);
        if (!it)
            break;
        it->name = strdup((const char *)sqlite3_column_text(s, 0));
        it->file = strdup((const char *)sqlite3_column_text(s, 1));
        it->installed_at = sqlite3_column_int64(s, 2);
        it->inactive = sqlite3_column_int(s, 3) == 0;
        const char *folder = (const char *)sqlite3_column_text(s, 4);
        it->dir = folder && !strchr(folder, '/') ? path_join(p->plugins_dir, folder) : NULL;
        inferd_error e = {0};
        if (!it->name || !it->file || !it->dir) {
            installed_free(p, it);
            break;
        }
        if (it->inactive) /* its manifest only, for describing it */
            portable_manifest_load(it->dir, it->name, &it->m, &e);
        else if (load(p, it, &e) != INFERD_OK) {
            snprintf(it->error, sizeof it->error, "%s", e.message);
            inferd_log_error(LOG, "portable plugin %s is not loaded: %s", it->name, e.message);
        }
        it->next = p->list;
        p->list = it;
    }
    sqlite3_finalize(s);
    if ((st = open_isolated(p, cfg, err)) != INFERD_OK) {
        inferd_portables_free(p);
        return st;
    }
    *out = p;
    return INFERD_OK;
}

void inferd_portables_start(inferd_portables *p)
{
    for (installed *it = p->list; it; it = it->next) {
        inferd_error e = {0};
        if (it->registered && !it->host && start_host(p, it, true, &e) != INFERD_OK)
            snprintf(it->error, sizeof it->error, "%s", e.message);
    }
    for (installed *it = p->list; it; it = it->next) {
        inferd_error e = {0};
        if (it->host && portable_host_wait_running(it->host, p->t.start_ms + 1000, &e) != INFERD_OK)
            inferd_log_error(LOG, "%s", e.message);
    }
}

void inferd_portables_free(inferd_portables *p)
{
    if (!p)
        return;
    while (p->list) {
        installed *it = p->list;
        p->list = it->next;
        installed_free(p, it);
    }
    if (p->db)
        sqlite3_close(p->db);
    if (p->lock_fd >= 0)
        close(p->lock_fd);
    if (p->sock_dir)
        rmdir(p->sock_dir);
    pthread_mutex_destroy(&p->mu);
    free(p->state_dir), free(p->plugins_dir), free(p->sock_dir), free(p->python);
    free(p->sdk_dir);
    inferd_value_free(p->limits_by);
    free(p);
}

void inferd_portables_set_hook(inferd_portables *p, inferd_portables_hook hook, void *ctx)
{
    p->hook = hook;
    p->hook_ctx = ctx;
}

/* What an isolated C plugin answers to what only a package can do. */
static inferd_status not_a_package(const installed *it, inferd_error *err)
{
    return inferd_error_set(err, INFERD_EINVAL, "plugin %s is a C plugin running isolated in a "
                            "worker (plugins.isolated: %s), not a package: change the "
                            "configuration and restart instead", it->name, it->worker_so);
}

/* An uploaded package (kept in <state>/uploads/ as the file a version came
 * from) goes with its version. */
static void forget_upload(inferd_portables *p, const char *file)
{
    size_t n = strlen(p->state_dir);
    if (file && strncmp(file, p->state_dir, n) == 0 && strncmp(file + n, "/uploads/", 9) == 0 &&
        unlink(file) != 0 && errno != ENOENT)
        inferd_log_warn(LOG, "removing %s: %s", file, strerror(errno));
}

/* ---- install / remove -------------------------------------------------------------- */

/* EEXIST saying what holds the name: this package, one removed whose
 * components are still in use (a replacement, a subscriber, a background
 * component keep it loaded until the daemon restarts), or a C plugin (its
 * file). Under p->mu. */
static inferd_status name_taken(inferd_portables *p, const char *name, inferd_error *err)
{
    const inferd_plugin_info *held = inferd_registry_find_plugin(p->reg, name);
    if (find(p, name))
        return inferd_error_set(err, INFERD_EEXIST, "portable plugin %s is installed already: "
                                "remove it first (DELETE /plugins/portables/%s)", name, name);
    if (!held)
        return INFERD_OK;
    if (held->path && strncmp(held->path, p->plugins_dir, strlen(p->plugins_dir)) == 0)
        return inferd_error_set(err, INFERD_EEXIST, "portable plugin %s was removed, but its "
                                "components are still in use (an estimator replacement, an "
                                "event subscriber or a background component keep it loaded): "
                                "restart the daemon before installing it again", name);
    return inferd_error_set(err, INFERD_EEXIST, "the name %s is taken by the C plugin %s (%s)",
                            name, held->path ? held->path : "?",
                            inferd_plugin_is_builtin(held) ? "built in" : "loaded");
}

inferd_status inferd_portables_check_name(inferd_portables *p, const char *name,
                                          inferd_error *err)
{
    if (!name || !portable_name_valid(name))
        return inferd_error_set(err, INFERD_EINVAL,
                                "\"%s\" is not a plugin name: 1 to 64 letters, digits, '_' or "
                                "'-', starting with a letter or a digit", name ? name : "");
    pthread_mutex_lock(&p->mu);
    inferd_status st = name_taken(p, name, err);
    pthread_mutex_unlock(&p->mu);
    return st;
}

inferd_status inferd_portables_install(inferd_portables *p, const char *name, const char *zip,
                                       inferd_value **desc, inferd_error *err)
{
    if (desc)
        *desc = NULL;
    inferd_status valid = inferd_portables_check_name(p, name, err);
    if (valid == INFERD_EINVAL)
        return valid;
    struct stat sb;
    if (!zip || zip[0] != '/')
        return inferd_error_set(err, INFERD_EINVAL, "the package must be an absolute path, not "
                                "\"%s\"", zip ? zip : "");
    if (stat(zip, &sb) != 0 || !S_ISREG(sb.st_mode))
        return inferd_error_set(err, INFERD_ENOTFOUND, "package %s: %s", zip,
                                errno && stat(zip, &sb) != 0 ? strerror(errno)
                                                             : "not a regular file");
    pthread_mutex_lock(&p->mu);
    inferd_status taken = name_taken(p, name, err);
    if (taken != INFERD_OK) {
        pthread_mutex_unlock(&p->mu);
        return taken;
    }
    installed *it = calloc(1, sizeof *it);
    inferd_status st = it ? INFERD_OK : INFERD_ENOMEM;
    if (it) {
        it->name = strdup(name);
        it->file = strdup(zip);
        it->dir = path_join(p->plugins_dir, name);
        it->installed_at = (int64_t)time(NULL);
        if (!it->name || !it->file || !it->dir)
            st = INFERD_ENOMEM;
    }
    if (st != INFERD_OK) {
        pthread_mutex_unlock(&p->mu);
        installed_free(p, it);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    /* A folder left by a crash in the middle of an install is not ours to keep. */
    if (access(it->dir, F_OK) == 0)
        portable_remove_tree(it->dir);

    bool extracted = false, hooked = false;
    st = portable_package_extract(zip, it->dir, err);
    extracted = st == INFERD_OK;
    if (st == INFERD_OK)
        st = portable_manifest_load(it->dir, name, &it->m, err);
    if (st == INFERD_OK)
        st = portable_package_run_install(it->dir, name, p->install_timeout_ms, err);
    if (st == INFERD_OK) {
        portable_manifest_free(it->m); /* load() reads it again, with the registry */
        it->m = NULL;
        st = load(p, it, err);
    }
    if (st == INFERD_OK) /* the first start decides: no restart on failure */
        st = start_host(p, it, false, err);
    if (st == INFERD_OK)
        /* A second past the start timeout: the host's own verdict comes first. */
        st = portable_host_wait_running(it->host, p->t.start_ms + 1000, err);
    if (st == INFERD_OK && p->hook) {
        st = p->hook(p->hook_ctx, name, true, err);
        hooked = st == INFERD_OK;
    }
    if (st == INFERD_OK)
        st = db_insert(p, it, err);
    if (st != INFERD_OK) {
        if (hooked) {
            inferd_error e2 = {0};
            p->hook(p->hook_ctx, name, false, &e2);
        }
        char *dir = strdup(it->dir);
        installed_free(p, it);
        if (extracted && dir && portable_remove_tree(dir) != 0)
            inferd_log_warn(LOG, "removing %s: %s", dir, strerror(errno));
        free(dir);
        pthread_mutex_unlock(&p->mu);
        return inferd_error_prefix(err, "portable plugin %s was not installed", name);
    }
    portable_host_set_restart(it->host, true);
    it->next = p->list;
    p->list = it;
    pthread_mutex_unlock(&p->mu);
    inferd_log_info(LOG, "installed portable plugin %s %s from %s", name, it->m->version, zip);
    if (desc)
        *desc = inferd_portables_describe(p, name);
    return INFERD_OK;
}

inferd_status inferd_portables_remove(inferd_portables *p, const char *name, inferd_error *err)
{
    pthread_mutex_lock(&p->mu);
    installed *it = find(p, name);
    if (!it) {
        pthread_mutex_unlock(&p->mu);
        return inferd_error_set(err, INFERD_ENOTFOUND, "no portable plugin named %s is "
                                "installed", name);
    }
    inferd_status st = it->worker_so ? not_a_package(it, err)
                       : p->hook && it->registered ? p->hook(p->hook_ctx, name, false, err)
                                                   : INFERD_OK;
    if (st == INFERD_OK)
        st = db_delete(p, name, err);
    if (st != INFERD_OK) {
        pthread_mutex_unlock(&p->mu);
        return st;
    }
    for (installed **pp = &p->list; *pp; pp = &(*pp)->next)
        if (*pp == it) {
            *pp = it->next;
            break;
        }
    char *dir = strdup(it->dir);
    forget_upload(p, it->file);
    installed_free(p, it);
    if (dir && portable_remove_tree(dir) != 0)
        inferd_log_warn(LOG, "removing %s: %s", dir, strerror(errno));
    free(dir);
    pthread_mutex_unlock(&p->mu);
    inferd_log_info(LOG, "removed portable plugin %s", name);
    return INFERD_OK;
}

/* Takes its components out of the registry (waiting a little for the last
 * instances the service let go of) and stops its process; the manifest
 * stays. EBUSY when instances live on (a pipeline's element). */
static inferd_status unregister(inferd_portables *p, installed *it, inferd_error *err)
{
    inferd_status st = it->registered ? inferd_registry_unload_wait(p->reg, it->name, 2000, err)
                                      : INFERD_OK;
    if (st != INFERD_OK)
        return st;
    it->registered = false;
    portable_host_free(it->host);
    it->host = NULL;
    portable_proxy_free(it->proxy);
    it->proxy = NULL;
    return INFERD_OK;
}

static inferd_status deactivate(inferd_portables *p, installed *it, inferd_error *err)
{
    inferd_status st = p->hook && it->registered ? p->hook(p->hook_ctx, it->name, false, err)
                                                  : INFERD_OK;
    if (st != INFERD_OK)
        return st;
    if ((st = unregister(p, it, err)) != INFERD_OK) {
        inferd_error e2 = {0};
        if (p->hook && p->hook(p->hook_ctx, it->name, true, &e2) != INFERD_OK)
            inferd_log_error(LOG, "%s: %s", it->name, e2.message);
        return st;
    }
    it->inactive = true;
    it->error[0] = '\0';
    return db_set_active(p, it->name, false, err);
}

static inferd_status activate(inferd_portables *p, installed *it, inferd_error *err)
{
    portable_manifest_free(it->m); /* load() reads it again, with the registry */
    it->m = NULL;
    inferd_status st = load(p, it, err);
    if (st == INFERD_OK && (st = start_host(p, it, false, err)) == INFERD_OK)
        st = portable_host_wait_running(it->host, p->t.start_ms + 1000, err);
    if (st == INFERD_OK && p->hook)
        st = p->hook(p->hook_ctx, it->name, true, err);
    if (st == INFERD_OK && (st = db_set_active(p, it->name, true, err)) != INFERD_OK && p->hook) {
        inferd_error e2 = {0};
        p->hook(p->hook_ctx, it->name, false, &e2);
    }
    if (st != INFERD_OK) {
        inferd_error e2 = {0};
        if (unregister(p, it, &e2) != INFERD_OK)
            inferd_log_error(LOG, "%s: %s", it->name, e2.message);
        if (!it->m) { /* keep something to describe */
            inferd_error e3 = {0};
            portable_manifest_load(it->dir, it->name, &it->m, &e3);
        }
        return st;
    }
    portable_host_set_restart(it->host, true);
    it->inactive = false;
    it->error[0] = '\0';
    return INFERD_OK;
}

inferd_status inferd_portables_set_active(inferd_portables *p, const char *name, bool active,
                                          inferd_error *err)
{
    pthread_mutex_lock(&p->mu);
    installed *it = find(p, name);
    inferd_status st = INFERD_OK;
    if (!it)
        st = inferd_error_set(err, INFERD_ENOTFOUND, "no portable plugin named %s is installed",
                              name);
    else if (it->worker_so)
        st = not_a_package(it, err);
    else if (active == !it->inactive)
        st = inferd_error_set(err, INFERD_EEXIST, "portable plugin %s is %s already", name,
                              active ? "active" : "inactive");
    else
        st = active ? activate(p, it, err) : deactivate(p, it, err);
    pthread_mutex_unlock(&p->mu);
    if (st == INFERD_OK)
        inferd_log_info(LOG, "portable plugin %s is %s", name, active ? "active" : "inactive");
    return st;
}

/* ---- upgrade ------------------------------------------------------------------------ */

static inferd_status db_upgraded(inferd_portables *p, const installed *it, const char *version,
                                 const char *file, const char *folder, inferd_error *err)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(p->db, "UPDATE portables SET version = ?, file = ?, folder = ? "
                                  "WHERE name = ?", -1, &s, NULL) != SQLITE_OK)
        return db_error(p->db, "recording the upgrade", err);
    sqlite3_bind_text(s, 1, version, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, file, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, folder, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, it->name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc == SQLITE_DONE && sqlite3_changes(p->db) == 1
               ? INFERD_OK
               : db_error(p->db, "recording the upgrade", err);
}

/* Checks and unpacks zip beside it, and starts it (no restart on failure);
 * *m2, *h2: the new version's manifest and running process. */
static inferd_status prepare_upgrade(inferd_portables *p, installed *it, const char *zip,
                                     const char *dir2, portable_manifest **m2,
                                     portable_host **h2, inferd_error *err)
{
    const portable_manifest *decl_m = it->decl_m ? it->decl_m : it->m;
    inferd_status st = portable_package_extract(zip, dir2, err);
    if (st == INFERD_OK)
        st = portable_manifest_load(dir2, it->name, m2, err);
    char why[300];
    if (st == INFERD_OK && !portable_manifest_same_decls(decl_m, *m2, why, sizeof why))
        st = inferd_error_set(err, INFERD_EINVAL, "version %s declares its components otherwise "
                              "than the running %s: %s. An upgrade in place keeps the "
                              "declarations (its users hold them); remove the plugin and "
                              "install the new version instead", (*m2)->version,
                              it->m->version, why);
    if (st == INFERD_OK)
        st = portable_package_run_install(dir2, it->name, p->install_timeout_ms, err);
    portable_host_config hc = {.dir = dir2, .manifest = *m2, .python = p->python,
                               .sdk_dir = p->sdk_dir, .sock_dir = p->sock_dir, .t = p->t,
                               .limits = limits_of(p, it->name), .restart = false};
    if (st == INFERD_OK && (st = portable_host_start(&hc, h2, err)) == INFERD_OK)
        st = portable_host_wait_running(*h2, p->t.start_ms + 1000, err);
    return st;
}

inferd_status inferd_portables_upgrade(inferd_portables *p, const char *name, const char *zip,
                                       inferd_value **desc, inferd_error *err)
{
    if (desc)
        *desc = NULL;
    struct stat sb;
    if (!zip || zip[0] != '/' || stat(zip, &sb) != 0 || !S_ISREG(sb.st_mode))
        return inferd_error_set(err, INFERD_ENOTFOUND, "package %s: not a regular file",
                                zip ? zip : "");
    pthread_mutex_lock(&p->mu);
    installed *it = find(p, name);
    inferd_status st = INFERD_OK;
    if (!it)
        st = inferd_error_set(err, INFERD_ENOTFOUND, "no portable plugin named %s is installed "
                              "(install it: POST /plugins/portables)", name);
    else if (it->worker_so)
        st = not_a_package(it, err);
    else if (it->inactive)
        st = inferd_error_set(err, INFERD_ESTATE, "portable plugin %s is inactive: activate it "
                              "first, or remove it and install the new version", name);
    else if (!it->registered || !it->host)
        st = inferd_error_set(err, INFERD_ESTATE, "portable plugin %s is not loaded (%s): "
                              "remove it and install the new version", name,
                              it->error[0] ? it->error : "broken");
    if (st != INFERD_OK) {
        pthread_mutex_unlock(&p->mu);
        return st;
    }
    /* The new version's folder: beside the old, named by the time. */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    char folder[128];
    snprintf(folder, sizeof folder, "%s@%lld%03ld", name, (long long)now.tv_sec,
             now.tv_nsec / 1000000);
    char *dir2 = path_join(p->plugins_dir, folder), *file2 = strdup(zip);
    portable_manifest *m2 = NULL;
    portable_host *h2 = NULL;
    if (!dir2 || !file2)
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    else
        st = prepare_upgrade(p, it, zip, dir2, &m2, &h2, err);
    /* Every user moves to it at once; then it is recorded. */
    bool moved = st == INFERD_OK &&
                 (st = portable_proxy_move(it->proxy, h2, err)) == INFERD_OK;
    if (moved && (st = db_upgraded(p, it, m2->version, zip, folder, err)) != INFERD_OK) {
        inferd_error e2 = {0}; /* back to the old process, which still runs */
        if (portable_proxy_move(it->proxy, it->host, &e2) != INFERD_OK)
            inferd_log_error(LOG, "%s: moving back after a failed record: %s", name, e2.message);
    }
    if (st != INFERD_OK) {
        portable_host_free(h2);
        portable_manifest_free(m2);
        if (dir2)
            portable_remove_tree(dir2);
        free(dir2);
        free(file2);
        const char *running = it->m->version;
        pthread_mutex_unlock(&p->mu);
        return inferd_error_prefix(err, "portable plugin %s was not upgraded (version %s serves "
                                   "on)", name, running);
    }
    /* Calls under way finish on the old process; then it stops. */
    portable_host *old = it->host;
    portable_host_set_restart(old, false);
    if (!portable_host_drain(old, p->t.call_ms))
        inferd_log_warn(LOG, "%s: calls to the old version still open after %llu ms fail",
                        name, (unsigned long long)p->t.call_ms);
    portable_host_free(old);
    it->host = h2;
    portable_host_set_restart(h2, true);
    char *previous = strdup(it->m->version);
    /* The registry reports the new version before the old one's text goes. */
    inferd_registry_set_plugin_version(p->reg, name, m2->version);
    if (!it->decl_m)
        it->decl_m = it->m; /* the registry's components are made of it */
    else
        portable_manifest_free(it->m); /* an intermediate version's: its process is gone */
    it->m = m2;
    if (portable_remove_tree(it->dir) != 0)
        inferd_log_warn(LOG, "removing %s: %s", it->dir, strerror(errno));
    free(it->dir);
    it->dir = dir2;
    forget_upload(p, it->file);
    free(it->file);
    it->file = file2;
    pthread_mutex_unlock(&p->mu);
    inferd_log_info(LOG, "upgraded portable plugin %s from %s to %s (%s)", name,
                    previous ? previous : "?", m2->version, zip);
    if (desc && (*desc = inferd_portables_describe(p, name)))
        inferd__put_str(*desc, "previousVersion", previous ? previous : "?", NULL);
    free(previous);
    return INFERD_OK;
}

/* ---- describing ------------------------------------------------------------------------ */

/* What state an installed plugin is in, with its last error. */
static void status_of(const installed *it, portable_status *s)
{
    *s = (portable_status){.state = PORTABLE_FAILED};
    snprintf(s->last_error, sizeof s->last_error, "%.500s", it->error);
    if (it->inactive)
        s->state = PORTABLE_STOPPED;
    else if (it->host)
        portable_host_status(it->host, s);
    else if (!it->error[0])
        s->state = PORTABLE_STOPPED;
}

inferd_status inferd_portables_health(inferd_portables *p, const char *name,
                                      void (*down)(void *ctx, const char *reason), void *ctx)
{
    pthread_mutex_lock(&p->mu);
    bool found = false;
    for (installed *it = p->list; it; it = it->next) {
        if (name && strcmp(it->name, name) != 0)
            continue;
        found = true;
        if (it->inactive)
            continue; /* off on purpose, not down */
        portable_status s;
        status_of(it, &s);
        if (s.state == PORTABLE_RUNNING)
            continue;
        char reason[700];
        snprintf(reason, sizeof reason, "portable plugin %s is %s%s%s", it->name,
                 portable_state_name(s.state), s.last_error[0] ? ": " : "", s.last_error);
        down(ctx, reason);
    }
    pthread_mutex_unlock(&p->mu);
    return found || !name ? INFERD_OK : INFERD_ENOTFOUND;
}

static inferd_value *describe(const installed *it)
{
    inferd_value *o = it->m ? portable_manifest_describe(it->m) : inferd_value_object();
    if (!o)
        return NULL;
    inferd__put(o, "name", inferd_value_string(it->name), NULL);
    portable_status s;
    status_of(it, &s);
    inferd__put(o, "status", inferd_value_string(it->inactive ? "inactive"
                                                              : portable_state_name(s.state)),
                NULL);
    inferd__put(o, "active", inferd_value_bool(!it->inactive), NULL);
    inferd__put(o, "pid", s.pid ? inferd_value_int(s.pid) : inferd_value_null(), NULL);
    inferd__put(o, "restarts", inferd_value_int((int64_t)s.restarts), NULL);
    inferd__put(o, "calls", inferd_value_int((int64_t)s.calls), NULL);
    inferd__put(o, "callFailures", inferd_value_int((int64_t)s.call_failures), NULL);
    inferd__put(o, "lastError",
                s.last_error[0] ? inferd_value_string(s.last_error) : inferd_value_null(), NULL);
    inferd__put(o, "folder", inferd_value_string(it->dir), NULL);
    if (it->worker_so)
        inferd__put(o, "isolated", inferd_value_bool(true), NULL);
    inferd__put(o, "file", inferd_value_string(it->file), NULL);
    inferd__put(o, "installedAt", inferd_value_int(it->installed_at), NULL);
    return o;
}

inferd_value *inferd_portables_describe(inferd_portables *p, const char *name)
{
    pthread_mutex_lock(&p->mu);
    installed *it = find(p, name);
    inferd_value *v = it ? describe(it) : NULL;
    pthread_mutex_unlock(&p->mu);
    return v;
}

inferd_value *inferd_portables_list(inferd_portables *p)
{
    inferd_value *arr = inferd_value_array();
    pthread_mutex_lock(&p->mu);
    for (installed *it = p->list; arr && it; it = it->next)
        inferd__push(arr, describe(it), NULL);
    pthread_mutex_unlock(&p->mu);
    return arr;
}

bool inferd_portables_has(inferd_portables *p, const char *name)
{
    pthread_mutex_lock(&p->mu);
    bool has = find(p, name) != NULL;
    pthread_mutex_unlock(&p->mu);
    return has;
}

const char *inferd_portables_state_dir(const inferd_portables *p) { return p->state_dir; }
