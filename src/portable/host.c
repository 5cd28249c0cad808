/* portable/host.c: the supervisor of one portable plugin process (host.h).
 *
 * One thread per plugin polls: the listening socket (until the plugin
 * connects), the connection, the process's stdout and stderr, a pidfd (the
 * process's end) and a wake-up pipe, with a timeout at the nearest deadline
 * (hello, heartbeat, a call's timeout, the next restart). Everything that
 * changes the connection happens on that thread; callers only add a pending
 * call and write its frame (writers are serialised by wmu).
 */
#include "portable/host.h"
#include "core/build_value.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "inferd/log.h"

#define LOG "portable"
#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 30000
#define STABLE_MS 60000 /* up this long: the next failure starts the back-off over */

extern char **environ;

typedef struct pending {
    uint64_t id;
    uint64_t deadline_us;
    portable_reply_fn fn;
    void *ctx;
    int shm_fd;           /* a pooled memfd the call's blobs went in (-1: none) */
    struct pending *next;
} pending;

/* Pooled memfds: a call's blobs of PROTO_SHM_MIN bytes or more go into one
 * (no memfd made, no page allocated and freed per call); it is the
 * plugin's until it answers. One larger than SHM_POOL_MAX_BYTES is not
 * kept. */
#define SHM_POOL 4
#define SHM_POOL_MAX_BYTES (16u << 20)

struct portable_inst {
    uint64_t id;
    const portable_decl *decl; /* borrowed from the manifest */
    inferd_value *props;       /* owned */
    inferd_instance *inst;     /* borrowed */
    bool started;
    char broken[400];          /* why its replay failed ("" when fine) */
    struct portable_inst *next;
};

typedef struct line_buf {
    int fd;
    char buf[4096];
    size_t len;
} line_buf;

struct portable_host {
    char *name, *dir, *exe, *python, *sdk_dir, *sock_path;
    char **args;          /* owned, NULL-ended: after exe (a worker's), or NULL */
    const portable_manifest *manifest;
    portable_timeouts t;
    portable_limits limits;
    bool restart;

    pthread_t thread;
    bool has_thread;
    int wake[2];
    pthread_mutex_t mu;   /* everything below */
    pthread_cond_t cond;  /* state changes */
    pthread_mutex_t wmu;  /* one writer at a time; conn_fd is closed only under it */

    int listen_fd, conn_fd, pidfd;
    char marker[160];          /* INFERD_PLUGIN_ID=...: in the environment of all it starts */
    line_buf out, errb;
    double log_tokens;         /* lines that may be logged now (t.log_lines_per_s a second) */
    uint64_t log_refill_us, log_dropped;
    pid_t pid;
    portable_state state;
    bool stopping;
    uint64_t restarts, calls, failures;
    unsigned consecutive;  /* failed starts in a row */
    char last_error[512];
    uint64_t start_deadline_us, respawn_at_us, ping_due_us, running_since_us;
    bool ping_out;
    unsigned replay_left;
    uint64_t next_id;
    int shm_pool[SHM_POOL]; /* memfds free for a call's blobs, under mu */
    size_t n_shm_pool;
    unsigned active;      /* calls between portable_host_enter and _leave */
    pending *pend;
    portable_inst *insts;
    unsigned rand_state;
    proto_reader rd;
};

const char *portable_state_name(portable_state s)
{
    static const char *const names[] = {"starting", "running", "restarting", "failed", "stopped"};
    return s <= PORTABLE_STOPPED ? names[s] : "unknown";
}

const char *portable_host_name(const portable_host *h) { return h->name; }

static void wake(portable_host *h)
{
    char c = 1;
    ssize_t r = write(h->wake[1], &c, 1);
    (void)r; /* a full pipe already wakes the thread */
}

/* ---- pending calls --------------------------------------------------------- */

/* Removes and returns the pending call id (caller holds mu). */
static pending *take_pending(portable_host *h, uint64_t id)
{
    for (pending **pp = &h->pend; *pp; pp = &(*pp)->next)
        if ((*pp)->id == id) {
            pending *p = *pp;
            *pp = p->next;
            return p;
        }
    return NULL;
}

/* A memfd back to the pool when the plugin has answered the call it
 * carried (reusable), else closed: a call that timed out or a connection
 * that failed may still have a reader of it. */
static void shm_release(portable_host *h, int fd, bool reusable)
{
    if (fd < 0)
        return;
    struct stat sb;
    if (reusable && fstat(fd, &sb) == 0 && (uint64_t)sb.st_size <= SHM_POOL_MAX_BYTES) {
        pthread_mutex_lock(&h->mu);
        bool kept = h->n_shm_pool < SHM_POOL;
        if (kept)
            h->shm_pool[h->n_shm_pool++] = fd;
        pthread_mutex_unlock(&h->mu);
        if (kept)
            return;
    }
    close(fd);
}

/* A memfd for a call's blobs: from the pool, or new; -1 with errno. */
static int shm_take(portable_host *h)
{
    pthread_mutex_lock(&h->mu);
    int fd = h->n_shm_pool > 0 ? h->shm_pool[--h->n_shm_pool] : -1;
    pthread_mutex_unlock(&h->mu);
    return fd >= 0 ? fd : memfd_create("inferd-blob", MFD_CLOEXEC);
}

/* Fails every pending call with why (callbacks run without mu). */
static void fail_all(portable_host *h, inferd_status code, const char *why)
{
    pthread_mutex_lock(&h->mu);
    pending *list = h->pend;
    h->pend = NULL;
    pthread_mutex_unlock(&h->mu);
    while (list) {
        pending *p = list;
        list = p->next;
        inferd_error e = {0};
        inferd_error_set(&e, code, "%s", why);
        p->fn(p->ctx, NULL, code, &e);
        shm_release(h, p->shm_fd, false);
        free(p);
    }
}

/* ---- the process ------------------------------------------------------------ */

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Logs one line of the plugin's output, within t.log_lines_per_s (a token
 * bucket a second deep): a plugin printing in a loop must not fill the
 * daemon's log. What is dropped is counted and said with the next line. */
static void log_line(portable_host *h, bool is_err, const char *text, size_t len)
{
    uint64_t rate = h->t.log_lines_per_s, now = inferd__now_us();
    if (rate) {
        h->log_tokens += (double)(now - h->log_refill_us) * (double)rate / 1e6;
        if (h->log_tokens > (double)rate)
            h->log_tokens = (double)rate;
        h->log_refill_us = now;
        if (h->log_tokens < 1) {
            if (h->log_dropped++ == 0)
                inferd_log(INFERD_LOG_WARN, LOG, "[%s] prints more than %llu lines a second "
                           "(portable.log_lines_per_s): the rest is counted, not logged",
                           h->name, (unsigned long long)rate);
            return;
        }
        h->log_tokens -= 1;
    }
    if (h->log_dropped) {
        inferd_log(INFERD_LOG_WARN, LOG, "[%s] %llu lines of its output were not logged "
                   "(portable.log_lines_per_s: %llu)", h->name,
                   (unsigned long long)h->log_dropped, (unsigned long long)rate);
        h->log_dropped = 0;
    }
    inferd_log(is_err ? INFERD_LOG_WARN : INFERD_LOG_INFO, LOG, "[%s] %.*s", h->name, (int)len,
               text);
}

