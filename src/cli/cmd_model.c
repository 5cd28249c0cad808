/* cli/cmd_model.c: `inferd model ...`: a client of a running daemon's
 * KServe model repository (src/service/kserve.c, docs/service.md "KServe
 * v2"): list, info, load, unload, stats. Each subcommand is one request
 * (info: two) through cli/client.h, with its exit codes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "core/build_value.h"
#include "inferd/value.h"

enum { FLAG_JSON, FLAG_VERSION };
enum { OPT_JSON = 1 << FLAG_JSON, OPT_VERSION = 1 << FLAG_VERSION };
static const cli_flag flags[] = {
    [FLAG_JSON] = {"json", false},
    [FLAG_VERSION] = {"version", true},
};

/* "/v2/models/NAME[/versions/V]" + tail, escaped; NULL: no memory. */
static char *model_path(cli_client *c, const char *name, const char *tail)
{
    const char *version = c->value[FLAG_VERSION];
    char *rest = version ? cli_path(c, "/versions/", version, tail) : strdup(tail);
    char *path = rest ? cli_path(c, "/v2/models/", name, rest) : NULL;
    free(rest);
    return path;
}

/* A JSON array of strings as "a, b" into buf. */
static const char *joined(const inferd_value *list, char *buf, size_t size)
{
    size_t pos = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < inferd_value_array_len(list) && pos < size; i++)
        pos += (size_t)snprintf(buf + pos, size - pos, "%s%s", i ? ", " : "",
                                inferd_value_string_or(inferd_value_array_get(list, i), "?"));
    return buf;
}

/* ---- subcommands --------------------------------------------------------------------------- */

static int do_list(cli_client *c, const cli_command *cmd)
{
    cli_reply r = {0};
    int rc = cli_request_json(c, "POST", "/v2/repository/index", "application/json", "{}", 2,
                              &r);
    if (rc == 0 && (c->given & OPT_JSON)) {
        cli_print_body(&r);
    } else if (rc == 0) {
        static const char *const heads[] = {"NAME", "VERSION", "STATE", "REASON"};
        cli_table t = {0};
        cli_table_start(&t, heads, 4);
        for (size_t i = 0; i < inferd_value_array_len(r.json); i++) {
            const inferd_value *m = inferd_value_array_get(r.json, i);
            const inferd_value *version = inferd_value_object_get(m, "version");
            cli_table_add(&t, "%s", cli_str(m, "name"));
            cli_table_add(&t, "%s", version ? cli_str(m, "version") : "-");
            cli_table_add(&t, "%s", cli_str(m, "state"));
            cli_table_add(&t, "%s", inferd_value_string_or(inferd_value_object_get(m, "reason"),
                                                           ""));
        }
        cli_table_print(&t, 4);
    }
    cli_reply_free(&r);
    return rc;
}

static void print_io(const char *title, const inferd_value *list)
{
    for (size_t i = 0; i < inferd_value_array_len(list); i++) {
        const inferd_value *io = inferd_value_array_get(list, i);
        char *shape = NULL;
        inferd_value_to_json(inferd_value_object_get(io, "shape"), INFERD_JSON_COMPACT, &shape,
                             NULL, NULL);
        printf("%-12s%s %s %s\n", i ? "" : title, cli_str(io, "name"), cli_str(io, "datatype"),
               shape ? shape : "?");
        free(shape);
    }
}

/* The model's metadata and its configuration. */
static int do_info(cli_client *c, const cli_command *cmd)
{
    char *meta_path = model_path(c, c->args[0], ""), *config_path = model_path(c, c->args[0],
                                                                              "/config");
    cli_reply meta = {0}, config = {0};
    int rc = meta_path && config_path ? cli_request_json(c, "GET", meta_path, NULL, NULL, 0, &meta)
                                      : EXIT_RUNTIME;
    if (rc == 0)
        rc = cli_request_json(c, "GET", config_path, NULL, NULL, 0, &config);
    if (rc == 0 && (c->given & OPT_JSON)) {
        inferd_value *both = inferd_value_object();
        char *text = NULL;
        inferd__put(both, "metadata", meta.json, NULL);
        inferd__put(both, "config", config.json, NULL);
        meta.json = config.json = NULL;
        if (inferd_value_to_json(both, INFERD_JSON_COMPACT, &text, NULL, NULL) == INFERD_OK)
            puts(text);
        free(text);
        inferd_value_free(both);
    } else if (rc == 0) {
        char versions[256];
        printf("%-12s%s\n%-12s%s\n%-12s%s\n%-12s%lld\n", "name:", cli_str(meta.json, "name"),
               "versions:", joined(inferd_value_object_get(meta.json, "versions"), versions,
                                   sizeof versions),
               "platform:", cli_str(meta.json, "platform"), "max batch:",
               cli_int(config.json, "max_batch_size"));
        print_io("inputs:", inferd_value_object_get(meta.json, "inputs"));
        print_io("outputs:", inferd_value_object_get(meta.json, "outputs"));
    }
    cli_reply_free(&meta);
    cli_reply_free(&config);
    free(meta_path);
    free(config_path);
    return rc;
}

