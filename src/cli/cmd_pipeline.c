/* cli/cmd_pipeline.c: `inferd pipeline ...`: a client of a running daemon's
 * pipelines API (src/service/api_pipelines.c, docs/service.md).
 *
 * Every subcommand is one request (push: one per image; results: one that
 * streams), made by cli_request(). A daemon's error answer is printed as
 * "inferd: <status> <code>: <message>" with exit 1, as is a daemon that
 * cannot be reached; usage errors exit 2.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "core/build_value.h"
#include "inferd/image.h"
#include "inferd/value.h"

/* The options only some subcommands take (bits of cli_client.given). */
enum { FLAG_JSON, FLAG_STOPPED, FLAG_ASYNC, FLAG_COUNT };
enum { OPT_JSON = 1 << FLAG_JSON, OPT_STOPPED = 1 << FLAG_STOPPED, OPT_ASYNC = 1 << FLAG_ASYNC,
       OPT_COUNT = 1 << FLAG_COUNT };
static const cli_flag flags[] = {
    [FLAG_JSON] = {"json", false},
    [FLAG_STOPPED] = {"stopped", false},
    [FLAG_ASYNC] = {"async", false},
    [FLAG_COUNT] = {"count", true},
};

/* "/v1/pipelines/NAME" + tail, with NAME escaped for a URL. Caller frees. */
static char *pipeline_path(cli_client *c, const char *name, const char *tail)
{
    return cli_path(c, "/v1/pipelines/", name, tail);
}

/* "NAME: STATE" of a pipeline's description; a pipeline that failed to
 * start is an error (the daemon keeps it, stopped, with the reason). */
static int print_state(const inferd_value *d)
{
    printf("%s: %s\n", cli_str(d, "name"), cli_str(d, "state"));
    if (strcmp(cli_str(d, "state"), "failed") != 0)
        return 0;
    fprintf(stderr, "inferd: pipeline %s failed to start: %s\n", cli_str(d, "name"),
            cli_str(d, "error"));
    return EXIT_RUNTIME;
}

/* ---- subcommands --------------------------------------------------------------------------- */

static int do_list(cli_client *c, const cli_command *sc)
{
    cli_reply r = {0};
    int rc = cli_request_json(c, "GET", "/v1/pipelines", NULL, NULL, 0, &r);
    if (rc == 0 && (c->given & OPT_JSON)) {
        cli_print_body(&r);
    } else if (rc == 0) {
        static const char *const heads[] = {"NAME", "STATE", "PUSHED", "DELIVERED", "ERRORS"};
        cli_table t = {0};
        cli_table_start(&t, heads, 5);
        const inferd_value *all = inferd_value_object_get(r.json, "pipelines");
        for (size_t i = 0; i < inferd_value_array_len(all); i++) {
            const inferd_value *p = inferd_value_array_get(all, i);
            const inferd_value *counters = inferd_value_object_get(p, "counters");
            cli_table_add(&t, "%s", cli_str(p, "name"));
            cli_table_add(&t, "%s", cli_str(p, "state"));
            cli_table_add_int(&t, counters, "pushed");
            cli_table_add_int(&t, counters, "delivered");
            cli_table_add_int(&t, counters, "errors");
        }
        cli_table_print(&t, 2);
    }
    cli_reply_free(&r);
    return rc;
}

static int do_show(cli_client *c, const cli_command *sc)
{
    char *path = pipeline_path(c, c->args[0], "");
    cli_reply r = {0};
    int rc = path ? cli_request_json(c, "GET", path, NULL, NULL, 0, &r) : EXIT_RUNTIME;
    const inferd_value *d = r.json, *counters = inferd_value_object_get(d, "counters");
    const inferd_value *elements = inferd_value_object_get(d, "elements");
    if (rc == 0 && (c->given & OPT_JSON)) {
        cli_print_body(&r);
    } else if (rc == 0) {
        printf("name:      %s\nstate:     %s\n", cli_str(d, "name"), cli_str(d, "state"));
        if (inferd_value_object_get(d, "error"))
            printf("error:     %s\n", cli_str(d, "error"));
        if (counters) /* only while it runs */
            printf("frames:    pushed %lld, delivered %lld, errors %lld, dropped %lld\n",
                   cli_int(counters, "pushed"), cli_int(counters, "delivered"),
                   cli_int(counters, "errors"), cli_int(counters, "dropped"));
        printf("requests:  answered %lld, timed out %lld\n", cli_int(d, "frames_answered"),
               cli_int(d, "frames_timed_out"));
        printf("listeners: %lld (events dropped: %lld)\n", cli_int(d, "listeners"),
               cli_int(d, "listener_drops"));
    }
    if (rc == 0 && !(c->given & OPT_JSON) && elements) {
        static const char *const heads[] = {"NAME",   "FACTORY", "IN",    "OUT",
                                            "ERRORS", "DROPPED", "QUEUE", "LATENCY_MS"};
        cli_table t = {0};
        cli_table_start(&t, heads, 8);
        for (size_t i = 0; i < inferd_value_array_len(elements); i++) {
            const inferd_value *e = inferd_value_array_get(elements, i);
            cli_table_add(&t, "%s", cli_str(e, "name"));
            cli_table_add(&t, "%s", cli_str(e, "factory"));
            cli_table_add_int(&t, e, "in");
            cli_table_add_int(&t, e, "out");
            cli_table_add_int(&t, e, "errors");
            cli_table_add_int(&t, e, "dropped");
            cli_table_add(&t, "%lld/%lld", cli_int(e, "queue_depth"), cli_int(e, "queue_capacity"));
            cli_table_add(&t, "%.3f",
                      inferd_value_double_or(inferd_value_object_get(e, "latency_avg_ms"), 0));
        }
        putchar('\n');
        cli_table_print(&t, 2);
    }
    cli_reply_free(&r);
    free(path);
    return rc;
}


