/* portable/install.c: a package's install.sh, run in its own process group
 * with a deadline, its output logged; and the sweep of what it (or a
 * plugin) leaves running. */
#include "portable/package.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "inferd/log.h"
#include "portable/paths.h"

/* --- what an install leaves running --------------------------------------------- */

size_t portable_sweep_marked(const char *marker)
{
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    size_t killed = 0, mlen = strlen(marker);
    char path[64], *env = malloc(65536);
    struct dirent *de;
    while (env && (de = readdir(d))) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 1 || pid == (long)getpid())
            continue;
        snprintf(path, sizeof path, "/proc/%ld/environ", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, env, 65535);
        close(fd);
        for (ssize_t i = 0; n > 0 && i < n; i += (ssize_t)strnlen(env + i, (size_t)(n - i)) + 1)
            if ((size_t)(n - i) >= mlen && memcmp(env + i, marker, mlen) == 0 &&
                (i + (ssize_t)mlen == n || env[i + (ssize_t)mlen] == '\0')) {
                if (kill((pid_t)pid, SIGKILL) == 0)
                    killed++;
                break;
            }
    }
    free(env);
    closedir(d);
    return killed;
}

/* --- install.sh ---------------------------------------------------------------- */

#define INSTALL_LINE_MAX 2048 /* longer lines are logged in pieces */
#define INSTALL_TAIL_MAX 1024 /* the output kept for the error message */

typedef struct install_output {
    const char *name;
    char line[INSTALL_LINE_MAX];
    size_t line_len;
    char tail[INSTALL_TAIL_MAX]; /* the last lines, each ending with '\n' */
    size_t tail_len;
} install_output;

static void output_line(install_output *o)
{
    size_t len = o->line_len;
    if (len > 0 && o->line[len - 1] == '\r')
        len--;
    o->line_len = 0;
    inferd_log_info(LOG_COMPONENT, "[install %s] %.*s", o->name, (int)len, o->line);
    /* Keep the tail: drop whole lines from the front until this one fits. */
    if (len + 1 > sizeof o->tail)
        len = sizeof o->tail - 1;
    while (o->tail_len + len + 1 > sizeof o->tail) {
        char *nl = memchr(o->tail, '\n', o->tail_len);
        size_t drop = nl ? (size_t)(nl - o->tail) + 1 : o->tail_len;
        memmove(o->tail, o->tail + drop, o->tail_len - drop);
        o->tail_len -= drop;
    }
    memcpy(o->tail + o->tail_len, o->line, len);
    o->tail[o->tail_len + len] = '\n';
    o->tail_len += len + 1;
}

static void output_feed(install_output *o, const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\n') {
            output_line(o);
            continue;
        }
        /* Control bytes (a NUL would cut the log line) become '?'. */
        unsigned char c = (unsigned char)data[i];
        o->line[o->line_len++] = (c < 0x20 && c != '\t' && c != '\r') || c == 0x7f ? '?' : (char)c;
        if (o->line_len == sizeof o->line)
            output_line(o);
    }
}

/* Sets err to "install NAME: what; last output: a | b" (what e.g.
 * "install.sh exited with status 3") with as many of the last lines of
 * output as fit in the message: the end matters most, so it is never the
 * part cut. */
static inferd_status install_failed(inferd_error *err, inferd_status code, const char *what,
                                    const install_output *o)
{
    char head[256];
    snprintf(head, sizeof head, "install %s: %s", o->name, what);
    if (o->tail_len == 0)
        return inferd_error_set(err, code, "%s (no output)", head);
    const char *sep = "; last output: ";
    size_t used = strlen(head) + strlen(sep);
    size_t room = INFERD_ERROR_MESSAGE_MAX - 1 > used ? INFERD_ERROR_MESSAGE_MAX - 1 - used : 0;
    /* The first line start from which the rest fits (each '\n' but the
     * last becomes " | ", 2 bytes more). */
    size_t start = 0;
    for (;;) {
        size_t lines = 0;
        for (size_t i = start; i < o->tail_len; i++)
            lines += o->tail[i] == '\n';
        if (o->tail_len - start - 1 + 2 * (lines - 1) <= room)
            break;
        const char *nl = memchr(o->tail + start, '\n', o->tail_len - start);
        if ((size_t)(nl - o->tail) + 1 >= o->tail_len) {
            /* The last line alone is longer than the room: keep its end. */
            start = o->tail_len - 1 - room;
            break;
        }
        start = (size_t)(nl - o->tail) + 1;
    }
    char joined[INFERD_ERROR_MESSAGE_MAX];
    size_t j = 0;
    for (size_t i = start; i + 1 < o->tail_len && j + 4 < sizeof joined; i++) {
        if (o->tail[i] == '\n') {
            memcpy(joined + j, " | ", 3);
            j += 3;
        } else {
            joined[j++] = o->tail[i];
        }
    }
    joined[j] = '\0';
    return inferd_error_set(err, code, "%s%s%s", head, sep, joined);
}