/* Logs the complete lines of b's buffer; all of it when flush. */
static void log_lines(portable_host *h, line_buf *b, bool is_err, bool flush)
{
    size_t start = 0;
    for (size_t i = 0; i < b->len; i++) {
        if (b->buf[i] != '\n')
            continue;
        log_line(h, is_err, b->buf + start, i - start);
        start = i + 1;
    }
    if (flush && start < b->len) {
        log_line(h, is_err, b->buf + start, b->len - start);
        start = b->len;
    }
    memmove(b->buf, b->buf + start, b->len - start);
    b->len -= start;
    if (b->len == sizeof b->buf) { /* a line longer than the buffer: log it in pieces */
        log_line(h, is_err, b->buf, b->len);
        b->len = 0;
    }
}

/* Reads what the output pipe has; closes it at its end. */
static void read_output(portable_host *h, line_buf *b, bool is_err)
{
    ssize_t n = read(b->fd, b->buf + b->len, sizeof b->buf - b->len);
    if (n > 0) {
        b->len += (size_t)n;
        log_lines(h, b, is_err, false);
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        log_lines(h, b, is_err, true);
        close_fd(&b->fd);
    }
}

/* Where an executable named without a slash lies in the plugin's PATH. */
static char *find_in_path(const char *file)
{
    if (strchr(file, '/'))
        return strdup(file);
    static const char *const dirs[] = {"/usr/local/bin", "/usr/bin", "/bin"};
    for (size_t i = 0; i < 3; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dirs[i], file);
        if (access(path, X_OK) == 0)
            return strdup(path);
    }
    return NULL;
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Right after the process starts (posix_spawn cannot set limits, and the
 * daemon's own must not change): the interpreter is still starting, long
 * before the plugin's code can allocate. */
static void apply_limits(portable_host *h, pid_t pid)
{
    if (h->limits.memory_mb) {
        rlim_t bytes = (rlim_t)h->limits.memory_mb << 20;
        struct rlimit rl = {bytes, bytes};
        if (prlimit(pid, RLIMIT_DATA, &rl, NULL) != 0)
            inferd_log_warn(LOG, "%s: cannot set its memory limit: %s", h->name, strerror(errno));
    }
    if (h->limits.cpu_s) {
        struct rlimit rl = {(rlim_t)h->limits.cpu_s, (rlim_t)h->limits.cpu_s + 2};
        if (prlimit(pid, RLIMIT_CPU, &rl, NULL) != 0)
            inferd_log_warn(LOG, "%s: cannot set its CPU time limit: %s", h->name,
                            strerror(errno));
    }
}

/* Listens, starts the process; on failure records why (caller holds no lock). */
static inferd_status spawn(portable_host *h, inferd_error *err)
{
    unlink(h->sock_path);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(h->sock_path) >= sizeof addr.sun_path)
        return inferd_error_set(err, INFERD_EINVAL, "socket path %s is too long", h->sock_path);
    strcpy(addr.sun_path, h->sock_path);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(lfd, 1) != 0) {
        int e = errno;
        if (lfd >= 0)
            close(lfd);
        return inferd_error_set(err, INFERD_EIO, "listening on %s: %s", h->sock_path, strerror(e));
    }

    char *interp = NULL;
    bool python = strcmp(h->manifest->language, "python") == 0;
    if (python && !(interp = find_in_path(h->python))) {
        close(lfd);
        return inferd_error_set(err, INFERD_ENOTFOUND,
                                "the Python interpreter %s (portable.python) is not installed "
                                "(looked in /usr/local/bin, /usr/bin, /bin)", h->python);
    }
    char *argv[8] = {python ? interp : h->exe, python ? h->exe : NULL, NULL};
    for (size_t i = 0; !python && h->args && h->args[i] && i < 6; i++)
        argv[i + 1] = h->args[i];

    char env_sock[4200], env_name[200], env_home[4200], env_pp[4200], env_call[64];
    snprintf(env_sock, sizeof env_sock, "INFERD_SOCKET=%s", h->sock_path);
    snprintf(env_name, sizeof env_name, "INFERD_PLUGIN=%s", h->name);
    snprintf(env_home, sizeof env_home, "HOME=%s", h->dir);
    snprintf(env_pp, sizeof env_pp, "PYTHONPATH=%s", h->sdk_dir);
    /* The SDK calls its worker pool stuck when every worker has run one
     * call longer than this (the host has given up on them all). */
    snprintf(env_call, sizeof env_call, "INFERD_CALL_TIMEOUT_MS=%llu",
             (unsigned long long)h->t.call_ms);
    /* No bytecode written: the SDK folder may be shared or read-only. */
    /* Everything the process starts inherits this entry: how what it left
     * behind is found when it ends (portable_sweep_marked). */
    static atomic_uint spawns;
    snprintf(h->marker, sizeof h->marker, "INFERD_PLUGIN_ID=%d-%s-%u", (int)getpid(), h->name,
             atomic_fetch_add(&spawns, 1));
    char *envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "PYTHONUNBUFFERED=1",
                    "PYTHONDONTWRITEBYTECODE=1",
                    "INFERD_PROTOCOL=1", h->marker, env_sock, env_name, env_home, env_call,
                    h->sdk_dir[0] ? env_pp : NULL, NULL};

    int out[2] = {-1, -1}, errp[2] = {-1, -1};
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
        int e = errno;
        close_fd(&out[0]), close_fd(&out[1]), close_fd(&errp[0]), close_fd(&errp[1]);
        close(lfd);
        free(interp);
        return inferd_error_set(err, INFERD_EIO, "pipes: %s", strerror(e));
    }
    pid_t pid;
    int rc = portable_spawn(&pid, argv[0], argv, envp, h->dir, out[1], errp[1]);
    close(out[1]);
    close(errp[1]);
    free(interp);
    if (rc != 0) {
        close(out[0]);
        close(errp[0]);
        close(lfd);
        return inferd_error_set(err, INFERD_EIO, "starting %s: %s", h->exe, strerror(rc));
    }
    apply_limits(h, pid);
    set_nonblock(out[0]);
    set_nonblock(errp[0]);
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);

    pthread_mutex_lock(&h->mu);
    h->listen_fd = lfd;
    h->out.fd = out[0];
    h->errb.fd = errp[0];
    h->out.len = h->errb.len = 0;
    h->pid = pid;
    h->pidfd = pidfd;
    h->state = PORTABLE_STARTING;
    h->start_deadline_us = inferd__now_us() + h->t.start_ms * 1000;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->mu);
    inferd_log_info(LOG, "%s: started %s (pid %d)", h->name, h->exe, (int)pid);
    return INFERD_OK;
}

/* Describes how pid ended (waits for it up to wait_ms). */
static void reap(portable_host *h, int wait_ms, char *how, size_t cap)
{
    snprintf(how, cap, "%s", "");
    if (h->pid <= 0)
        return;
    int status;
    for (int i = 0;; i++) {
        pid_t r = waitpid(h->pid, &status, WNOHANG);
        if (r == h->pid) {
            if (WIFEXITED(status))
                snprintf(how, cap, "exited with status %d", WEXITSTATUS(status));
            else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGXCPU && h->limits.cpu_s)
                snprintf(how, cap, "was killed by signal %d: it used its CPU time limit (%llu "
                         "s, portable.cpu_limit_s)", WTERMSIG(status),
                         (unsigned long long)h->limits.cpu_s);
            else if (WIFSIGNALED(status))
                snprintf(how, cap, "was killed by signal %d (%s)", WTERMSIG(status),
                         strsignal(WTERMSIG(status)));
            h->pid = 0;
            return;
        }
        if (r < 0 || i * 10 >= wait_ms)
            return;
        usleep(10000);
    }
}

