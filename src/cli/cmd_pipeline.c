/* cli/cmd_pipeline.c: `inferd pipeline ...`: a client of a running daemon's
 * pipelines API (src/service/api_pipelines.c, docs/service.md).
 *
 * Every subcommand is one request (push: one per image; results: one that
 * streams), made by request(). A daemon's error answer is printed as
 * "inferd: <status> <code>: <message>" with exit 1, as is a daemon that
 * cannot be reached; usage errors exit 2.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "core/build_value.h"
#include "inferd/image.h"
#include "inferd/value.h"

#define DEFAULT_URL "http://127.0.0.1:8080"

/* The options only some subcommands take; --url, --token and --help are for all. */
enum { OPT_JSON = 1, OPT_STOPPED = 2, OPT_ASYNC = 4, OPT_COUNT = 8 };
static const char *const option_names[] = {"--json", "--stopped", "--async", "--count"};

typedef struct client {
    CURL *curl;
    char *url;           /* owned: the daemon, without a trailing '/' */
    const char *token;   /* NULL: none */
    unsigned given;      /* OPT_* */
    long count;          /* --count; 0: follow until the stream ends */
    char **args;         /* after the subcommand's name (borrowed from argv) */
    int n_args;
} client;

typedef struct subcommand subcommand;
struct subcommand {
    const char *name;
    const char *synopsis;      /* its arguments and options, for usage lines */
    int min_args, max_args;    /* max -1: any number */
    unsigned options;          /* OPT_* it takes */
    const char *method, *tail; /* the request of delete, start, stop */
    int (*run)(client *c, const subcommand *sc);
    const char *about;         /* lines of its description */
};

/* ---- requests ------------------------------------------------------------------------------ */

typedef struct reply {
    long status;         /* 0: no answer */
    char *body;          /* owned, NUL-terminated; a stream's: its unfinished line */
    size_t len;
    char type[128];      /* Content-Type */
    char frame[32];      /* X-Inferd-Frame: the frame of a result sent as bytes */
    inferd_value *json;  /* owned: the body parsed, by request_json */
    /* A stream: each line of a 2xx body, without its end; false ends the transfer. */
    bool (*on_line)(char *line, void *arg);
    void *arg;
    bool stopped;        /* on_line ended it */
} reply;

static void reply_free(reply *r)
{
    free(r->body);
    inferd_value_free(r->json);
}

/* Copies the value of header `name` into out when line is that header. */
static void header_value(const char *line, size_t len, const char *name, char *out, size_t size)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return;
    line += n + 1;
    len -= n + 1;
    while (len && (*line == ' ' || *line == '\t'))
        line++, len--;
    while (len && (line[len - 1] == '\r' || line[len - 1] == '\n' || line[len - 1] == ' '))
        len--;
    snprintf(out, size, "%.*s", (int)len, line);
}

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
    reply *r = arg;
    n *= size;
    /* The status is needed while the body comes: a stream's lines are only
     * results when it is 2xx. (A 100 Continue comes first; the last wins.) */
    if (n > 5 && strncmp(line, "HTTP/", 5) == 0) {
        const char *space = memchr(line, ' ', n);
        r->status = space ? strtol(space, NULL, 10) : 0;
    }
    header_value(line, n, "Content-Type", r->type, sizeof r->type);
    header_value(line, n, "X-Inferd-Frame", r->frame, sizeof r->frame);
    return n;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    reply *r = arg;
    n *= size;
    char *grown = realloc(r->body, r->len + n + 1);
    if (!grown)
        return 0;
    memcpy(grown + r->len, data, n);
    r->body = grown;
    r->len += n;
    r->body[r->len] = '\0';
    if (!r->on_line || r->status / 100 != 2)
        return n;
    /* A stream never ends by itself: hand over its lines as they complete. */
    char *line = r->body, *end;
    while ((end = memchr(line, '\n', r->len - (size_t)(line - r->body)))) {
        *end = '\0';
        if (end > line && end[-1] == '\r')
            end[-1] = '\0';
        if (!r->on_line(line, r->arg)) {
            r->stopped = true;
            return 0;
        }
        line = end + 1;
    }
    r->len -= (size_t)(line - r->body);
    memmove(r->body, line, r->len + 1);
    return n;
}