inferd_status portable_package_run_install(const char *dir, const char *name, uint64_t timeout_ms,
                                           inferd_error *err)
{
    if (!dir || !name)
        return inferd_error_set(err, INFERD_EINVAL, "install: NULL argument");
    char *home = realpath(dir, NULL); /* owned: HOME and the working directory */
    if (!home)
        return inferd_error_set(err, errno == ENOENT ? INFERD_ENOTFOUND : INFERD_EIO,
                                "install %s: folder %s: %s", name, dir, strerror(errno));
    char script[PATH_MAX], home_env[PATH_MAX + 8];
    snprintf(script, sizeof script, "%s/install.sh", home);
    snprintf(home_env, sizeof home_env, "HOME=%s", home);
    struct stat sb;
    if (lstat(script, &sb) != 0) {
        int e = errno;
        free(home);
        if (e == ENOENT)
            return INFERD_OK;
        return inferd_error_set(err, INFERD_EIO, "install %s: install.sh: %s", name,
                                strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        free(home);
        return inferd_error_set(err, INFERD_EINVAL, "install %s: install.sh is not a regular file",
                                name);
    }

    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        free(home);
        return inferd_error_set(err, INFERD_EIO, "install %s: pipe: %s", name, strerror(errno));
    }
    char *const argv[] = {"sh", "install.sh", NULL};
    /* Everything install.sh starts inherits this entry: how it is found
     * again when it left the process group (portable_sweep_marked). */
    static atomic_uint installs;
    char marker[96];
    snprintf(marker, sizeof marker, "INFERD_INSTALL_ID=%d-%u-%llu", (int)getpid(),
             atomic_fetch_add(&installs, 1), (unsigned long long)inferd__now_us());
    char *const envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin", home_env, "LANG=C.UTF-8", marker,
                          NULL};
    pid_t pid = -1;
    int rc = portable_spawn(&pid, "/bin/sh", argv, envp, home, pfd[1], pfd[1]);
    close(pfd[1]);
    free(home);
    if (rc != 0) {
        close(pfd[0]);
        return inferd_error_set(err, INFERD_EIO, "install %s: starting /bin/sh install.sh: %s",
                                name, strerror(rc));
    }
    inferd_log_info(LOG_COMPONENT, "[install %s] running install.sh (pid %d, at most %llu ms)",
                    name, (int)pid, (unsigned long long)timeout_ms);

    install_output o = {.name = name};
    uint64_t deadline = inferd__now_ms() + timeout_ms;
    bool eof = false, exited = false, timed_out = false;
    char buf[4096];
    for (;;) {
        if (!exited) {
            /* WNOWAIT: the zombie keeps its pid, so its group id cannot go
             * to another process before the group is killed. */
            siginfo_t si = {0};
            int w = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT);
            if ((w == 0 && si.si_pid == pid) || (w != 0 && errno == ECHILD)) {
                exited = true;
                /* What it left running, in its group or not, would hold the
                 * pipe (and outlive the install). */
                kill(-pid, SIGKILL);
                /* Twice, a moment apart: a process caught between fork and
                 * exec, or leaving the group right then, is seen the second
                 * time. */
                size_t swept = portable_sweep_marked(marker);
                usleep(20000);
                swept += portable_sweep_marked(marker);
                if (swept)
                    inferd_log_warn(LOG_COMPONENT, "[install %s] install.sh left %zu process%s "
                                    "running outside its group: killed", name, swept,
                                    swept == 1 ? "" : "es");
            }
        }
        if (exited && eof)
            break;
        uint64_t now = inferd__now_ms();
        if (now >= deadline) {
            timed_out = !exited;
            kill(-pid, SIGKILL);
            portable_sweep_marked(marker);
            break;
        }
        uint64_t left = deadline - now;
        int wait_ms = eof ? 10 : 100; /* how often the exit is looked at */
        if (left < (uint64_t)wait_ms)
            wait_ms = (int)left;
        struct pollfd p = {.fd = eof ? -1 : pfd[0], .events = POLLIN};
        if (poll(&p, 1, wait_ms) > 0 && !eof) {
            ssize_t n = read(pfd[0], buf, sizeof buf);
            if (n > 0)
                output_feed(&o, buf, (size_t)n);
            else if (n == 0 || (errno != EINTR && errno != EAGAIN))
                eof = true;
        }
    }
    close(pfd[0]);
    if (o.line_len > 0)
        output_line(&o);

    int status = 0;
    pid_t w;
    do
        w = waitpid(pid, &status, 0);
    while (w < 0 && errno == EINTR);

    char what[128];
    inferd_status st = INFERD_OK;
    if (timed_out) {
        snprintf(what, sizeof what, "install.sh did not finish within %llu ms",
                 (unsigned long long)timeout_ms);
        st = install_failed(err, INFERD_ETIMEOUT, what, &o);
    } else if (w != pid) {
        st = inferd_error_set(err, INFERD_EINTERNAL,
                              "install %s: install.sh's exit status was lost (waitpid: %s)", name,
                              strerror(errno));
    } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        snprintf(what, sizeof what, "install.sh exited with status %d", WEXITSTATUS(status));
        st = install_failed(err, INFERD_EPLUGIN, what, &o);
    } else if (WIFSIGNALED(status)) {
        const char *sig = sigabbrev_np(WTERMSIG(status));
        snprintf(what, sizeof what, "install.sh was killed by signal %d (SIG%s)",
                 WTERMSIG(status), sig ? sig : "?");
        st = install_failed(err, INFERD_EPLUGIN, what, &o);
    }
    if (st == INFERD_OK)
        inferd_log_info(LOG_COMPONENT, "[install %s] install.sh finished", name);
    return st;
}