/* Ends the process and the connection: SIGTERM first when gentle. */
static void kill_process(portable_host *h, bool gentle, char *how, size_t cap)
{
    if (h->pid > 0) {
        if (gentle) {
            kill(-h->pid, SIGTERM);
            reap(h, (int)h->t.stop_ms, how, cap);
        }
        if (h->pid > 0) {
            kill(-h->pid, SIGKILL);
            reap(h, 5000, how, cap);
        }
    }
    /* What it started outside its group (setsid) ends with it. */
    if (h->marker[0]) {
        size_t swept = portable_sweep_marked(h->marker);
        if (swept)
            inferd_log_warn(LOG, "%s: killed %zu process%s it had left running outside its "
                            "process group", h->name, swept, swept == 1 ? "" : "es");
        h->marker[0] = '\0';
    }
    if (h->conn_fd >= 0)
        shutdown(h->conn_fd, SHUT_RDWR); /* wakes a writer blocked on it */
    pthread_mutex_lock(&h->wmu);
    pthread_mutex_lock(&h->mu);
    close_fd(&h->conn_fd);
    close_fd(&h->listen_fd);
    close_fd(&h->pidfd);
    h->pid = 0;
    pthread_mutex_unlock(&h->mu);
    pthread_mutex_unlock(&h->wmu);
    for (int i = 0; i < 2; i++) { /* what it printed last */
        line_buf *b = i ? &h->errb : &h->out;
        while (b->fd >= 0)
            read_output(h, b, i == 1);
    }
    proto_reader_clear(&h->rd);
    unlink(h->sock_path);
}

/* An event of the plugin's life on the bus (made whole, or not at all). */
static void publish(bool ok, const char *name, inferd_value *payload)
{
    inferd_error e = {0};
    if (!ok) {
        inferd_value_free(payload);
        inferd_log_error(LOG, "out of memory: event %s dropped", name);
    } else if (inferd_event_publish(name, payload, &e) != INFERD_OK) {
        inferd_log_warn(LOG, "event %s: %s", name, e.message);
    }
}

/* The process failed (why): fail its calls, then restart it later, or not. */
static void failed(portable_host *h, const char *why, bool final)
{
    /* How it ended, when it ended on its own (a broken connection usually
     * means an exit a moment later); one that is still alive is killed. */
    char how[128] = "";
    bool lost = strstr(why, "connection") != NULL || strcmp(why, "ended") == 0;
    reap(h, lost ? 200 : 0, how, sizeof how);
    char ignored[128];
    kill_process(h, false, ignored, sizeof ignored);
    char msg[512];
    if (strcmp(why, "ended") == 0)
        snprintf(msg, sizeof msg, "portable plugin %s %s", h->name, how[0] ? how : "ended");
    else
        snprintf(msg, sizeof msg, "portable plugin %s %s%s%s", h->name, why,
                 how[0] ? " and " : "", how);
    pthread_mutex_lock(&h->mu);
    uint64_t now = inferd__now_us();
    if (h->state == PORTABLE_RUNNING && now - h->running_since_us >= STABLE_MS * 1000ull)
        h->consecutive = 0;
    h->consecutive++;
    snprintf(h->last_error, sizeof h->last_error, "%s", msg);
    h->ping_out = false;
    bool again = h->restart && !final && !h->stopping;
    uint64_t delay_ms = 0;
    if (again) {
        delay_ms = BACKOFF_MIN_MS;
        for (unsigned i = 1; i < h->consecutive && delay_ms < BACKOFF_MAX_MS; i++)
            delay_ms *= 2;
        if (delay_ms > BACKOFF_MAX_MS)
            delay_ms = BACKOFF_MAX_MS;
        /* +-20 % so that plugins failing together do not restart together */
        double jitter = 0.8 + 0.4 * ((double)rand_r(&h->rand_state) / RAND_MAX);
        delay_ms = (uint64_t)((double)delay_ms * jitter);
        h->respawn_at_us = now + delay_ms * 1000;
        h->state = PORTABLE_RESTARTING;
        h->restarts++;
    } else {
        h->state = PORTABLE_FAILED;
    }
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->mu);
    if (again)
        inferd_log_error(LOG, "%s; restarting it in %llu ms", msg, (unsigned long long)delay_ms);
    else
        inferd_log_error(LOG, "%s", msg);
    /* Event plugins (an alerting plugin) learn of it at once. */
    bool ok = true;
    inferd_value *ev = inferd_value_object();
    inferd__put_str(ev, "plugin", h->name, &ok);
    inferd__put_str(ev, "reason", msg, &ok);
    inferd__put(ev, "restarting", inferd_value_bool(again), &ok);
    if (again)
        inferd__put(ev, "restartInMs", inferd_value_int((int64_t)delay_ms), &ok);
    publish(ok, "plugin_crashed", ev);
    fail_all(h, INFERD_EPLUGIN, msg);
}

/* ---- sending ------------------------------------------------------------------ */

static char *inst_ref(uint64_t id, char *buf, size_t cap)
{
    snprintf(buf, cap, "i%llu", (unsigned long long)id);
    return buf;
}

/* Adds a pending call and sends it; internal calls (replay, ping) may go
 * out before the plugin is running. */
static inferd_status call_async(portable_host *h, portable_inst *pi, const char *op,
                                inferd_value *fields, const proto_blob *blobs, size_t n,
                                uint64_t timeout_ms, bool internal, portable_reply_fn fn,
                                void *ctx, inferd_error *err)
{
    inferd_value *hdr = fields ? fields : inferd_value_object();
    pending *p = calloc(1, sizeof *p);
    /* Blobs through shared memory go into a pooled memfd, but an estimate's
     * images do not: the plugin may keep an Image over its memory. */
    int shm_fd = -1;
    if (p && proto_blobs_total(blobs, n) >= PROTO_SHM_MIN && strcmp(op, "estimate") != 0 &&
        (shm_fd = shm_take(h)) < 0) {
        free(p);
        inferd_value_free(hdr);
        return inferd_error_set(err, INFERD_EIO, "portable plugin %s: shared memory: %s",
                                h->name, strerror(errno));
    }
    pthread_mutex_lock(&h->mu);
    bool ok = h->conn_fd >= 0 && (internal || h->state == PORTABLE_RUNNING) && !h->stopping;
    char why[600];
    if (!ok)
        snprintf(why, sizeof why, "portable plugin %s is %s%s%s", h->name,
                 portable_state_name(h->state), h->last_error[0] ? ": " : "", h->last_error);
    else if (pi && pi->broken[0]) {
        ok = false;
        snprintf(why, sizeof why, "%s", pi->broken);
    }
    uint64_t id = ++h->next_id;
    if (ok && p && hdr) {
        *p = (pending){.id = id, .deadline_us = inferd__now_us() + timeout_ms * 1000, .fn = fn,
                       .ctx = ctx, .shm_fd = shm_fd, .next = h->pend};
        h->pend = p;
        if (!internal)
            h->calls++;
    }
    pthread_mutex_unlock(&h->mu);
    if (!ok || !p || !hdr) {
        free(p);
        inferd_value_free(hdr);
        shm_release(h, shm_fd, true); /* never sent */
        if (!ok) {
            if (!internal) {
                pthread_mutex_lock(&h->mu);
                h->calls++, h->failures++;
                pthread_mutex_unlock(&h->mu);
            }
            return inferd_error_set(err, INFERD_ESTATE, "%s", why);
        }
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }

    char ref[32];
    inferd_status st = inferd_value_object_set(hdr, "type", inferd_value_string("call"), err);
    if (st == INFERD_OK)
        st = inferd_value_object_set(hdr, "id", inferd_value_int((int64_t)id), err);
    if (st == INFERD_OK)
        st = inferd_value_object_set(hdr, "op", inferd_value_string(op), err);
    if (st == INFERD_OK && pi)
        st = inferd_value_object_set(hdr, "instance",
                                     inferd_value_string(inst_ref(pi->id, ref, sizeof ref)), err);
    if (st == INFERD_OK) {
        pthread_mutex_lock(&h->wmu);
        pthread_mutex_lock(&h->mu);
        int fd = h->conn_fd;
        pthread_mutex_unlock(&h->mu);
        st = fd < 0 ? inferd_error_set(err, INFERD_ESTATE, "portable plugin %s: not connected",
                                       h->name)
                    : proto_send(fd, hdr, blobs, n, shm_fd, inferd__now_us() + timeout_ms * 1000,
                                 err);
        pthread_mutex_unlock(&h->wmu);
    }
    inferd_value_free(hdr);
    if (st != INFERD_OK) {
        pthread_mutex_lock(&h->mu);
        pending *mine = take_pending(h, id);
        if (mine && !internal)
            h->failures++;
        pthread_mutex_unlock(&h->mu);
        if (!mine) /* already failed by the host's thread: its callback reported it */
            return INFERD_OK;
        shm_release(h, mine->shm_fd, false); /* part of it may have gone */
        free(mine);
        return inferd_error_prefix(err, "portable plugin %s: %s", h->name, op);
    }
    return INFERD_OK;
}