/* The daemon's {"error": {"code", "message"}}, or what it sent instead. */
static void print_error(const reply *r)
{
    inferd_value *v = NULL;
    const inferd_value *e = NULL;
    if (r->len && inferd_value_from_json(r->body, r->len, 0, &v, NULL) == INFERD_OK)
        e = inferd_value_object_get(v, "error");
    fprintf(stderr, "inferd: %ld %s: %s\n", r->status,
            inferd_value_string_or(inferd_value_object_get(e, "code"), "error"),
            inferd_value_string_or(inferd_value_object_get(e, "message"),
                                   r->len ? r->body : "(no message)"));
    inferd_value_free(v);
}

/* One request: method on the daemon's path, with body (NULL: none) of
 * type. Fills *r (free it with reply_free in every case). Returns 0 for a
 * 2xx answer; else says why on stderr and returns EXIT_RUNTIME. */
static int request(client *c, const char *method, const char *path, const char *type,
                   const void *body, size_t len, reply *r)
{
    char *url = NULL, *content_type = NULL, *auth = NULL, errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = NULL;
    if (asprintf(&url, "%s%s", c->url, path) < 0)
        url = NULL;
    if (type && asprintf(&content_type, "Content-Type: %s", type) >= 0)
        headers = curl_slist_append(headers, content_type);
    /* Loopback needs no token; from elsewhere management routes need it. */
    if (c->token && asprintf(&auth, "Authorization: Bearer %s", c->token) >= 0)
        headers = curl_slist_append(headers, auth);
    curl_easy_reset(c->curl); /* keeps the connection for the next image */
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, 10L);
    CURLcode cc = url ? curl_easy_perform(c->curl) : CURLE_OUT_OF_MEMORY;
    int rc = 0;
    if (cc == CURLE_OK || (cc == CURLE_WRITE_ERROR && r->stopped)) {
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &r->status);
        if (r->status / 100 != 2) {
            print_error(r);
            rc = EXIT_RUNTIME;
        }
    } else {
        fprintf(stderr, "inferd: %s %s: %s\n",
                r->status ? "lost the connection to" : "cannot reach", c->url,
                errbuf[0] ? errbuf : curl_easy_strerror(cc));
        rc = EXIT_RUNTIME;
    }
    curl_slist_free_all(headers);
    free(url);
    free(content_type);
    free(auth);
    return rc;
}

/* request() for an answer in JSON, parsed into r->json. */
static int request_json(client *c, const char *method, const char *path, const char *type,
                        const void *body, size_t len, reply *r)
{
    int rc = request(c, method, path, type, body, len, r);
    inferd_error err = {0};
    if (rc == 0 && inferd_value_from_json(r->body ? r->body : "", r->len, 0, &r->json, &err) !=
                       INFERD_OK) {
        fprintf(stderr, "inferd: %s%s answered what is not JSON: %s\n", c->url, path, err.message);
        rc = EXIT_RUNTIME;
    }
    return rc;
}

/* "/v1/pipelines/NAME" + tail, with NAME escaped for a URL. Caller frees. */
static char *pipeline_path(client *c, const char *name, const char *tail)
{
    char *escaped = curl_easy_escape(c->curl, name, 0), *path = NULL;
    if (!escaped || asprintf(&path, "/v1/pipelines/%s%s", escaped, tail) < 0)
        path = NULL;
    curl_free(escaped);
    return path;
}

/* ---- output -------------------------------------------------------------------------------- */

/* Fields of the daemon's answers ("?" and 0 when absent). */
static const char *str_of(const inferd_value *obj, const char *key)
{
    return inferd_value_string_or(inferd_value_object_get(obj, key), "?");
}

static long long int_of(const inferd_value *obj, const char *key)
{
    return (long long)inferd_value_int_or(inferd_value_object_get(obj, key), 0);
}

/* A table: cells row by row, the first row the header, each column as wide
 * as its widest cell; the first n_text columns to the left, numbers to the
 * right. */
typedef struct table {
    char **cells;
    size_t n, cols;
} table;

static void table_add(table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void table_add(table *t, const char *fmt, ...)
{
    char **grown = realloc(t->cells, (t->n + 1) * sizeof *grown);
    if (!grown)
        return;
    t->cells = grown;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&t->cells[t->n], fmt, ap) < 0)
        t->cells[t->n] = NULL;
    va_end(ap);
    t->n++;
}