/* load, unload NAME: "NAME: STATE", with the versions that serve. */
static int do_change(cli_client *c, const cli_command *cmd)
{
    char *path = cli_path(c, "/v2/repository/models/", c->args[0], cmd->tail);
    cli_reply r = {0};
    int rc = path ? cli_request_json(c, "POST", path, "application/json", "{}", 2, &r)
                  : EXIT_RUNTIME;
    char versions[256];
    if (rc == 0 && (c->given & OPT_JSON))
        cli_print_body(&r);
    else if (rc == 0 && inferd_value_array_len(inferd_value_object_get(r.json, "versions")))
        printf("%s: %s (versions %s)\n", cli_str(r.json, "name"), cli_str(r.json, "state"),
               joined(inferd_value_object_get(r.json, "versions"), versions, sizeof versions));
    else if (rc == 0)
        printf("%s: %s\n", cli_str(r.json, "name"), cli_str(r.json, "state"));
    cli_reply_free(&r);
    free(path);
    return rc;
}

/* Milliseconds per count of one of inference_stats' durations. */
static void add_average_ms(cli_table *t, const inferd_value *stats, const char *key)
{
    const inferd_value *d = inferd_value_object_get(stats, key);
    long long count = cli_int(d, "count");
    cli_table_add(t, "%.3f", count ? (double)cli_int(d, "ns") / (double)count / 1e6 : 0.0);
}

static int do_stats(cli_client *c, const cli_command *cmd)
{
    if (c->n_args == 0 && c->value[FLAG_VERSION])
        return cli_client_usage(c->family, cmd, "%s", "--version needs a NAME");
    char *path = c->n_args ? model_path(c, c->args[0], "/stats") : strdup("/v2/models/stats");
    cli_reply r = {0};
    int rc = path ? cli_request_json(c, "GET", path, NULL, NULL, 0, &r) : EXIT_RUNTIME;
    if (rc == 0 && (c->given & OPT_JSON)) {
        cli_print_body(&r);
    } else if (rc == 0) {
        static const char *const heads[] = {"NAME", "VERSION", "SUCCESS", "FAIL", "INFERENCES",
                                            "QUEUE_MS", "INPUT_MS", "INFER_MS", "OUTPUT_MS"};
        static const char *const phases[] = {"queue", "compute_input", "compute_infer",
                                             "compute_output"};
        cli_table t = {0};
        cli_table_start(&t, heads, 9);
        const inferd_value *all = inferd_value_object_get(r.json, "model_stats");
        for (size_t i = 0; i < inferd_value_array_len(all); i++) {
            const inferd_value *m = inferd_value_array_get(all, i);
            const inferd_value *s = inferd_value_object_get(m, "inference_stats");
            cli_table_add(&t, "%s", cli_str(m, "name"));
            cli_table_add(&t, "%s", cli_str(m, "version"));
            cli_table_add(&t, "%lld", cli_int(inferd_value_object_get(s, "success"), "count"));
            cli_table_add(&t, "%lld", cli_int(inferd_value_object_get(s, "fail"), "count"));
            cli_table_add_int(&t, m, "inference_count");
            for (size_t p = 0; p < sizeof phases / sizeof phases[0]; p++)
                add_average_ms(&t, s, phases[p]);
        }
        cli_table_print(&t, 2);
    }
    cli_reply_free(&r);
    free(path);
    return rc;
}

/* ---- the command --------------------------------------------------------------------------- */

static const cli_command commands[] = {
    {"list", "", 0, 0, OPT_JSON, NULL, NULL, do_list,
     "the models of models.dir: each version with its\n"
     "state (READY, UNLOADING, UNAVAILABLE) and why"},
    {"info", "NAME [--version V]", 1, 1, OPT_JSON | OPT_VERSION, NULL, NULL, do_info,
     "a model's versions, inputs and outputs (datatype,\n"
     "shape) and max batch size; --version: of that\n"
     "version (default: the highest)"},
    {"load", "NAME", 1, 1, OPT_JSON, NULL, "/load", do_change,
     "load a model from models.dir, or read a loaded\n"
     "one again: requests in flight finish on the old\n"
     "session, new ones get the new one"},
    {"unload", "NAME", 1, 1, OPT_JSON, NULL, "/unload", do_change,
     "stop serving a model (requests in flight finish)"},
    {"stats", "[NAME [--version V]]", 0, 1, OPT_JSON | OPT_VERSION, NULL, NULL,
     do_stats,
     "per version: successful and failed requests,\n"
     "inferences, and the average ms of a successful\n"
     "request's queue, input, infer and output phases"},
};

static const cli_family family = {
    .name = "model",
    .summary = "The KServe models of a running daemon, over its HTTP API (/v2/repository, "
               "/v2/models).",
    .commands = commands,
    .n_commands = sizeof commands / sizeof commands[0],
    .flags = flags,
    .n_flags = sizeof flags / sizeof flags[0],
    .flags_help = "  --json           the daemon's JSON as it is\n"
                  "  --version V      info, stats: that version of the model\n",
};

int cmd_model(int argc, char **argv) { return cli_client_main(&family, argc, argv); }