inferd_status portable_host_call_async(portable_host *h, portable_inst *pi, const char *op,
                                       inferd_value *fields, const proto_blob *blobs, size_t n,
                                       portable_reply_fn fn, void *ctx, inferd_error *err)
{
    return call_async(h, pi, op, fields, blobs, n, h->t.call_ms, false, fn, ctx, err);
}

typedef struct sync_wait {
    pthread_mutex_t m;
    pthread_cond_t c;
    bool done;
    inferd_status st;
    inferd_error err;
    proto_frame reply;
} sync_wait;

static void sync_done(void *ctx, proto_frame *reply, inferd_status st, const inferd_error *err)
{
    sync_wait *w = ctx;
    pthread_mutex_lock(&w->m);
    w->st = st;
    if (reply) {
        w->reply = *reply;
        *reply = (proto_frame){0};
    } else if (err) {
        w->err = *err;
    }
    w->done = true;
    pthread_cond_signal(&w->c);
    pthread_mutex_unlock(&w->m);
}

static inferd_status call_wait(portable_host *h, portable_inst *pi, const char *op,
                               inferd_value *fields, const proto_blob *blobs, size_t n,
                               uint64_t timeout_ms, bool internal, proto_frame *reply,
                               inferd_error *err)
{
    sync_wait w = {.done = false};
    pthread_mutex_init(&w.m, NULL);
    pthread_cond_init(&w.c, NULL);
    inferd_status st =
        call_async(h, pi, op, fields, blobs, n, timeout_ms, internal, sync_done, &w, err);
    if (st == INFERD_OK) {
        pthread_mutex_lock(&w.m);
        while (!w.done)
            pthread_cond_wait(&w.c, &w.m);
        pthread_mutex_unlock(&w.m);
        st = w.st;
        if (st == INFERD_OK && reply)
            *reply = w.reply;
        else
            proto_frame_clear(&w.reply);
        if (st != INFERD_OK && err)
            *err = w.err;
    }
    pthread_mutex_destroy(&w.m);
    pthread_cond_destroy(&w.c);
    return st;
}

inferd_status portable_host_call(portable_host *h, portable_inst *pi, const char *op,
                                 inferd_value *fields, const proto_blob *blobs, size_t n,
                                 proto_frame *reply, inferd_error *err)
{
    return call_wait(h, pi, op, fields, blobs, n, h->t.call_ms, false, reply, err);
}

/* ---- instances ------------------------------------------------------------------ */

static inferd_value *open_fields(const portable_inst *pi)
{
    inferd_value *f = inferd_value_object();
    if (!f)
        return NULL;
    inferd__put_str(f, "kind", inferd_component_kind_name(pi->decl->kind), NULL);
    inferd__put(f, "component", inferd_value_string(pi->decl->name), NULL);
    inferd__put(f, "props", pi->props ? inferd_value_copy(pi->props) : inferd_value_object(),
                NULL);
    return f;
}

static bool is_running(portable_host *h)
{
    pthread_mutex_lock(&h->mu);
    bool r = h->state == PORTABLE_RUNNING;
    pthread_mutex_unlock(&h->mu);
    return r;
}

inferd_status portable_host_open(portable_host *h, const portable_decl *decl,
                                 const inferd_value *props, inferd_instance *inst,
                                 portable_inst **out, inferd_error *err)
{
    portable_inst *pi = calloc(1, sizeof *pi);
    if (!pi)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    pi->decl = decl;
    pi->inst = inst;
    pi->props = props ? inferd_value_copy(props) : inferd_value_object();
    pthread_mutex_lock(&h->mu);
    pi->id = ++h->next_id;
    pi->next = h->insts;
    h->insts = pi;
    pthread_mutex_unlock(&h->mu);
    if (is_running(h)) {
        inferd_status st = call_wait(h, pi, "open", open_fields(pi), NULL, 0, h->t.call_ms, false,
                                     NULL, err);
        if (st != INFERD_OK) {
            portable_host_close(h, pi); /* forgets it; the close call fails harmlessly */
            return st;
        }
    } /* else: opened when the plugin (re)starts */
    *out = pi;
    return INFERD_OK;
}

inferd_status portable_host_start_inst(portable_host *h, portable_inst *pi, inferd_error *err)
{
    pthread_mutex_lock(&h->mu);
    pi->started = true;
    pthread_mutex_unlock(&h->mu);
    if (!is_running(h))
        return INFERD_OK; /* started at the plugin's start */
    inferd_status st = call_wait(h, pi, "start", NULL, NULL, 0, h->t.call_ms, false, NULL, err);
    if (st != INFERD_OK) {
        pthread_mutex_lock(&h->mu);
        pi->started = false;
        pthread_mutex_unlock(&h->mu);
    }
    return st;
}

void portable_host_stop_inst(portable_host *h, portable_inst *pi)
{
    pthread_mutex_lock(&h->mu);
    bool was = pi->started;
    pi->started = false;
    pthread_mutex_unlock(&h->mu);
    inferd_error e = {0};
    if (was && is_running(h) &&
        call_wait(h, pi, "stop", NULL, NULL, 0, h->t.stop_ms, false, NULL, &e) != INFERD_OK)
        inferd_log_warn(LOG, "%s: stopping %s: %s", h->name, pi->decl->name, e.message);
}

void portable_host_close(portable_host *h, portable_inst *pi)
{
    inferd_error e = {0};
    if (is_running(h) &&
        call_wait(h, pi, "close", NULL, NULL, 0, h->t.stop_ms, false, NULL, &e) != INFERD_OK)
        inferd_log_warn(LOG, "%s: closing %s: %s", h->name, pi->decl->name, e.message);
    pthread_mutex_lock(&h->mu);
    for (portable_inst **pp = &h->insts; *pp; pp = &(*pp)->next)
        if (*pp == pi) {
            *pp = pi->next;
            break;
        }
    pthread_mutex_unlock(&h->mu);
    inferd_value_free(pi->props);
    free(pi);
}

/* ---- the handshake and replay ------------------------------------------------ */