static void table_start(table *t, const char *const *heads, size_t cols)
{
    t->cols = cols;
    for (size_t i = 0; i < cols; i++)
        table_add(t, "%s", heads[i]);
}

/* obj[key] as a cell: "-" when absent (a stopped pipeline has no counters). */
static void table_add_int(table *t, const inferd_value *obj, const char *key)
{
    if (inferd_value_object_get(obj, key))
        table_add(t, "%lld", int_of(obj, key));
    else
        table_add(t, "-");
}

static void table_print(table *t, size_t n_text)
{
    int width[16] = {0}; /* the tables here have 8 columns at most */
    for (size_t i = 0; i < t->n; i++) {
        int len = t->cells[i] ? (int)strlen(t->cells[i]) : 0;
        if (len > width[i % t->cols])
            width[i % t->cols] = len;
    }
    for (size_t i = 0; i < t->n; i++) {
        size_t col = i % t->cols;
        bool last = col == t->cols - 1;
        const char *cell = t->cells[i] ? t->cells[i] : "";
        if (col < n_text)
            printf("%-*s%s", last ? 0 : width[col], cell, last ? "\n" : "  ");
        else
            printf("%*s%s", width[col], cell, last ? "\n" : "  ");
        free(t->cells[i]);
    }
    free(t->cells);
}

/* The daemon's JSON, as it sent it. */
static void print_body(const reply *r)
{
    fputs(r->body ? r->body : "", stdout);
    if (!r->len || r->body[r->len - 1] != '\n')
        putchar('\n');
}

/* "NAME: STATE" of a pipeline's description; a pipeline that failed to
 * start is an error (the daemon keeps it, stopped, with the reason). */
static int print_state(const inferd_value *d)
{
    printf("%s: %s\n", str_of(d, "name"), str_of(d, "state"));
    if (strcmp(str_of(d, "state"), "failed") != 0)
        return 0;
    fprintf(stderr, "inferd: pipeline %s failed to start: %s\n", str_of(d, "name"),
            str_of(d, "error"));
    return EXIT_RUNTIME;
}

/* ---- subcommands --------------------------------------------------------------------------- */

static int do_list(client *c, const subcommand *sc)
{
    reply r = {0};
    int rc = request_json(c, "GET", "/v1/pipelines", NULL, NULL, 0, &r);
    if (rc == 0 && (c->given & OPT_JSON)) {
        print_body(&r);
    } else if (rc == 0) {
        static const char *const heads[] = {"NAME", "STATE", "PUSHED", "DELIVERED", "ERRORS"};
        table t = {0};
        table_start(&t, heads, 5);
        const inferd_value *all = inferd_value_object_get(r.json, "pipelines");
        for (size_t i = 0; i < inferd_value_array_len(all); i++) {
            const inferd_value *p = inferd_value_array_get(all, i);
            const inferd_value *counters = inferd_value_object_get(p, "counters");
            table_add(&t, "%s", str_of(p, "name"));
            table_add(&t, "%s", str_of(p, "state"));
            table_add_int(&t, counters, "pushed");
            table_add_int(&t, counters, "delivered");
            table_add_int(&t, counters, "errors");
        }
        table_print(&t, 2);
    }
    reply_free(&r);
    return rc;
}

