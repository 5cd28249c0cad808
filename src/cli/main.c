/* cli/main.c: the `inferd` binary: option parsing and subcommands.
 *
 * Exit codes: 0 success; 1 a runtime failure (cannot listen, a model fails);
 * 2 a usage or configuration error (bad flag, bad config file or variable).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "connectors/connectors.h"
#include "core/build_value.h"
#include "core/clock.h"
#include "core/secrets.h"
#include "inferd/config.h"
#include "inferd/log.h"
#include "inferd/registry.h"
#include "inferd/version.h"
#include "service/http.h"
#include "portable/portables.h"
#include "service/health.h"
#include "service/service.h"
#include "worker/worker.h"

static const char usage_text[] =
    "usage: inferd [--help] [--version] COMMAND [ARGS]\n"
    "\n"
    "inferd runs AI inference on images and streams, extensible through plugins.\n"
    "\n"
    "Commands:\n"
    "  serve [OPTIONS]         run the daemon: the HTTP API (default 127.0.0.1:8080) with\n"
    "                          estimators, KServe v2, plugins, and streams and rules over\n"
    "                          MQTT (mqtt.server; docs/service.md, docs/rules.md)\n"
    "  run PIPELINE.json [FILE|FOLDER|-]...\n"
    "                          run a pipeline over files, the images of folders, or standard\n"
    "                          input; prints one JSON line per input (docs/pipelines.md)\n"
    "  pipeline COMMAND [ARGS] [--url URL]\n"
    "                          the pipelines of a running daemon: list, show, create, replace,\n"
    "                          delete, start, stop, push images, follow results\n"
    "                          (inferd pipeline --help)\n"
    "  model COMMAND [ARGS] [--url URL]\n"
    "                          the KServe models of a running daemon: list, info, load, unload,\n"
    "                          stats (inferd model --help)\n"
    "  config [OPTIONS]        print the effective configuration and where each value came from\n"
    "  describe SURFACE [--json]\n"
    "                          the declaration of what you write: rule, stream, an action kind\n"
    "                          (mqtt, http, log, file, sink), manifest, config\n"
    "  plugin list [--json]    the loaded plugins, their files, versions and components\n"
    "  plugin inspect NAME [--json]\n"
    "                          a plugin or component: properties (types, defaults, ranges),\n"
    "                          ports and formats, function arity, estimator broker name\n"
    "  plugin install FILE.zip [NAME]\n"
    "                          install a portable plugin package into state.dir (with no\n"
    "                          daemon running on it; docs/portable-plugins.md)\n"
    "  plugin remove NAME      remove an installed portable plugin\n"
    "  plugin activate|deactivate NAME, plugin upgrade NAME FILE.zip [--url URL]\n"
    "                          change the plugins of a running daemon (inferd plugin\n"
    "                          activate --help)\n"
    "  bench URL|--estimator NAME|--model NAME|--pipeline NAME [OPTIONS]\n"
    "                          load for the HTTP API: a concurrency sweep, closed or open\n"
    "                          loop, latency percentiles, errors by status (inferd bench --help)\n"
    "  worker [--describe] PLUGIN.so\n"
    "                          a C plugin in a process of its own: what the daemon runs for\n"
    "                          plugins.isolated (docs/plugins.md)\n"
    "\n"
    "Options of every command:\n"
    "  -c, --config FILE       JSON config file (also INFERD_CONFIG)\n"
    "  -l, --listen ADDR       HOST:PORT to listen on (config key listen, INFERD_LISTEN);\n"
    "                          port 0 picks a free port\n"
    "      --log-level SPEC    e.g. info or info,http=debug (log.level, INFERD_LOG_LEVEL)\n"
    "      --log-format FMT    text or json (log.format, INFERD_LOG_FORMAT)\n"
    "      --plugin-dir DIR    the plugin folder (plugins.dir, INFERD_PLUGINS_DIR)\n"
    "      --active LIST       plugins to activate, comma-separated (active_plugins,\n"
    "                          INFERD_ACTIVE_PLUGINS)\n"
    "      --json              machine-readable output (plugin list, plugin inspect)\n"
    "\n"
    "Every config key can be set in the file, as INFERD_<KEY> (dots become\n"
    "underscores, upper case), or by a flag; later sources win. `inferd config`\n"
    "lists the keys.\n"
    "\n"
    "Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.\n";

inferd_status cli_open_registry(const inferd_config *cfg, inferd_registry **out,
                                inferd_error *err)
{
    inferd_registry *reg = NULL;
    inferd_status st = inferd_registry_new(&reg, err);
    if (st == INFERD_OK)
        st = inferd_registry_load_config(reg, cfg, err);
    if (st == INFERD_OK)
        st = connectors_register(reg, cfg, err);
    if (st != INFERD_OK) {
        inferd_registry_free(reg);
        reg = NULL;
    }
    *out = reg;
    return st;
}

/* The options every command that reads the configuration takes. */
#define COMMON_OPTIONS                                                                      \
    "Options:\n"                                                                             \
    "  -c, --config FILE       JSON config file (also INFERD_CONFIG)\n"                        \
    "  -l, --listen ADDR       HOST:PORT (listen, INFERD_LISTEN); port 0 picks a free one\n"    \
    "      --log-level SPEC    e.g. info or info,http=debug (log.level, INFERD_LOG_LEVEL)\n"   \
    "      --log-format FMT    text or json (log.format, INFERD_LOG_FORMAT)\n"                 \
    "      --plugin-dir DIR    the plugin folder (plugins.dir, INFERD_PLUGINS_DIR)\n"          \
    "      --active LIST       plugins to activate, comma-separated (active_plugins)\n"        \
    "  -h, --help              this text\n"