static void replay_step_done(portable_host *h)
{
    pthread_mutex_lock(&h->mu);
    bool restarted = false;
    uint64_t restarts = h->restarts;
    if (h->replay_left > 0 && --h->replay_left == 0 && h->state == PORTABLE_STARTING) {
        h->state = PORTABLE_RUNNING;
        h->running_since_us = inferd__now_us();
        h->ping_due_us = h->running_since_us + h->t.heartbeat_ms * 1000;
        restarted = h->restarts > 0;
        pthread_cond_broadcast(&h->cond);
    }
    pthread_mutex_unlock(&h->mu);
    if (restarted) {
        inferd_log_info(LOG, "portable plugin %s is running again (restart %llu)", h->name,
                        (unsigned long long)restarts);
        bool ok = true;
        inferd_value *ev = inferd_value_object();
        inferd__put_str(ev, "plugin", h->name, &ok);
        inferd__put(ev, "restarts", inferd_value_int((int64_t)restarts), &ok);
        publish(ok, "plugin_restarted", ev);
    }
}

typedef struct replay_ctx {
    portable_host *h;
    uint64_t inst_id;
    bool opening; /* false: the start after it */
} replay_ctx;

static portable_inst *find_inst(portable_host *h, uint64_t id)
{
    for (portable_inst *pi = h->insts; pi; pi = pi->next)
        if (pi->id == id)
            return pi;
    return NULL;
}

static void replay_done(void *ctx, proto_frame *reply, inferd_status st, const inferd_error *err)
{
    replay_ctx *rc = ctx;
    portable_host *h = rc->h;
    (void)reply;
    pthread_mutex_lock(&h->mu);
    portable_inst *pi = find_inst(h, rc->inst_id);
    bool start_next = false;
    if (pi && st != INFERD_OK)
        snprintf(pi->broken, sizeof pi->broken, "portable plugin %.64s: %s %.64s: %.100s", h->name,
                 rc->opening ? "opening" : "starting", pi->decl->name,
                 err ? err->message : "failed");
    else if (pi)
        start_next = rc->opening && pi->started;
    pthread_mutex_unlock(&h->mu);
    if (st != INFERD_OK && pi)
        inferd_log_error(LOG, "%s", pi->broken);
    if (start_next) {
        rc->opening = false;
        inferd_error e = {0};
        if (call_async(h, pi, "start", NULL, NULL, 0, h->t.call_ms, true, replay_done, rc, &e) ==
            INFERD_OK)
            return; /* this step continues */
    }
    free(rc);
    replay_step_done(h);
}

/* Opens (and starts) again every instance the plugin had; running after. */
static void replay(portable_host *h)
{
    pthread_mutex_lock(&h->mu);
    size_t n = 0;
    for (portable_inst *pi = h->insts; pi; pi = pi->next)
        n++;
    uint64_t *ids = calloc(n ? n : 1, sizeof *ids);
    n = 0;
    for (portable_inst *pi = h->insts; ids && pi; pi = pi->next) {
        pi->broken[0] = '\0';
        ids[n++] = pi->id;
    }
    h->replay_left = (unsigned)n + 1; /* +1: this function's own step */
    pthread_mutex_unlock(&h->mu);
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&h->mu);
        portable_inst *pi = find_inst(h, ids[i]);
        inferd_value *fields = pi ? open_fields(pi) : NULL;
        pthread_mutex_unlock(&h->mu);
        replay_ctx *rc = malloc(sizeof *rc);
        inferd_error e = {0};
        if (!pi || !rc ||
            call_async(h, pi, "open", fields, NULL, 0, h->t.call_ms, true, replay_done,
                       (*rc = (replay_ctx){h, ids[i], true}, rc), &e) != INFERD_OK) {
            free(rc);
            replay_step_done(h);
        }
    }
    free(ids);
    replay_step_done(h);
}

/* Sends a reply-less message (welcome, refused) on the connection. */
static void send_plain(portable_host *h, inferd_value *msg)
{
    inferd_error e = {0};
    pthread_mutex_lock(&h->wmu);
    if (h->conn_fd >= 0)
        proto_send(h->conn_fd, msg, NULL, 0, -1, inferd__now_us() + 1000000, &e);
    pthread_mutex_unlock(&h->wmu);
    inferd_value_free(msg);
}

/* Checks hello against the manifest; "" when it matches, else why not. */
static void check_hello(portable_host *h, const inferd_value *hello, char *why, size_t cap)
{
    why[0] = '\0';
    int64_t proto = inferd_value_int_or(inferd_value_object_get(hello, "protocol"), -1);
    const char *name = inferd_value_string_or(inferd_value_object_get(hello, "name"), "");
    const inferd_value *comps = inferd_value_object_get(hello, "components");
    if (proto != PROTO_VERSION) {
        snprintf(why, cap, "speaks protocol version %lld; this daemon speaks %d",
                 (long long)proto, PROTO_VERSION);
        return;
    }
    if (strcmp(name, h->name) != 0) {
        snprintf(why, cap, "says its name is \"%s\", its package says \"%s\"", name, h->name);
        return;
    }
    size_t n = inferd_value_array_len(comps);
    for (size_t i = 0; i < n; i++) {
        const inferd_value *c = inferd_value_array_get(comps, i);
        const char *kind = inferd_value_string_or(inferd_value_object_get(c, "kind"), "?");
        const char *cname = inferd_value_string_or(inferd_value_object_get(c, "name"), "?");
        bool found = false;
        for (size_t d = 0; d < h->manifest->n_decls && !found; d++)
            found = strcmp(h->manifest->decls[d].name, cname) == 0 &&
                    strcmp(inferd_component_kind_name(h->manifest->decls[d].kind), kind) == 0;
        if (!found) {
            snprintf(why, cap, "provides %s %s, which its manifest %s.json does not declare",
                     kind, cname, h->name);
            return;
        }
    }
    if (n != h->manifest->n_decls)
        snprintf(why, cap, "provides %zu components; its manifest %s.json declares %zu", n,
                 h->name, h->manifest->n_decls);
}

static void on_hello(portable_host *h, const inferd_value *hello)
{
    char why[400];
    check_hello(h, hello, why, sizeof why);
    inferd_value *msg = inferd_value_object();
    if (why[0]) {
        inferd__put(msg, "type", inferd_value_string("refused"), NULL);
        inferd__put(msg, "message", inferd_value_string(why), NULL);
        send_plain(h, msg);
        char full[460];
        snprintf(full, sizeof full, "was refused: it %s", why);
        failed(h, full, true);
        return;
    }
    inferd__put(msg, "type", inferd_value_string("welcome"), NULL);
    inferd__put(msg, "protocol", inferd_value_int(PROTO_VERSION), NULL);
    inferd__put(msg, "heartbeatMs", inferd_value_int((int64_t)h->t.heartbeat_ms), NULL);
    send_plain(h, msg);
    inferd_log_info(LOG, "%s: connected (pid %d)", h->name, (int)h->pid);
    replay(h);
}

/* ---- frames from the plugin ------------------------------------------------------ */

static void on_reply(portable_host *h, proto_frame *f)
{
    int64_t id = inferd_value_int_or(inferd_value_object_get(f->header, "id"), -1);
    pthread_mutex_lock(&h->mu);
    pending *p = id > 0 ? take_pending(h, (uint64_t)id) : NULL;
    bool ok = inferd_value_bool_or(inferd_value_object_get(f->header, "ok"), false);
    if (p && !ok)
        h->failures++;
    pthread_mutex_unlock(&h->mu);
    if (!p)
        return; /* timed out already */
    if (ok) {
        p->fn(p->ctx, f, INFERD_OK, NULL);
    } else {
        const inferd_value *e = inferd_value_object_get(f->header, "error");
        /* "busy": it cannot take the call now (the SDK's answer to a ping
         * when its call workers are all stuck); anything else is a failure. */
        const char *code = inferd_value_string_or(inferd_value_object_get(e, "code"), "");
        inferd_status st = strcmp(code, "busy") == 0 ? INFERD_EBUSY : INFERD_EPLUGIN;
        inferd_error err = {0};
        inferd_error_set(&err, st, "%s",
                         inferd_value_string_or(inferd_value_object_get(e, "message"),
                                                "the plugin failed without a message"));
        p->fn(p->ctx, NULL, st, &err);
    }
    shm_release(h, p->shm_fd, true); /* answered: the plugin is done with it */
    free(p);
}