static int do_show(client *c, const subcommand *sc)
{
    char *path = pipeline_path(c, c->args[0], "");
    reply r = {0};
    int rc = path ? request_json(c, "GET", path, NULL, NULL, 0, &r) : EXIT_RUNTIME;
    const inferd_value *d = r.json, *counters = inferd_value_object_get(d, "counters");
    const inferd_value *elements = inferd_value_object_get(d, "elements");
    if (rc == 0 && (c->given & OPT_JSON)) {
        print_body(&r);
    } else if (rc == 0) {
        printf("name:      %s\nstate:     %s\n", str_of(d, "name"), str_of(d, "state"));
        if (inferd_value_object_get(d, "error"))
            printf("error:     %s\n", str_of(d, "error"));
        if (counters) /* only while it runs */
            printf("frames:    pushed %lld, delivered %lld, errors %lld, dropped %lld\n",
                   int_of(counters, "pushed"), int_of(counters, "delivered"),
                   int_of(counters, "errors"), int_of(counters, "dropped"));
        printf("requests:  answered %lld, timed out %lld\n", int_of(d, "frames_answered"),
               int_of(d, "frames_timed_out"));
        printf("listeners: %lld (events dropped: %lld)\n", int_of(d, "listeners"),
               int_of(d, "listener_drops"));
    }
    if (rc == 0 && !(c->given & OPT_JSON) && elements) {
        static const char *const heads[] = {"NAME",   "FACTORY", "IN",    "OUT",
                                            "ERRORS", "DROPPED", "QUEUE", "LATENCY_MS"};
        table t = {0};
        table_start(&t, heads, 8);
        for (size_t i = 0; i < inferd_value_array_len(elements); i++) {
            const inferd_value *e = inferd_value_array_get(elements, i);
            table_add(&t, "%s", str_of(e, "name"));
            table_add(&t, "%s", str_of(e, "factory"));
            table_add_int(&t, e, "in");
            table_add_int(&t, e, "out");
            table_add_int(&t, e, "errors");
            table_add_int(&t, e, "dropped");
            table_add(&t, "%lld/%lld", int_of(e, "queue_depth"), int_of(e, "queue_capacity"));
            table_add(&t, "%.3f",
                      inferd_value_double_or(inferd_value_object_get(e, "latency_avg_ms"), 0));
        }
        putchar('\n');
        table_print(&t, 2);
    }
    reply_free(&r);
    free(path);
    return rc;
}

/* A whole file, NUL-terminated; NULL after saying why. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0;
    *len = 0;
    while (f && !feof(f) && !ferror(f)) {
        if (*len + 1 >= cap) {
            char *grown = realloc(buf, cap = cap ? cap * 2 : 1 << 16);
            if (!grown)
                break;
            buf = grown;
        }
        *len += fread(buf + *len, 1, cap - *len - 1, f);
    }
    bool ok = f && buf && feof(f) && !ferror(f);
    if (!ok)
        fprintf(stderr, "inferd: cannot read %s: %s\n", path, strerror(errno));
    if (f)
        fclose(f);
    if (!ok) {
        free(buf);
        return NULL;
    }
    buf[*len] = '\0';
    return buf;
}

/* create FILE [--stopped], replace NAME FILE: the file as the body. */
static int do_define(client *c, const subcommand *sc)
{
    bool create = strcmp(sc->name, "create") == 0;
    const char *file = c->args[create ? 0 : 1];
    size_t len;
    char *text = read_file(file, &len), *path = NULL;
    if (!text)
        return EXIT_USAGE;
    if (c->given & OPT_STOPPED) {
        /* The daemon takes "start" only in the wrapped form:
         * {"pipeline": DOCUMENT, "start": false}. */
        inferd_value *doc = NULL, *wrapped;
        inferd_error err = {0};
        if (inferd_value_from_json(text, len, 0, &doc, &err) != INFERD_OK) {
            fprintf(stderr, "inferd: %s: %s\n", file, err.message);
            free(text);
            return EXIT_USAGE;
        }
        if (inferd_value_object_get(doc, "pipeline")) {
            wrapped = doc; /* already wrapped */
        } else {
            wrapped = inferd_value_object();
            inferd__put(wrapped, "pipeline", doc, NULL);
        }
        inferd__put(wrapped, "start", inferd_value_bool(false), NULL);
        free(text);
        text = NULL;
        inferd_value_to_json(wrapped, INFERD_JSON_COMPACT, &text, &len, NULL);
        inferd_value_free(wrapped);
    }
    reply r = {0};
    int rc = EXIT_RUNTIME;
    if (text && (create || (path = pipeline_path(c, c->args[0], ""))))
        rc = request_json(c, create ? "POST" : "PUT", create ? "/v1/pipelines" : path,
                          "application/json", text, len, &r);
    if (rc == 0)
        rc = print_state(r.json);
    reply_free(&r);
    free(path);
    free(text);
    return rc;
}