/* Each command's --help. */
static const struct {
    const char *cmd;
    const char *text;
} command_help[] = {
    {"serve",
     "usage: inferd serve [OPTIONS]\n\n"
     "Runs the daemon: the HTTP API (default 127.0.0.1:8080) with the estimators, KServe v2,\n"
     "pipelines, plugins, and streams and rules over MQTT (docs/service.md, docs/rules.md).\n"
     "It logs to standard error; SIGTERM or SIGINT stop it (requests in flight finish),\n"
     "SIGHUP reads the configuration again (docs/operating.md).\n\n" COMMON_OPTIONS},
    {"config",
     "usage: inferd config [--json] [OPTIONS]\n\n"
     "Prints every config key with its effective value, where the value came from\n"
     "(default, the file, INFERD_<KEY>, a flag), what it takes and its variable;\n"
     "secrets print as ***. --json: an object of key -> {value, source}.\n\n"
     COMMON_OPTIONS "      --json              the keys as JSON\n"},
    {"run",
     "usage: inferd run PIPELINE.json [FILE|FOLDER|-]... [OPTIONS]\n\n"
     "Runs a pipeline over files, the images of folders, or standard input (-), and\n"
     "prints one JSON line per input (docs/pipelines.md).\n\n" COMMON_OPTIONS},
    {"plugin",
     "usage: inferd plugin COMMAND [ARGS] [OPTIONS]\n\n"
     "On the plugin folder and the state folder (no daemon needed):\n"
     "  list [--json]              the loaded plugins, their files, versions and components,\n"
     "                             and the plugin files that are not active\n"
     "  inspect NAME [--json]      a plugin (active or not: a file of plugins.dir) or a\n"
     "                             component: properties, ports, arity, routes\n"
     "  install FILE.zip [NAME]    install a portable plugin package (no daemon running on\n"
     "                             the state folder; docs/portable-plugins.md)\n"
     "  remove NAME                remove an installed portable plugin\n"
     "Against a running daemon (--url URL, --token TOKEN; inferd plugin activate --help):\n"
     "  activate NAME, deactivate NAME, upgrade NAME FILE.zip\n\n" COMMON_OPTIONS},
};

/* The help of cmd (a command, or a plugin subcommand), or the global one. */
static const char *help_for(const char *cmd)
{
    static const char *const plugin_subs[] = {"list", "inspect", "install", "remove", NULL};
    for (size_t i = 0; cmd && plugin_subs[i]; i++)
        if (strcmp(cmd, plugin_subs[i]) == 0)
            cmd = "plugin";
    for (size_t i = 0; cmd && i < sizeof command_help / sizeof command_help[0]; i++)
        if (strcmp(cmd, command_help[i].cmd) == 0)
            return command_help[i].text;
    return usage_text;
}

void cli_print_help(const char *cmd) { fputs(help_for(cmd), stdout); }

int cli_usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "inferd: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'inferd --help'.\n");
    return EXIT_USAGE;
}