static void on_emit(portable_host *h, proto_frame *f)
{
    const char *ref = inferd_value_string_or(inferd_value_object_get(f->header, "instance"), "");
    uint64_t id = ref[0] == 'i' ? strtoull(ref + 1, NULL, 10) : 0;
    pthread_mutex_lock(&h->mu);
    portable_inst *pi = find_inst(h, id);
    inferd_instance *inst = pi ? pi->inst : NULL;
    pthread_mutex_unlock(&h->mu);
    inferd_value *msg = NULL;
    inferd_error e = {0};
    if (!inst) {
        inferd_log_warn(LOG, "%s: emit for unknown instance \"%s\" dropped", h->name, ref);
        return;
    }
    if (proto_decode_value(inferd_value_object_get(f->header, "message"), f, &msg, &e) != INFERD_OK ||
        inferd_instance_emit(inst, msg, &e) != INFERD_OK)
        inferd_log_warn(LOG, "%s: a message of source %s was dropped: %s", h->name,
                        pi->decl->name, e.message);
}

static void on_publish(portable_host *h, proto_frame *f)
{
    const char *event = inferd_value_string_or(inferd_value_object_get(f->header, "event"), "");
    inferd_value *payload = NULL;
    inferd_error e = {0};
    if (!event[0] ||
        proto_decode_value(inferd_value_object_get(f->header, "payload"), f, &payload, &e) ||
        inferd_event_publish(event, payload, &e) != INFERD_OK)
        inferd_log_warn(LOG, "%s: publish of event \"%s\" failed: %s", h->name, event,
                        event[0] ? e.message : "no event name");
}

/* An instance's own counter (inferd_instance_count): on the element and on
 * /metrics, as a C plugin's. */
static void on_count(portable_host *h, proto_frame *f)
{
    const char *ref = inferd_value_string_or(inferd_value_object_get(f->header, "instance"), "");
    const char *name = inferd_value_string_or(inferd_value_object_get(f->header, "name"), "");
    int64_t delta = inferd_value_int_or(inferd_value_object_get(f->header, "delta"), 1);
    uint64_t id = ref[0] == 'i' ? strtoull(ref + 1, NULL, 10) : 0;
    pthread_mutex_lock(&h->mu);
    portable_inst *pi = find_inst(h, id);
    if (pi && name[0])
        inferd_instance_count(pi->inst, name, delta); /* no lock inside: atomic counters */
    pthread_mutex_unlock(&h->mu);
    if (!pi || !name[0])
        inferd_log_warn(LOG, "%s: count \"%s\" for %s dropped", h->name, name,
                        pi ? "no name" : "an unknown instance");
}

/* A metric message: the instance's own metric (inferd_metric_*). */
static void on_metric(portable_host *h, proto_frame *f)
{
    const inferd_value *hd = f->header;
    const char *ref = inferd_value_string_or(inferd_value_object_get(hd, "instance"), "");
    const char *op = inferd_value_string_or(inferd_value_object_get(hd, "op"), "");
    const char *name = inferd_value_string_or(inferd_value_object_get(hd, "name"), "");
    double value = inferd_value_double_or(inferd_value_object_get(hd, "value"), 0);
    /* The labels as key, value pairs; more than the host takes are passed on
     * (one pair too many), so that the refusal is the metric's own. */
    const inferd_value *lv = inferd_value_object_get(hd, "labels");
    const char *labels[2 * 9 + 1] = {0};
    size_t n = 0;
    const char *key;
    inferd_value *v;
    bool bad = lv && !inferd_value_is(lv, INFERD_VALUE_OBJECT);
    for (size_t i = 0; !bad && n < 2 * 9 && inferd_value_object_entry(lv, i, &key, &v); i++) {
        labels[n++] = key;
        labels[n++] = inferd_value_string_or(v, NULL);
        bad = labels[n - 1] == NULL;
    }
    uint64_t id = ref[0] == 'i' ? strtoull(ref + 1, NULL, 10) : 0;
    bool known = strcmp(op, "add") == 0 || strcmp(op, "set") == 0 ||
                 strcmp(op, "observe") == 0 || strcmp(op, "describe") == 0;
    pthread_mutex_lock(&h->mu);
    portable_inst *pi = bad ? NULL : find_inst(h, id);
    if (pi && strcmp(op, "add") == 0)
        inferd_metric_add(pi->inst, name, labels, value); /* a refusal is logged there */
    else if (pi && strcmp(op, "set") == 0)
        inferd_metric_set(pi->inst, name, labels, value);
    else if (pi && strcmp(op, "observe") == 0)
        inferd_metric_observe(pi->inst, name, labels, value);
    else if (pi && strcmp(op, "describe") == 0) {
        static const char *const kinds[] = {"counter", "gauge", "histogram"};
        const char *kind = inferd_value_string_or(inferd_value_object_get(hd, "kind"), "");
        const inferd_value *bv = inferd_value_object_get(hd, "buckets");
        double bounds[65];
        size_t nb = inferd_value_array_len(bv);
        for (size_t i = 0; i < nb && i < 65; i++)
            bounds[i] = inferd_value_double_or(inferd_value_array_get(bv, i), 0);
        int k = 0;
        while (k < 3 && strcmp(kind, kinds[k]) != 0)
            k++;
        /* An unknown kind is passed on as one: refused (and said) there. */
        inferd_metric_describe(pi->inst, name, (inferd_metric_kind)k,
                               inferd_value_string_or(inferd_value_object_get(hd, "help"), NULL),
                               bv ? bounds : NULL, nb > 65 ? 65 : nb);
    }
    pthread_mutex_unlock(&h->mu);
    if (!pi || !known)
        inferd_log_warn(LOG, "%s: metric \"%s\" (%s) dropped: %s", h->name, name, op,
                        bad ? "its labels are not an object of strings"
                        : !pi ? "an unknown instance" : "an unknown op");
}

static void on_log(portable_host *h, proto_frame *f)
{
    const char *lv = inferd_value_string_or(inferd_value_object_get(f->header, "level"), "info");
    const char *text = inferd_value_string_or(inferd_value_object_get(f->header, "message"), "");
    inferd_log_level level = INFERD_LOG_INFO;
    if (inferd_log_level_parse(lv, &level, NULL) != INFERD_OK)
        level = INFERD_LOG_INFO;
    inferd_log(level, LOG, "[%s] %s", h->name, text);
}

/* Handles one frame; false when the plugin broke the protocol (why). */
static bool on_frame(portable_host *h, proto_frame *f, char *why, size_t cap)
{
    const char *type = inferd_value_string_or(inferd_value_object_get(f->header, "type"), "");
    pthread_mutex_lock(&h->mu);
    bool starting = h->state == PORTABLE_STARTING && h->replay_left == 0;
    pthread_mutex_unlock(&h->mu);
    if (starting) { /* before the handshake only hello is understood */
        if (strcmp(type, "hello") != 0) {
            snprintf(why, cap, "sent \"%s\" before its hello", type);
            return false;
        }
        on_hello(h, f->header);
        return true;
    }
    if (strcmp(type, "reply") == 0)
        on_reply(h, f);
    else if (strcmp(type, "emit") == 0)
        on_emit(h, f);
    else if (strcmp(type, "publish") == 0)
        on_publish(h, f);
    else if (strcmp(type, "count") == 0)
        on_count(h, f);
    else if (strcmp(type, "metric") == 0)
        on_metric(h, f);
    else if (strcmp(type, "log") == 0)
        on_log(h, f);
    else {
        snprintf(why, cap, "sent a message of unknown type \"%s\"", type);
        return false;
    }
    return true;
}