/* delete, start, stop NAME. */
static int do_change(client *c, const subcommand *sc)
{
    char *path = pipeline_path(c, c->args[0], sc->tail);
    const char *body = strcmp(sc->method, "POST") == 0 ? "" : NULL; /* an empty POST */
    reply r = {0};
    int rc = path ? request_json(c, sc->method, path, NULL, body, 0, &r) : EXIT_RUNTIME;
    if (rc == 0 && strcmp(sc->method, "DELETE") == 0)
        printf("%s: deleted\n", c->args[0]);
    else if (rc == 0)
        rc = print_state(r.json);
    reply_free(&r);
    free(path);
    return rc;
}

/* A frame's answer on one line: the JSON result, or what a result of bytes
 * (an encoded picture) is. */
static void print_result(const reply *r)
{
    inferd_value *v = NULL;
    char *line = NULL;
    if (strncasecmp(r->type, "application/json", 16) == 0) {
        /* Compact, whatever the daemon's layout: one line a frame. */
        if (inferd_value_from_json(r->body ? r->body : "", r->len, 0, &v, NULL) != INFERD_OK) {
            print_body(r);
            return;
        }
    } else {
        v = inferd_value_object();
        inferd__put(v, "frame", r->frame[0] ? inferd_value_int(strtoll(r->frame, NULL, 10))
                                            : inferd_value_null(), NULL);
        inferd__put(v, "bytes", inferd_value_int((int64_t)r->len), NULL);
        inferd__put_str(v, "type", r->type[0] ? r->type : "application/octet-stream", NULL);
    }
    if (inferd_value_to_json(v, INFERD_JSON_COMPACT, &line, NULL, NULL) == INFERD_OK)
        puts(line);
    free(line);
    inferd_value_free(v);
}

/* push NAME IMAGE... [--async]: one request per image, in order; stops at
 * the first that fails. */
static int do_push(client *c, const subcommand *sc)
{
    char *path = pipeline_path(c, c->args[0],
                               (c->given & OPT_ASYNC) ? "/frames?async=true" : "/frames");
    int rc = path ? 0 : EXIT_RUNTIME;
    for (int i = 1; rc == 0 && i < c->n_args; i++) {
        size_t len;
        char *image = read_file(c->args[i], &len);
        /* The daemon takes raw bytes only as image/png or image/jpeg. */
        const char *type = image ? inferd_image_codec_mime(inferd_image_sniff(image, len)) : NULL;
        reply r = {0};
        if (image && !type)
            fprintf(stderr, "inferd: %s is not a PNG or JPEG image\n", c->args[i]);
        if (!type)
            rc = EXIT_USAGE;
        else if ((rc = request(c, "POST", path, type, image, len, &r)) == 0)
            print_result(&r);
        fflush(stdout);
        reply_free(&r);
        free(image);
    }
    free(path);
    return rc;
}

/* Server-Sent Events: "data:" lines make an event's data, a blank line
 * ends it; comments (':', the daemon's keep-alives) and other fields are
 * skipped. */
typedef struct events {
    char *data;  /* owned: the event so far */
    long seen, want;
} events;

static bool on_event_line(char *line, void *arg)
{
    events *ev = arg;
    if (line[0] == '\0') {
        if (!ev->data)
            return true;
        puts(ev->data);
        fflush(stdout); /* a follower reads each as it comes */
        free(ev->data);
        ev->data = NULL;
        return ++ev->seen != ev->want;
    }
    if (strncmp(line, "data:", 5) != 0)
        return true;
    const char *value = line[5] == ' ' ? line + 6 : line + 5;
    char *joined = NULL;
    /* Several data lines are one value, joined by newlines. */
    if (asprintf(&joined, "%s%s%s", ev->data ? ev->data : "", ev->data ? "\n" : "", value) < 0)
        return false;
    free(ev->data);
    ev->data = joined;
    return true;
}

static int do_results(client *c, const subcommand *sc)
{
    char *path = pipeline_path(c, c->args[0], "/results");
    events ev = {.want = c->count};
    reply r = {.on_line = on_event_line, .arg = &ev};
    int rc = path ? request(c, "GET", path, NULL, NULL, 0, &r) : EXIT_RUNTIME;
    if (rc == 0 && ev.want && ev.seen < ev.want) {
        fprintf(stderr, "inferd: the results of %s ended after %ld of %ld events\n", c->args[0],
                ev.seen, ev.want);
        rc = EXIT_RUNTIME;
    }
    free(ev.data);
    reply_free(&r);
    free(path);
    return rc;
}