int cli_load_config(int argc, char **argv, inferd_config **out, cli_options *o)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"log-level", required_argument, NULL, 'L'},
        {"log-format", required_argument, NULL, 'F'},
        {"plugin-dir", required_argument, NULL, 'P'},
        {"active", required_argument, NULL, 'A'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = getenv("INFERD_CONFIG");
    const char *overrides[][3] = {{"listen", NULL, "--listen"},
                                  {"log.level", NULL, "--log-level"},
                                  {"log.format", NULL, "--log-format"},
                                  {"plugins.dir", NULL, "--plugin-dir"},
                                  {"active_plugins", NULL, "--active"}};
    int c;
    optind = 1;
    *o = (cli_options){0};
    while ((c = getopt_long(argc, argv, "c:l:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': path = optarg; break;
        case 'l': overrides[0][1] = optarg; break;
        case 'L': overrides[1][1] = optarg; break;
        case 'F': overrides[2][1] = optarg; break;
        case 'P': overrides[3][1] = optarg; break;
        case 'A': overrides[4][1] = optarg; break;
        case 'j': o->json = true; break;
        case 'h': fputs(help_for(argc > 0 ? argv[0] : NULL), stdout); exit(0);
        default: return cli_usage_error("%s", "bad option");
        }
    }
    o->args = argv + optind;
    o->n_args = argc - optind;

    inferd_error err = {0};
    inferd_config *cfg = NULL;
    if (inferd_config_load(path && *path ? path : NULL, NULL, &cfg, &err) != INFERD_OK) {
        fprintf(stderr, "inferd: %s\n", err.message);
        return EXIT_USAGE;
    }
    for (size_t i = 0; i < sizeof overrides / sizeof overrides[0]; i++) {
        if (overrides[i][1] &&
            inferd_config_set(cfg, overrides[i][0], overrides[i][1], overrides[i][2], &err) !=
                INFERD_OK) {
            fprintf(stderr, "inferd: %s: %s\n", overrides[i][2], err.message);
            inferd_config_free(cfg);
            return EXIT_USAGE;
        }
    }
    /* A command other than serve says what it does on stdout: its log says
     * only what goes wrong, unless log.level was asked for. */
    const char *level = inferd_config_string(cfg, "log.level");
    if (argc > 0 && strcmp(argv[0], "serve") != 0 &&
        strcmp(inferd_config_source(cfg, "log.level"), "default") == 0)
        level = "warn";
    if (inferd_log_configure(level, &err) != INFERD_OK) {
        fprintf(stderr, "inferd: log.level (from %s): %s\n",
                inferd_config_source(cfg, "log.level"), err.message);
        inferd_config_free(cfg);
        return EXIT_USAGE;
    }
    inferd_log_set_format(strcmp(inferd_config_string(cfg, "log.format"), "json") == 0
                              ? INFERD_LOG_JSON
                              : INFERD_LOG_TEXT);
    *out = cfg;
    return 0;
}

/* For commands that take no arguments. */
static int load_config_no_args(int argc, char **argv, inferd_config **out)
{
    cli_options o;
    int rc = cli_load_config(argc, argv, out, &o);
    if (rc == 0 && o.n_args > 0) {
        inferd_config_free(*out);
        return cli_usage_error("unexpected argument '%s'", o.args[0]);
    }
    return rc;
}

static int cmd_config(int argc, char **argv)
{
    inferd_config *cfg = NULL;
    cli_options o;
    int rc = cli_load_config(argc, argv, &cfg, &o);
    if (rc == 0 && o.n_args > 0) {
        inferd_config_free(cfg);
        return cli_usage_error("unexpected argument '%s'", o.args[0]);
    }
    if (rc != 0)
        return rc;
    const inferd_prop_spec *keys = inferd_config_keys();
    inferd_value *all = o.json ? inferd_value_object() : NULL;
    bool ok = true;
    for (size_t i = 0; keys[i].name; i++) {
        char env[128], allowed[256];
        char *json = NULL;
        /* Tokens and passwords are never printed. */
        inferd_value *v = inferd_value_copy(inferd_props_get(inferd_config_props(cfg),
                                                             keys[i].name));
        const char *text = NULL;
        size_t len = 0;
        if (inferd__secret_key(keys[i].name) &&
            inferd_value_get_string(v, &text, &len, NULL) == INFERD_OK && len > 0) {
            inferd_value_free(v);
            v = inferd_value_string("***");
        }
        inferd__mask_secrets(v);
        if (all) { /* {"key": {"value": v, "source": "..."}} */
            inferd_value *e = inferd_value_object();
            inferd__put(e, "value", v ? v : inferd_value_null(), &ok);
            inferd__put_str(e, "source", inferd_config_source(cfg, keys[i].name), &ok);
            inferd__put(all, keys[i].name, e, &ok);
            continue;
        }
        inferd_value_to_json(v, INFERD_JSON_COMPACT, &json, NULL, NULL);
        inferd_value_free(v);
        printf("%-26s = %-20s  (%s)\n", keys[i].name, json ? json : "?",
               inferd_config_source(cfg, keys[i].name));
        printf("    %s; %s; env %s\n", keys[i].description,
               inferd_prop_spec_allowed(&keys[i], allowed, sizeof allowed),
               inferd_config_env_name(keys[i].name, env, sizeof env));
        free(json);
    }
    if (all) {
        char *text = NULL;
        if (ok && inferd_value_to_json(all, INFERD_JSON_PRETTY, &text, NULL, NULL) == INFERD_OK)
            printf("%s\n", text);
        else
            rc = EXIT_RUNTIME;
        free(text);
        inferd_value_free(all);
    }
    inferd_config_free(cfg);
    return rc;
}

/* systemd's readiness protocol (sd_notify(3)), without libsystemd: one
 * datagram to $NOTIFY_SOCKET ("@" is the abstract namespace). Nothing when
 * the daemon was not started by systemd. */
static void notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !path[0] || (path[0] != '/' && path[0] != '@'))
        return;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if (len >= sizeof addr.sun_path)
        return;
    memcpy(addr.sun_path, path, len);
    if (addr.sun_path[0] == '@')
        addr.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr,
               (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
        inferd_log_warn("serve", "telling systemd \"%s\": %s", state, strerror(errno));
    close(fd);
}

