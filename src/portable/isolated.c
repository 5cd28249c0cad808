/* portable/isolated.c: what the daemon learns of a C plugin that runs
 * isolated (plugins.isolated) before it starts its worker: the plugin as a
 * portable manifest, told by `inferd worker --describe FILE` in a process
 * of its own, so that even loading the plugin cannot take the daemon down.
 */
#include "portable/package.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"

#define DESCRIBE_TIMEOUT_MS 10000
#define DESCRIBE_MAX_BYTES (1u << 20)

char *portable_self_exe(void)
{
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    return strdup(buf);
}

/* Appends what fd has to *buf (len, cap); false at its end or on error. */
static bool drain(int fd, char **buf, size_t *len, size_t *cap)
{
    if (*len + 4096 > *cap) {
        size_t ncap = *cap ? *cap * 2 : 8192;
        char *grown = ncap <= DESCRIBE_MAX_BYTES + 8192 ? realloc(*buf, ncap) : NULL;
        if (!grown)
            return false;
        *buf = grown;
        *cap = ncap;
    }
    ssize_t n = read(fd, *buf + *len, *cap - *len - 1);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return true;
    if (n <= 0)
        return false;
    *len += (size_t)n;
    (*buf)[*len] = '\0';
    return true;
}

inferd_status portable_isolated_describe(const char *so, char **name, char **manifest,
                                         inferd_error *err)
{
    *name = *manifest = NULL;
    char *self = portable_self_exe();
    int out[2] = {-1, -1}, errp[2] = {-1, -1};
    if (!self || pipe2(out, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
        int e = errno;
        free(self);
        for (int i = 0; i < 2; i++) {
            if (out[i] >= 0)
                close(out[i]);
            if (errp[i] >= 0)
                close(errp[i]);
        }
        return inferd_error_set(err, INFERD_EIO, "describing %s: %s", so, strerror(e));
    }
    char *argv[] = {self, "worker", "--describe", (char *)so, NULL};
    char *envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", NULL};
    pid_t pid;
    int rc = portable_spawn(&pid, self, argv, envp, "/", out[1], errp[1]);
    close(out[1]);
    close(errp[1]);
    free(self);
    if (rc != 0) {
        close(out[0]);
        close(errp[0]);
        return inferd_error_set(err, INFERD_EIO, "describing %s: %s", so, strerror(rc));
    }
    char *o = NULL, *e = NULL;
    size_t olen = 0, ocap = 0, elen = 0, ecap = 0;
    bool o_open = true, e_open = true;
    uint64_t deadline = inferd__now_ms() + DESCRIBE_TIMEOUT_MS;
    while ((o_open || e_open) && inferd__now_ms() < deadline) {
        struct pollfd p[2] = {{.fd = o_open ? out[0] : -1, .events = POLLIN},
                              {.fd = e_open ? errp[0] : -1, .events = POLLIN}};
        if (poll(p, 2, 100) < 0 && errno != EINTR)
            break;
        if (p[0].revents && !drain(out[0], &o, &olen, &ocap))
            o_open = false;
        if (p[1].revents && !drain(errp[0], &e, &elen, &ecap))
            e_open = false;
    }
    bool late = o_open || e_open;
    if (late)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    close(out[0]);
    close(errp[0]);
    inferd_status st = INFERD_OK;
    /* Its last line of stderr says why (the first is the loader's log). */
    const char *why = "no reason given";
    if (e && elen) {
        while (elen && e[elen - 1] == '\n')
            e[--elen] = '\0';
        const char *nl = strrchr(e, '\n');
        why = nl ? nl + 1 : e;
        if (strncmp(why, "inferd worker: ", 15) == 0)
            why += 15;
    }
    inferd_value *v = NULL;
    if (late)
        st = inferd_error_set(err, INFERD_ETIMEOUT, "describing %s took over %d ms", so,
                              DESCRIBE_TIMEOUT_MS);
    else if (WIFSIGNALED(status))
        st = inferd_error_set(err, INFERD_EPLUGIN, "loading %s killed its process (signal %d)",
                              so, WTERMSIG(status));
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        st = inferd_error_set(err, INFERD_EINVAL, "%s", why);
    else if (!o || inferd_value_from_json(o, olen, 0, &v, err) != INFERD_OK)
        st = inferd_error_set(err, INFERD_EINVAL, "describing %s: no manifest came back", so);
    if (st == INFERD_OK) {
        const char *n = inferd_value_string_or(inferd_value_object_get(v, "name"), NULL);
        const inferd_value *m = inferd_value_object_get(v, "manifest");
        if (!n || !m || !(*name = strdup(n)) ||
            inferd_value_to_json(m, 0, manifest, NULL, err) != INFERD_OK) {
            free(*name);
            *name = NULL;
            st = inferd_error_set(err, INFERD_EINVAL, "describing %s: no manifest came back", so);
        }
    }
    inferd_value_free(v);
    free(o);
    free(e);
    return st;
}