/* ---- the command --------------------------------------------------------------------------- */

static const subcommand commands[] = {
    {"list", "", 0, 0, OPT_JSON, NULL, NULL, do_list,
     "the pipelines: name, state, frames pushed and\n"
     "delivered, errors"},
    {"show", "NAME", 1, 1, OPT_JSON, NULL, NULL, do_show,
     "a pipeline's state and counters and, while it\n"
     "runs, each element's: frames in and out, errors,\n"
     "drops, queue depth/capacity, average latency (ms)"},
    {"create", "FILE [--stopped]", 1, 1, OPT_STOPPED, NULL, NULL, do_define,
     "add the pipeline of FILE (a pipeline document, or\n"
     "{\"name\", \"pipeline\", \"start\"}) and start it;\n"
     "--stopped: add it stopped"},
    {"replace", "NAME FILE", 2, 2, 0, NULL, NULL, do_define,
     "give NAME the document of FILE (the daemon drains\n"
     "NAME, then swaps)"},
    {"delete", "NAME", 1, 1, 0, "DELETE", "", do_change, "stop and remove a pipeline"},
    {"start", "NAME", 1, 1, 0, "POST", "/start", do_change, "start a stopped pipeline"},
    {"stop", "NAME", 1, 1, 0, "POST", "/stop", do_change, "stop a pipeline (it stays defined)"},
    {"push", "NAME IMAGE... [--async]", 2, -1, OPT_ASYNC, NULL, NULL, do_push,
     "send PNG or JPEG images as frames, one at a time;\n"
     "prints each result on a line (a result in bytes:\n"
     "{\"frame\", \"bytes\", \"type\"}); --async: prints the\n"
     "frame ids at once, the results go to `results`"},
    {"results", "NAME [--count N]", 1, 1, OPT_COUNT, NULL, NULL, do_results,
     "follow the results as they come, one JSON line\n"
     "each; --count N: stop after N"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static const char options_text[] =
    "Options:\n"
    "  --url URL        the daemon (default: $INFERD_URL, else " DEFAULT_URL ")\n"
    "  --token TOKEN    bearer token, needed from other hosts (default:\n"
    "                   $INFERD_TOKEN)\n"
    "  --json           list, show: the daemon's JSON as it is\n"
    "  -h, --help       this text; after a command, that command's\n"
    "\n"
    "Exit codes: 0 success, 1 the daemon answered an error or cannot be reached,\n"
    "2 usage error.\n";

#define ABOUT_COLUMN 29

/* The lines of text, the first after `at` columns already written, each
 * starting at column `column` (on a line of its own when at is past it). */
static void print_about(FILE *to, const char *text, int at, int column)
{
    if (at >= column) {
        fputc('\n', to);
        at = 0;
    }
    while (*text) {
        size_t n = strcspn(text, "\n");
        fprintf(to, "%*s%.*s\n", column - at, "", (int)n, text);
        at = 0;
        text += n + (text[n] == '\n');
    }
}

static void print_usage(FILE *to, const subcommand *sc)
{
    if (sc) {
        fprintf(to, "usage: inferd pipeline %s%s%s [OPTIONS]\n\n", sc->name,
                sc->synopsis[0] ? " " : "", sc->synopsis);
        print_about(to, sc->about, 0, 2);
    } else {
        fputs("usage: inferd pipeline COMMAND [ARGS] [OPTIONS]\n\n"
              "The pipelines of a running daemon, over its HTTP API (/v1/pipelines).\n\n"
              "Commands:\n", to);
        for (size_t i = 0; i < N_COMMANDS; i++)
            print_about(to, commands[i].about,
                        fprintf(to, "  %s%s%s", commands[i].name,
                                commands[i].synopsis[0] ? " " : "", commands[i].synopsis),
                        ABOUT_COLUMN);
    }
    fprintf(to, "\n%s", options_text);
}

/* Says what is wrong, with the usage lines of sc (NULL: of every command);
 * returns EXIT_USAGE. */
static int usage_error(const subcommand *sc, const char *fmt, const char *arg)
{
    fprintf(stderr, "inferd: pipeline%s%s: ", sc ? " " : "", sc ? sc->name : "");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!sc || sc == &commands[i])
            fprintf(stderr, "%s inferd pipeline %s%s%s\n", !sc && i ? "      " : "usage:",
                    commands[i].name, commands[i].synopsis[0] ? " " : "", commands[i].synopsis);
    fprintf(stderr, "Try 'inferd pipeline %s%s--help'.\n", sc ? sc->name : "", sc ? " " : "");
    return EXIT_USAGE;
}

/* The i-th argument's name in a synopsis ("NAME IMAGE... [--async]", 1:
 * "IMAGE"), for "missing IMAGE". */
static const char *arg_name(const subcommand *sc, int i, char *out, size_t size)
{
    const char *p = sc->synopsis;
    for (;;) {
        size_t n = strcspn(p, " .");
        if (*p == '[' || *p == '\0')
            return "an argument";
        if (i-- == 0) {
            snprintf(out, size, "%.*s", (int)n, p);
            return out;
        }
        p += strcspn(p, " ");
        p += strspn(p, " ");
    }
}

int cmd_pipeline(int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},   {"token", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},        {"stopped", no_argument, NULL, 's'},
        {"async", no_argument, NULL, 'a'},       {"count", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    const char *url = getenv("INFERD_URL"), *token = getenv("INFERD_TOKEN"), *count = NULL;
    /* The first option error, told with the usage of the command it is for. */
    const char *bad = NULL, *bad_arg = NULL;
    unsigned given = 0;
    bool help = false;
    int o;
    optind = 1;
    opterr = 0; /* our messages, with the usage */
    while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (o) {
        case 'u': url = optarg; break;
        case 't': token = optarg; break;
        case 'j': given |= OPT_JSON; break;
        case 's': given |= OPT_STOPPED; break;
        case 'a': given |= OPT_ASYNC; break;
        case 'n': given |= OPT_COUNT; count = optarg; break;
        case 'h': help = true; break;
        default:
            if (!bad) {
                bad = o == ':' ? "option '%s' needs a value" : "unknown option '%s'";
                bad_arg = argv[optind - 1];
            }
        }
    }
    const subcommand *sc = NULL;
    for (size_t i = 0; optind < argc && i < N_COMMANDS; i++)
        if (strcmp(argv[optind], commands[i].name) == 0)
            sc = &commands[i];
    if (bad)
        return usage_error(sc, bad, bad_arg);
    if (help) {
        print_usage(stdout, sc);
        return 0;
    }
    if (optind >= argc)
        return usage_error(NULL, "%s", "missing COMMAND");
    if (!sc)
        return usage_error(NULL, "unknown command '%s'", argv[optind]);

    client c = {.token = token && *token ? token : NULL, .given = given,
                .args = argv + optind + 1, .n_args = argc - optind - 1};
    char name[32];
    for (unsigned i = 0; i < sizeof option_names / sizeof option_names[0]; i++)
        if ((given & (1u << i)) && !(sc->options & (1u << i)))
            return usage_error(sc, "%s is not an option of this command", option_names[i]);
    if (c.n_args < sc->min_args)
        return usage_error(sc, "missing %s", arg_name(sc, c.n_args, name, sizeof name));
    if (sc->max_args >= 0 && c.n_args > sc->max_args)
        return usage_error(sc, "unexpected argument '%s'", c.args[sc->max_args]);
    char *end = NULL;
    if (count && ((c.count = strtol(count, &end, 10)) <= 0 || *end))
        return usage_error(sc, "--count takes a number above 0, not '%s'", count);

    if (!url || !*url)
        url = DEFAULT_URL;
    size_t n = strlen(url);
    while (n > 1 && url[n - 1] == '/')
        n--;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(c.curl = curl_easy_init()) ||
        !(c.url = strndup(url, n))) {
        fprintf(stderr, "inferd: cannot start an HTTP client (out of memory?)\n");
        curl_easy_cleanup(c.curl);
        return EXIT_RUNTIME;
    }
    int rc = sc->run(&c, sc);
    curl_easy_cleanup(c.curl);
    curl_global_cleanup();
    free(c.url);
    return rc;
}
