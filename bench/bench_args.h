/* bench/bench_args.h: what the stand-alone bench programs share: a message
 * and exit status 2 for bad arguments, reading a whole input file, a number
 * of seconds from the command line, and the clocks they measure with. Each program defines BENCH_NAME
 * (its name, for messages) before including this. */
#ifndef INFERD_BENCH_ARGS_H
#define INFERD_BENCH_ARGS_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* Monotonic seconds. */
static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds this process has used so far, all threads, user + system. */
static inline double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Prints "NAME: what: msg" and returns 2 (the exit status for bad input). */
static inline int die(const char *what, const char *msg)
{
    fprintf(stderr, BENCH_NAME ": %s: %s\n", what, msg);
    return 2;
}

/* The whole file into *out (malloc'd, the caller's) and *len; 0, or 2
 * after a message. An empty file is an error. */
static inline int read_file(const char *path, void **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return die(path, strerror(errno));
    char *buf = NULL; /* owned, until *out */
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            char *b = realloc(buf, cap = cap ? 2 * cap : 65536);
            if (!b) {
                free(buf);
                fclose(f);
                return die(path, "out of memory");
            }
            buf = b;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad || n == 0) {
        free(buf);
        return die(path, bad ? "read error" : "empty file");
    }
    *out = buf;
    *len = n;
    return 0;
}

/* A number of seconds in [0, 3600]; *rc = 2 after a message when it is not. */
static inline double parse_seconds(const char *what, const char *text, int *rc)
{
    char *end;
    double s = strtod(text, &end);
    if (end == text || *end || !(s >= 0) || s > 3600)
        *rc = die(what, "a number of seconds in [0, 3600]");
    return s;
}

#endif