static void read_conn(portable_host *h)
{
    for (;;) {
        long n = proto_reader_fill(&h->rd, h->conn_fd);
        if (n == 0) {
            failed(h, "closed its connection", false);
            return;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            char why[160];
            snprintf(why, sizeof why, "broke its connection (%s)", strerror(errno));
            failed(h, why, false);
            return;
        }
        for (;;) {
            proto_frame f;
            int got = 0;
            inferd_error e = {0};
            if (proto_reader_next(&h->rd, &f, &got, &e) != INFERD_OK) {
                char why[400];
                snprintf(why, sizeof why, "answered garbage (%.380s)", e.message);
                failed(h, why, false);
                return;
            }
            if (!got)
                break;
            char why[200];
            bool ok = on_frame(h, &f, why, sizeof why);
            proto_frame_clear(&f);
            if (!ok) {
                char full[260];
                snprintf(full, sizeof full, "answered garbage: it %s", why);
                failed(h, full, false);
                return;
            }
            if (h->conn_fd < 0)
                return; /* refused */
        }
        /* Less came than there was room for: the socket is empty now, and
         * the next poll says when it is not (no read just to hear EAGAIN). */
        if ((size_t)n < h->rd.last_room)
            break;
    }
}

/* ---- the thread ----------------------------------------------------------------- */

static void pong(void *ctx, proto_frame *reply, inferd_status st, const inferd_error *err)
{
    portable_host *h = ctx;
    (void)reply;
    pthread_mutex_lock(&h->mu);
    h->ping_out = false;
    pthread_mutex_unlock(&h->mu);
    if (st == INFERD_ETIMEOUT) { /* no answer in time; a lost connection is handled already */
        if (err && strstr(err->message, "timed out")) {
            char why[160];
            snprintf(why, sizeof why, "missed its heartbeat (no answer within %llu ms)",
                     (unsigned long long)h->t.heartbeat_timeout_ms);
            failed(h, why, false);
        }
    } else if (st == INFERD_EBUSY && err) {
        /* It answered, and said it cannot serve (the SDK: every call
         * worker stuck): restarted like a process that stopped answering. */
        char why[400];
        snprintf(why, sizeof why, "reported itself unhealthy: %.340s", err->message);
        failed(h, why, false);
    }
}

/* Fails the calls past their deadline. */
static void expire_calls(portable_host *h, uint64_t now)
{
    pthread_mutex_lock(&h->mu);
    pending *expired = NULL;
    for (pending **pp = &h->pend; *pp;) {
        if ((*pp)->deadline_us <= now) {
            pending *p = *pp;
            *pp = p->next;
            p->next = expired;
            expired = p;
            h->failures++;
        } else {
            pp = &(*pp)->next;
        }
    }
    pthread_mutex_unlock(&h->mu);
    while (expired) {
        pending *p = expired;
        expired = p->next;
        inferd_error e = {0};
        inferd_error_set(&e, INFERD_ETIMEOUT, "portable plugin %s: the call timed out", h->name);
        p->fn(p->ctx, NULL, INFERD_ETIMEOUT, &e);
        shm_release(h, p->shm_fd, false);
        free(p);
    }
}

static uint64_t min_nonzero(uint64_t a, uint64_t b) { return !a ? b : !b ? a : a < b ? a : b; }

static void *host_main(void *arg)
{
    portable_host *h = arg;
    for (;;) {
        uint64_t now = inferd__now_us();
        pthread_mutex_lock(&h->mu);
        if (h->stopping) {
            pthread_mutex_unlock(&h->mu);
            break;
        }
        portable_state state = h->state;
        uint64_t deadline = 0;
        for (pending *p = h->pend; p; p = p->next)
            deadline = min_nonzero(deadline, p->deadline_us);
        if (state == PORTABLE_STARTING && h->replay_left == 0)
            deadline = min_nonzero(deadline, h->start_deadline_us);
        if (state == PORTABLE_RUNNING && !h->ping_out)
            deadline = min_nonzero(deadline, h->ping_due_us);
        if (state == PORTABLE_RESTARTING)
            deadline = min_nonzero(deadline, h->respawn_at_us);
        struct pollfd pf[6];
        int n = 0;
        pf[n++] = (struct pollfd){.fd = h->wake[0], .events = POLLIN};
        int i_listen = -1, i_conn = -1, i_out = -1, i_err = -1, i_pid = -1;
        if (h->listen_fd >= 0 && h->conn_fd < 0)
            i_listen = n, pf[n++] = (struct pollfd){.fd = h->listen_fd, .events = POLLIN};
        if (h->conn_fd >= 0)
            i_conn = n, pf[n++] = (struct pollfd){.fd = h->conn_fd, .events = POLLIN};
        if (h->out.fd >= 0)
            i_out = n, pf[n++] = (struct pollfd){.fd = h->out.fd, .events = POLLIN};
        if (h->errb.fd >= 0)
            i_err = n, pf[n++] = (struct pollfd){.fd = h->errb.fd, .events = POLLIN};
        if (h->pidfd >= 0)
            i_pid = n, pf[n++] = (struct pollfd){.fd = h->pidfd, .events = POLLIN};
        pthread_mutex_unlock(&h->mu);

        int ms = -1;
        if (deadline)
            ms = deadline <= now ? 0 : (int)((deadline - now + 999) / 1000);
        if (h->pidfd < 0 && h->pid > 0 && (ms < 0 || ms > 100))
            ms = 100; /* no pidfd: look for the process's end now and then */
        int r = poll(pf, (nfds_t)n, ms);
        if (r < 0 && errno != EINTR)
            break;
        if (r > 0 && (pf[0].revents & POLLIN)) {
            char buf[64];
            while (read(h->wake[0], buf, sizeof buf) > 0) {
            }
        }
        if (i_out >= 0 && pf[i_out].revents)
            read_output(h, &h->out, false);
        if (i_err >= 0 && pf[i_err].revents)
            read_output(h, &h->errb, true);
        if (i_listen >= 0 && (pf[i_listen].revents & POLLIN)) {
            int c = accept4(h->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (c >= 0) {
                pthread_mutex_lock(&h->mu);
                h->conn_fd = c;
                pthread_mutex_unlock(&h->mu);
                proto_reader_init(&h->rd);
            }
        }
        if (i_conn >= 0 && pf[i_conn].revents && h->conn_fd >= 0)
            read_conn(h);
        bool gone = (i_pid >= 0 && pf[i_pid].revents && h->pid > 0) ||
                    (h->pidfd < 0 && h->pid > 0 && waitpid(h->pid, NULL, WNOHANG | WNOWAIT) == h->pid);
        if (gone) {
            if (h->conn_fd >= 0)
                read_conn(h); /* what it said before it went */
            if (h->pid > 0)
                failed(h, "ended", false);
        }

        now = inferd__now_us();
        expire_calls(h, now);
        pthread_mutex_lock(&h->mu);
        state = h->state;
        bool hello_late = state == PORTABLE_STARTING && h->replay_left == 0 &&
                          now >= h->start_deadline_us && h->pid > 0;
        bool ping = state == PORTABLE_RUNNING && !h->ping_out && now >= h->ping_due_us;
        bool respawn = state == PORTABLE_RESTARTING && now >= h->respawn_at_us;
        if (ping) {
            h->ping_out = true;
            h->ping_due_us = now + h->t.heartbeat_ms * 1000;
        }
        pthread_mutex_unlock(&h->mu);
        if (hello_late) {
            char why[160];
            snprintf(why, sizeof why, "did not say hello within %llu ms (portable.start_timeout_ms)",
                     (unsigned long long)h->t.start_ms);
            failed(h, why, false);
        }
        if (ping) {
            inferd_error e = {0};
            if (call_async(h, NULL, "ping", NULL, NULL, 0, h->t.heartbeat_timeout_ms, true, pong,
                           h, &e) != INFERD_OK) {
                pthread_mutex_lock(&h->mu);
                h->ping_out = false;
                pthread_mutex_unlock(&h->mu);
            }
        }
        if (respawn) {
            inferd_error e = {0};
            if (spawn(h, &e) != INFERD_OK)
                failed(h, e.message, false);
        }
    }
    char how[128];
    kill_process(h, true, how, sizeof how);
    pthread_mutex_lock(&h->mu);
    h->state = PORTABLE_STOPPED;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->mu);
    char msg[300];
    snprintf(msg, sizeof msg, "portable plugin %s was stopped", h->name);
    fail_all(h, INFERD_ESTATE, msg);
    return NULL;
}