/* READY=1 once /ready would answer 200 (what health.required names is up),
 * with the reason in STATUS= meanwhile; true once sent. */
static bool notify_when_ready(svc *s, const char *listening)
{
    inferd_value *reasons = svc_not_ready(s);
    size_t n = inferd_value_array_len(reasons);
    char msg[700];
    if (n == 0)
        snprintf(msg, sizeof msg, "READY=1\nSTATUS=%s", listening);
    else
        snprintf(msg, sizeof msg, "STATUS=not ready: %.600s",
                 inferd_value_string_or(inferd_value_array_get(reasons, 0), "?"));
    inferd_value_free(reasons);
    notify(msg);
    return n == 0;
}

/* SIGHUP: reads the configuration again. The log settings, the request
 * limits and the management token apply at once (svc_reconfigure); other
 * changed keys need a restart, and the config_reload event says which. */
static void reload(int argc, char **argv, const inferd_config *running, svc *s)
{
    inferd_value *ev = inferd_value_object();
    inferd_config *fresh = NULL;
    cli_options o;
    /* cli_load_config prints its errors to stderr, which is the daemon's log. */
    bool ok = cli_load_config(argc, argv, &fresh, &o) == 0;
    inferd__put(ev, "ok", inferd_value_bool(ok), NULL);
    if (ok) {
        inferd_value *changed = inferd_value_array(), *restart = inferd_value_array();
        const inferd_prop_spec *keys = inferd_config_keys();
        for (size_t i = 0; keys[i].name; i++) {
            const inferd_value *a = NULL, *b = NULL;
            inferd_config_get(running, keys[i].name, &a, NULL);
            inferd_config_get(fresh, keys[i].name, &b, NULL);
            if (!inferd_value_equal(a, b))
                inferd__push(changed, inferd_value_string(keys[i].name), NULL);
        }
        svc_reconfigure(s, fresh, restart);
        inferd_log_info("serve", "configuration reloaded (SIGHUP): %zu key(s) changed, %zu of "
                        "them need a restart", inferd_value_array_len(changed),
                        inferd_value_array_len(restart));
        inferd__put(ev, "changed", changed, NULL);
        inferd__put(ev, "restartNeeded", restart, NULL);
        inferd_config_free(fresh);
    } else {
        inferd_log_error("serve", "configuration reload (SIGHUP) failed; keeping the running one");
    }
    inferd_event_publish("config_reload", ev, NULL);
}

/* The grace before the drain: /ready answers 503 "stopping" while requests
 * are still taken, so that a load balancer's health check takes the daemon
 * out before it refuses connections. Another SIGTERM or SIGINT ends it;
 * SIGHUP is ignored now. */
static void grace(svc *s, uint64_t ms, const sigset_t *sigs)
{
    if (ms == 0)
        return;
    s->ready = 0;
    inferd_log_info("serve", "/ready answers 503; taking requests %llu ms more "
                    "(http.shutdown_grace_ms; SIGTERM again to stop now)", (unsigned long long)ms);
    uint64_t end = inferd__now_us() + ms * 1000u;
    for (uint64_t now; (now = inferd__now_us()) < end;) {
        uint64_t left = end - now;
        struct timespec t = {.tv_sec = (time_t)(left / 1000000u),
                             .tv_nsec = (long)(left % 1000000u) * 1000};
        int sig = sigtimedwait(sigs, NULL, &t);
        if (sig == SIGTERM || sig == SIGINT) {
            inferd_log_info("serve", "%s received again: stopping now",
                            sig == SIGINT ? "SIGINT" : "SIGTERM");
            return;
        }
    }
}

