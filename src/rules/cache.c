/* rules/cache.c: an action's disk cache ("enableCache"): the results its
 * destination could not take, kept in order in the state folder until it
 * can, across rule restarts and daemon restarts.
 *
 * Two files per action, <cache dir>/<rule>.<index>.jsonl and .pos: the
 * first holds one JSON document per line, appended; the second the byte
 * offset of the first line not yet sent. A line is appended with one
 * write(2) and the offset is written after each line is sent, so a crash
 * resends at most the line in flight (at least once, in order). Neither is
 * fsynced: a daemon crash loses nothing, a power loss may lose the last
 * writes. When everything is sent both files are emptied. The cache is
 * bounded in lines (maxDiskCache); what comes past the bound is the
 * caller's to drop and count.
 */
#include "rules/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

struct rcache {
    char *data_path, *pos_path; /* owned */
    int append_fd;              /* O_APPEND */
    FILE *rd;                   /* reads from pos */
    uint64_t pos;               /* offset of the first unsent line */
    uint64_t next;              /* offset after the line rcache_peek returned */
    _Atomic size_t pending;     /* read by describe from other threads */
    size_t max;
    char *line;                 /* owned: getline's buffer */
    size_t line_cap;
};

static inferd_status io_error(inferd_error *err, const char *what, const char *path)
{
    return inferd_error_set(err, INFERD_EIO, "cache: %s %s: %s", what, path, strerror(errno));
}

static void save_pos(rcache *c)
{
    int fd = open(c->pos_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return; /* resent after a restart rather than lost */
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%" PRIu64 "\n", c->pos);
    ssize_t w = write(fd, buf, (size_t)n);
    (void)w;
    close(fd);
}

static uint64_t load_pos(const char *path)
{
    FILE *f = fopen(path, "r");
    uint64_t pos = 0;
    if (f) {
        if (fscanf(f, "%" SCNu64, &pos) != 1)
            pos = 0;
        fclose(f);
    }
    return pos;
}

inferd_status rcache_open(const char *dir, const char *rule, size_t index, size_t max,
                          rcache **out, inferd_error *err)
{
    *out = NULL;
    rcache *c = calloc(1, sizeof *c);
    if (!c)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    c->append_fd = -1;
    c->max = max;
    if (asprintf(&c->data_path, "%s/%s.%zu.jsonl", dir, rule, index) < 0 ||
        asprintf(&c->pos_path, "%s/%s.%zu.pos", dir, rule, index) < 0) {
        c->data_path = c->pos_path = NULL;
        rcache_free(c);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    c->append_fd = open(c->data_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (c->append_fd < 0 || !(c->rd = fopen(c->data_path, "re"))) {
        inferd_status st = io_error(err, "cannot open", c->data_path);
        rcache_free(c);
        return st;
    }
    /* What an earlier run left: count the lines from the saved offset. */
    c->pos = load_pos(c->pos_path);
    if (fseeko(c->rd, (off_t)c->pos, SEEK_SET) != 0)
        c->pos = 0, fseeko(c->rd, 0, SEEK_SET);
    ssize_t n;
    while ((n = getline(&c->line, &c->line_cap, c->rd)) > 0)
        if (c->line[n - 1] == '\n')
            c->pending++;
    clearerr(c->rd);
    fseeko(c->rd, (off_t)c->pos, SEEK_SET);
    c->next = c->pos;
    *out = c;
    return INFERD_OK;
}

void rcache_free(rcache *c)
{
    if (!c)
        return;
    if (c->append_fd >= 0)
        close(c->append_fd);
    if (c->rd)
        fclose(c->rd);
    free(c->data_path), free(c->pos_path), free(c->line);
    free(c);
}

size_t rcache_pending(const rcache *c) { return c ? c->pending : 0; }

inferd_status rcache_append(rcache *c, const char *json, size_t len, inferd_error *err)
{
    if (c->pending >= c->max)
        return inferd_error_set(err, INFERD_EBUSY, "cache: full (maxDiskCache %zu)", c->max);
    struct iovec iov[2] = {{(void *)json, len}, {"\n", 1}};
    ssize_t w = writev(c->append_fd, iov, 2);
    if (w != (ssize_t)len + 1) {
        /* A torn line would swallow the next: cut it off again. */
        if (w > 0 && ftruncate(c->append_fd, lseek(c->append_fd, 0, SEEK_END) - w) != 0)
            w = -1;
        return io_error(err, "cannot append to", c->data_path);
    }
    c->pending++;
    return INFERD_OK;
}

inferd_status rcache_peek(rcache *c, const char **json, size_t *len, inferd_error *err)
{
    if (c->pending == 0)
        return inferd_error_set(err, INFERD_ENOTFOUND, "cache: empty");
    clearerr(c->rd);
    if (fseeko(c->rd, (off_t)c->pos, SEEK_SET) != 0)
        return io_error(err, "cannot read", c->data_path);
    ssize_t n = getline(&c->line, &c->line_cap, c->rd);
    if (n <= 0 || c->line[n - 1] != '\n')
        return io_error(err, "cannot read", c->data_path);
    c->line[n - 1] = '\0';
    *json = c->line;
    *len = (size_t)n - 1;
    c->next = c->pos + (uint64_t)n;
    return INFERD_OK;
}

void rcache_pop(rcache *c)
{
    if (c->pending == 0 || c->next <= c->pos)
        return;
    c->pos = c->next;
    c->pending--;
    if (c->pending == 0 && ftruncate(c->append_fd, 0) == 0)
        c->pos = c->next = 0; /* all sent: start the files over */
    save_pos(c);
}

void rcache_remove(const char *dir, const char *rule, size_t n_actions)
{
    for (size_t i = 0; dir && i < n_actions; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s.%zu.jsonl", dir, rule, i);
        unlink(path);
        snprintf(path, sizeof path, "%s/%s.%zu.pos", dir, rule, i);
        unlink(path);
    }
}