/* ---- life -------------------------------------------------------------------------- */

static char *join_path(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/%s", a, b);
    return s;
}

inferd_status portable_host_start(const portable_host_config *cfg, portable_host **out,
                                  inferd_error *err)
{
    *out = NULL;
    portable_host *h = calloc(1, sizeof *h);
    if (!h)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    const portable_manifest *m = cfg->manifest;
    char sock_name[128];
    snprintf(sock_name, sizeof sock_name, "%s.sock", m->name);
    h->name = strdup(m->name);
    h->dir = strdup(cfg->dir);
    h->exe = cfg->exe ? strdup(cfg->exe) : join_path(cfg->dir, m->executable);
    size_t n_args = 0;
    while (cfg->args && cfg->args[n_args])
        n_args++;
    bool args_ok = true;
    if (n_args && (args_ok = (h->args = calloc(n_args + 1, sizeof *h->args)) != NULL))
        for (size_t i = 0; i < n_args && args_ok; i++)
            args_ok = (h->args[i] = strdup(cfg->args[i])) != NULL;
    h->python = strdup(cfg->python && cfg->python[0] ? cfg->python : "python3");
    h->sdk_dir = strdup(cfg->sdk_dir ? cfg->sdk_dir : "");
    h->sock_path = join_path(cfg->sock_dir, sock_name);
    h->manifest = m;
    h->t = cfg->t;
    h->limits = cfg->limits;
    h->log_tokens = (double)h->t.log_lines_per_s; /* a full second's worth to start */
    h->log_refill_us = inferd__now_us();
    h->restart = cfg->restart;
    h->listen_fd = h->conn_fd = h->pidfd = h->out.fd = h->errb.fd = -1;
    h->wake[0] = h->wake[1] = -1;
    h->rand_state = (unsigned)(inferd__now_us() ^ (uint64_t)getpid());
    pthread_mutex_init(&h->mu, NULL);
    inferd__cond_init(&h->cond);
    pthread_mutex_init(&h->wmu, NULL);
    if (!h->name || !h->dir || !h->exe || !h->python || !h->sdk_dir || !h->sock_path || !args_ok ||
        pipe2(h->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        portable_host_free(h);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    inferd_status st = spawn(h, err);
    if (st != INFERD_OK) {
        /* At install, a plugin that cannot even start is refused; at boot it
         * is retried like any other failure. */
        if (!h->restart) {
            portable_host_free(h);
            return inferd_error_prefix(err, "portable plugin %s", m->name);
        }
        failed(h, err->message, false);
    }
    if (pthread_create(&h->thread, NULL, host_main, h) != 0) {
        char how[64];
        kill_process(h, false, how, sizeof how);
        portable_host_free(h);
        return inferd_error_set(err, INFERD_EIO, "cannot start a thread");
    }
    h->has_thread = true;
    *out = h;
    return INFERD_OK;
}

inferd_status portable_host_wait_running(portable_host *h, uint64_t timeout_ms, inferd_error *err)
{
    struct timespec until = inferd__abs_us(inferd__now_us() + timeout_ms * 1000);
    pthread_mutex_lock(&h->mu);
    while (h->state == PORTABLE_STARTING && !h->stopping)
        if (pthread_cond_timedwait(&h->cond, &h->mu, &until) == ETIMEDOUT)
            break;
    portable_state s = h->state;
    char last[512];
    snprintf(last, sizeof last, "%s", h->last_error);
    pthread_mutex_unlock(&h->mu);
    if (s == PORTABLE_RUNNING)
        return INFERD_OK;
    if (s == PORTABLE_STARTING)
        return inferd_error_set(err, INFERD_ETIMEOUT, "portable plugin %s is still starting "
                                "after %llu ms", h->name, (unsigned long long)timeout_ms);
    return inferd_error_set(err, INFERD_EPLUGIN, "%s", last[0] ? last : "it is not running");
}

void portable_host_enter(portable_host *h)
{
    pthread_mutex_lock(&h->mu);
    h->active++;
    pthread_mutex_unlock(&h->mu);
}

void portable_host_leave(portable_host *h)
{
    pthread_mutex_lock(&h->mu);
    h->active--;
    pthread_mutex_unlock(&h->mu);
}

bool portable_host_drain(portable_host *h, uint64_t timeout_ms)
{
    /* Replies are taken on the host's thread, which does not signal an
     * empty list: a short poll, bounded (an upgrade's last step). */
    for (uint64_t waited = 0;; waited += 2) {
        pthread_mutex_lock(&h->mu);
        bool idle = h->active == 0 && !h->pend;
        pthread_mutex_unlock(&h->mu);
        if (idle || waited >= timeout_ms)
            return idle;
        nanosleep(&(struct timespec){.tv_nsec = 2 * 1000 * 1000}, NULL);
    }
}

bool portable_host_inst_started(portable_host *h, const portable_inst *pi)
{
    pthread_mutex_lock(&h->mu);
    bool started = pi->started;
    pthread_mutex_unlock(&h->mu);
    return started;
}

void portable_host_set_restart(portable_host *h, bool restart)
{
    pthread_mutex_lock(&h->mu);
    h->restart = restart;
    pthread_mutex_unlock(&h->mu);
}

void portable_host_status(portable_host *h, portable_status *out)
{
    pthread_mutex_lock(&h->mu);
    out->state = h->state;
    out->pid = h->pid;
    out->restarts = h->restarts;
    out->calls = h->calls;
    out->call_failures = h->failures;
    snprintf(out->last_error, sizeof out->last_error, "%s", h->last_error);
    pthread_mutex_unlock(&h->mu);
}

void portable_host_stop(portable_host *h)
{
    if (!h || !h->has_thread)
        return;
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    pthread_mutex_unlock(&h->mu);
    wake(h);
    pthread_join(h->thread, NULL);
    h->has_thread = false;
}

void portable_host_free(portable_host *h)
{
    if (!h)
        return;
    portable_host_stop(h);
    while (h->insts) {
        portable_inst *pi = h->insts;
        h->insts = pi->next;
        inferd_value_free(pi->props);
        free(pi);
    }
    close_fd(&h->wake[0]);
    close_fd(&h->wake[1]);
    while (h->n_shm_pool > 0)
        close(h->shm_pool[--h->n_shm_pool]);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cond);
    pthread_mutex_destroy(&h->wmu);
    for (size_t i = 0; h->args && h->args[i]; i++)
        free(h->args[i]);
    free(h->args);
    free(h->name), free(h->dir), free(h->exe), free(h->python), free(h->sdk_dir);
    free(h->sock_path);
    free(h);
}