static int cmd_serve(int argc, char **argv)
{
    inferd_config *cfg = NULL;
    int rc = load_config_no_args(argc, argv, &cfg);
    if (rc != 0)
        return rc;

    char host[256];
    uint16_t port;
    inferd_error err = {0};
    if (inferd_http_parse_listen(inferd_config_string(cfg, "listen"), host, sizeof host, &port,
                                 &err) != INFERD_OK) {
        fprintf(stderr, "inferd: listen (from %s): %s\n", inferd_config_source(cfg, "listen"),
                err.message);
        inferd_config_free(cfg);
        return EXIT_USAGE;
    }

    /* Block the stop and reload signals in every thread (the server's and
     * the plugins' threads inherit the mask) and wait for them here, so
     * shutdown runs on this thread, not in a handler. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Plugins first: a plugin that cannot be activated stops the start. */
    inferd_registry *reg = NULL;
    inferd_portables *portables = NULL;
    svc *s = NULL;
    bool bad_config = false;
    if (cli_open_registry(cfg, &reg, &err) != INFERD_OK ||
        inferd_portables_open(cfg, reg, true, &portables, &err) != INFERD_OK ||
        (inferd_portables_start(portables), false) ||
        svc_start(cfg, reg, portables, &s, &bad_config, &err) != INFERD_OK) {
        inferd_log_error("serve", "%s", err.message);
        inferd_portables_free(portables);
        inferd_registry_free(reg);
        inferd_config_free(cfg);
        return bad_config ? EXIT_USAGE : EXIT_RUNTIME;
    }
    const char *scheme = svc_tls(s) ? "https" : "http";
    inferd_log_info("serve", "inferd %s listening on %s://%s%s%s:%u (try /health, /version)",
                    inferd_version(), scheme, strchr(host, ':') ? "[" : "",
                    host[0] ? host : "0.0.0.0", strchr(host, ':') ? "]" : "", svc_port(s));

    char listening[300];
    snprintf(listening, sizeof listening, "listening on %s://%s%s%s:%u", scheme,
             strchr(host, ':') ? "[" : "", host[0] ? host : "0.0.0.0",
             strchr(host, ':') ? "]" : "", svc_port(s));
    /* Until ready, look again every 200 ms (a portable plugin starting, a
     * model that failed); then only the signals. */
    bool ready = notify_when_ready(s, listening);
    int sig = 0;
    for (;;) {
        struct timespec tick = {.tv_nsec = 200 * 1000 * 1000};
        if (ready) {
            if (sigwait(&sigs, &sig) != 0)
                sig = 0;
        } else {
            sig = sigtimedwait(&sigs, NULL, &tick); /* -1: the tick, or EINTR */
        }
        if (sig <= 0) {
            ready = ready || notify_when_ready(s, listening);
            continue;
        }
        if (sig != SIGHUP)
            break;
        notify("RELOADING=1");
        reload(argc, argv, cfg, s);
        ready = notify_when_ready(s, listening);
    }
    notify("STOPPING=1");
    inferd_log_info("serve", "%s received, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    grace(s, (uint64_t)inferd_config_int(cfg, "http.shutdown_grace_ms"), &sigs);
    svc_stop(s, (uint64_t)inferd_config_int(cfg, "http.shutdown_timeout_ms"));
    inferd_portables_free(portables);
    inferd_registry_free(reg);
    inferd_log_info("serve", "stopped");
    inferd_config_free(cfg);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error("%s", "missing command");
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0 || strcmp(cmd, "version") == 0) {
        printf("inferd %s\n", inferd_version());
        return 0;
    }
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "config") == 0)
        return cmd_config(argc - 1, argv + 1);
    if (strcmp(cmd, "plugin") == 0)
        return cmd_plugin(argc - 1, argv + 1);
    if (strcmp(cmd, "describe") == 0)
        return cmd_describe(argc - 1, argv + 1);
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "pipeline") == 0)
        return cmd_pipeline(argc - 1, argv + 1);
    if (strcmp(cmd, "model") == 0)
        return cmd_model(argc - 1, argv + 1);
    if (strcmp(cmd, "worker") == 0)
        return worker_main(argc - 1, argv + 1);
    if (strcmp(cmd, "bench") == 0)
        return cmd_bench(argc - 1, argv + 1);
    return cli_usage_error("unknown command '%s'", cmd);
}