/* create FILE [--stopped], replace NAME FILE: the file as the body. */
static int do_define(cli_client *c, const cli_command *sc)
{
    bool create = strcmp(sc->name, "create") == 0;
    const char *file = c->args[create ? 0 : 1];
    size_t len;
    char *text = cli_read_file(file, &len), *path = NULL;
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
    cli_reply r = {0};
    int rc = EXIT_RUNTIME;
    if (text && (create || (path = pipeline_path(c, c->args[0], ""))))
        rc = cli_request_json(c, create ? "POST" : "PUT", create ? "/v1/pipelines" : path,
                          "application/json", text, len, &r);
    if (rc == 0)
        rc = print_state(r.json);
    cli_reply_free(&r);
    free(path);
    free(text);
    return rc;
}

/* delete, start, stop NAME. */
static int do_change(cli_client *c, const cli_command *sc)
{
    char *path = pipeline_path(c, c->args[0], sc->tail);
    const char *body = strcmp(sc->method, "POST") == 0 ? "" : NULL; /* an empty POST */
    cli_reply r = {0};
    int rc = path ? cli_request_json(c, sc->method, path, NULL, body, 0, &r) : EXIT_RUNTIME;
    if (rc == 0 && strcmp(sc->method, "DELETE") == 0)
        printf("%s: deleted\n", c->args[0]);
    else if (rc == 0)
        rc = print_state(r.json);
    cli_reply_free(&r);
    free(path);
    return rc;
}

/* A frame's answer on one line: the JSON result, or what a result of bytes
 * (an encoded picture) is. */
static void print_result(const cli_reply *r)
{
    inferd_value *v = NULL;
    char *line = NULL;
    if (strncasecmp(r->type, "application/json", 16) == 0) {
        /* Compact, whatever the daemon's layout: one line a frame. */
        if (inferd_value_from_json(r->body ? r->body : "", r->len, 0, &v, NULL) != INFERD_OK) {
            cli_print_body(r);
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
static int do_push(cli_client *c, const cli_command *sc)
{
    char *path = pipeline_path(c, c->args[0],
                               (c->given & OPT_ASYNC) ? "/frames?async=true" : "/frames");
    int rc = path ? 0 : EXIT_RUNTIME;
    for (int i = 1; rc == 0 && i < c->n_args; i++) {
        size_t len;
        char *image = cli_read_file(c->args[i], &len);
        /* The daemon takes raw bytes only as image/png or image/jpeg. */
        const char *type = image ? inferd_image_codec_mime(inferd_image_sniff(image, len)) : NULL;
        cli_reply r = {0};
        if (image && !type)
            fprintf(stderr, "inferd: %s is not a PNG or JPEG image\n", c->args[i]);
        if (!type)
            rc = EXIT_USAGE;
        else if ((rc = cli_request(c, "POST", path, type, image, len, &r)) == 0)
            print_result(&r);
        fflush(stdout);
        cli_reply_free(&r);
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

static int do_results(cli_client *c, const cli_command *sc)
{
    const char *count = c->value[FLAG_COUNT];
    char *end = NULL;
    events ev = {0};
    if (count && ((ev.want = strtol(count, &end, 10)) <= 0 || *end))
        return cli_client_usage(c->family, sc, "--count takes a number above 0, not '%s'",
                                count);
    char *path = pipeline_path(c, c->args[0], "/results");
    cli_reply r = {.on_line = on_event_line, .arg = &ev};
    int rc = path ? cli_request(c, "GET", path, NULL, NULL, 0, &r) : EXIT_RUNTIME;
    if (rc == 0 && ev.want && ev.seen < ev.want) {
        fprintf(stderr, "inferd: the results of %s ended after %ld of %ld events\n", c->args[0],
                ev.seen, ev.want);
        rc = EXIT_RUNTIME;
    }
    free(ev.data);
    cli_reply_free(&r);
    free(path);
    return rc;
}

/* ---- the command --------------------------------------------------------------------------- */

static const cli_command commands[] = {
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
static const cli_family family = {
    .name = "pipeline",
    .summary = "The pipelines of a running daemon, over its HTTP API (/v1/pipelines).",
    .commands = commands,
    .n_commands = sizeof commands / sizeof commands[0],
    .flags = flags,
    .n_flags = sizeof flags / sizeof flags[0],
    .flags_help = "  --json           list, show: the daemon's JSON as it is\n",
};

int cmd_pipeline(int argc, char **argv) { return cli_client_main(&family, argc, argv); }
