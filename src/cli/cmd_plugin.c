/* cli/cmd_plugin.c: `inferd plugin list|inspect|install|remove` (the plugin and state
 * folders) and `inferd plugin activate|deactivate|upgrade` (a running daemon). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "core/build_value.h"
#include "inferd/registry.h"
#include "portable/portables.h"

static void print_json(inferd_value *v)
{
    char *text = NULL;
    if (inferd_value_to_json(v, INFERD_JSON_PRETTY, &text, NULL, NULL) == INFERD_OK)
        printf("%s\n", text);
    free(text);
    inferd_value_free(v);
}

static bool is_active(const inferd_registry *reg, const char *file_stem)
{
    for (size_t i = 0; i < inferd_registry_plugin_count(reg); i++) {
        const char *path = inferd_registry_plugin_at(reg, i)->path;
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        size_t n = strlen(file_stem);
        if (strncmp(base, file_stem, n) == 0 && strcmp(base + n, ".so") == 0)
            return true;
    }
    return false;
}

/* The plugin files in dir that are not loaded, as an array of stems. */
static inferd_value *inactive_files(const inferd_registry *reg, const char *dir)
{
    inferd_value *arr = inferd_value_array();
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n <= 3 || strcmp(e->d_name + n - 3, ".so") != 0)
            continue;
        char stem[256];
        snprintf(stem, sizeof stem, "%.*s", (int)(n - 3), e->d_name);
        if (!is_active(reg, stem))
            inferd__push(arr, inferd_value_string(stem), NULL);
    }
    if (d)
        closedir(d);
    return arr;
}

static int plugin_list(const inferd_registry *reg, const char *dir, bool json)
{
    if (json) {
        inferd_value *root = inferd_value_object();
        inferd_value *plugins = inferd_value_array();
        for (size_t i = 0; i < inferd_registry_plugin_count(reg); i++)
            inferd__push(plugins,
                         inferd_describe_plugin(inferd_registry_plugin_at(reg, i), false), NULL);
        inferd__put(root, "plugins", plugins, NULL);
        inferd__put(root, "plugin_dir", inferd_value_string(dir), NULL);
        inferd__put(root, "inactive", inactive_files(reg, dir), NULL);
        print_json(root);
        return 0;
    }
    size_t n = inferd_registry_plugin_count(reg);
    printf("%zu plugin%s loaded (plugin folder %s)\n", n, n == 1 ? "" : "s", dir);
    for (size_t i = 0; i < n; i++) {
        const inferd_plugin_info *p = inferd_registry_plugin_at(reg, i);
        printf("%s %s  (ABI %u.%u)  %s\n", p->name, p->version, p->abi_major, p->abi_minor,
               p->path);
        for (size_t c = 0; c < p->descriptor->n_components; c++) {
            const inferd_component *comp = inferd_plugin_component(p->descriptor, c);
            printf("    %-10s %s\n", inferd_component_kind_name(comp->kind), comp->name);
        }
    }
    inferd_value *inactive = inactive_files(reg, dir);
    for (size_t i = 0; i < inferd_value_array_len(inactive); i++)
        printf("%s  (inactive: not in active_plugins)\n",
               inferd_value_string_or(inferd_value_array_get(inactive, i), ""));
    inferd_value_free(inactive);
    return 0;
}

static void print_props(const char *title, const inferd_prop_spec *specs)
{
    if (!specs || !specs[0].name)
        return;
    printf("  %s:\n", title);
    cli_print_specs(specs, 4);
}

static void print_ports(const char *title, const inferd_port_spec *ports)
{
    printf("  %s:", title);
    if (!ports || !ports[0].formats) {
        printf(" none\n");
        return;
    }
    printf("\n");
    for (size_t i = 0; ports[i].formats; i++) {
        printf("    %zu (%s):", i, ports[i].dynamic ? "dynamic" : "static");
        for (size_t f = 0; ports[i].formats[f]; f++)
            printf(" %s", ports[i].formats[f]);
        printf("\n");
    }
}

static void print_component(const inferd_component *c, const inferd_plugin_info *p)
{
    printf("%s %s (plugin %s %s, %s)\n", inferd_component_kind_name(c->kind), c->name, p->name,
           p->version, p->path);
    if (c->description && *c->description)
        printf("  %s\n", c->description);
    print_props("properties", c->props);
    switch (c->kind) {
    case INFERD_KIND_ELEMENT:
        print_props("common properties", inferd_element_common_props());
        print_ports("inputs", c->inputs);
        print_ports("outputs", c->outputs);
        break;
    case INFERD_KIND_FUNCTION:
        if (c->max_args < 0)
            printf("  arity: %d or more arguments\n", c->min_args);
        else
            printf("  arity: %d..%d arguments\n", c->min_args, c->max_args);
        if (c->flags & INFERD_COMPONENT_AGGREGATE)
            printf("  aggregate: yes\n");
        break;
    case INFERD_KIND_ESTIMATOR:
        if (c->flags & INFERD_COMPONENT_FAMILY)
            printf("  family: serves the names the config gives it (estimators.NAME = "
                   "{\"type\": \"%s\", ...})\n", c->name);
        else
            printf("  broker name: %s\n", c->broker_name);
        print_props("request options", inferd_component_request_options(c));
        break;
    case INFERD_KIND_EVENT:
        printf("  event: %s\n", c->event_name);
        break;
    case INFERD_KIND_BACKGROUND:
        for (size_t r = 0; c->routes && c->routes[r].method; r++)
            printf("  route: %s %s\n", c->routes[r].method, c->routes[r].path);
        break;
    default:
        break;
    }
}

static int print_plugin(const inferd_plugin_info *p, bool json, const char *note)
{
    if (json) {
        inferd_value *d = inferd_describe_plugin(p, true);
        if (note)
            inferd__put(d, "active", inferd_value_bool(false), NULL);
        print_json(d);
        return 0;
    }
    printf("plugin %s %s (ABI %u.%u) %s%s\n\n", p->name, p->version, p->abi_major, p->abi_minor,
           p->path, note ? note : "");
    for (size_t c = 0; c < p->descriptor->n_components; c++) {
        print_component(inferd_plugin_component(p->descriptor, c), p);
        printf("\n");
    }
    return 0;
}

static int plugin_inspect(const inferd_registry *reg, const char *dir, const char *name, bool json)
{
    const inferd_plugin_info *p = inferd_registry_find_plugin(reg, name);
    if (p)
        return print_plugin(p, json, NULL);
    const inferd_component *c = inferd_registry_find(reg, name, &p);
    if (c) {
        if (json)
            print_json(inferd_describe_component(c));
        else
            print_component(c, p);
        return 0;
    }
    /* A file of the folder that is not active: loaded on its own to be shown. */
    char path[4096];
    if (inferd_registry_plugin_file(dir, name, path, sizeof path)) {
        inferd_registry *own = NULL;
        inferd_error err = {0};
        int rc = EXIT_RUNTIME;
        if (inferd_registry_new(&own, &err) == INFERD_OK &&
            inferd_registry_load_file(own, path, &err) == INFERD_OK)
            rc = print_plugin(inferd_registry_plugin_at(own, 0), json,
                              "  (inactive: add it to active_plugins)");
        else
            fprintf(stderr, "inferd: %s\n", err.message);
        inferd_registry_free(own);
        return rc;
    }
    fprintf(stderr, "inferd: no plugin or component named %s, and no file %s.so in %s "
                    "(`inferd plugin list` shows what is there)\n", name, name, dir);
    return EXIT_RUNTIME;
}

/* `plugin install FILE.zip [NAME]` and `plugin remove NAME`: the same
 * checks and steps as POST/DELETE /plugins/portables, on the state folder
 * directly (refused while a daemon runs on it). */
static int portable_change(inferd_portables *p, bool install, char **args, int n, bool json)
{
    inferd_error err = {0};
    if (!install) {
        if (inferd_portables_remove(p, args[0], &err) != INFERD_OK) {
            fprintf(stderr, "inferd: %s\n", err.message);
            return EXIT_RUNTIME;
        }
        printf("removed portable plugin %s\n", args[0]);
        return 0;
    }
    char zip[4096], name[256];
    if (!realpath(args[0], zip)) {
        fprintf(stderr, "inferd: package %s: %s\n", args[0], strerror(errno));
        return EXIT_RUNTIME;
    }
    if (n == 2) {
        snprintf(name, sizeof name, "%s", args[1]);
    } else { /* pyai.zip installs as pyai */
        const char *base = strrchr(zip, '/') + 1;
        size_t len = strlen(base);
        if (len > 4 && strcmp(base + len - 4, ".zip") == 0)
            len -= 4;
        snprintf(name, sizeof name, "%.*s", (int)len, base);
    }
    inferd_value *desc = NULL;
    if (inferd_portables_install(p, name, zip, &desc, &err) != INFERD_OK) {
        fprintf(stderr, "inferd: %s\n", err.message);
        return EXIT_RUNTIME;
    }
    if (json) {
        print_json(desc);
    } else {
        printf("installed portable plugin %s %s\n", name,
               inferd_value_string_or(inferd_value_object_get(desc, "version"), ""));
        inferd_value_free(desc);
    }
    return 0;
}

/* ---- a running daemon's plugins (activate, deactivate, upgrade) ----------------------- */

enum { LIVE_JSON = 1 << 0 };
static const cli_flag live_flags[] = {{"json", false}};

static int do_live(cli_client *c, const cli_command *cmd)
{
    char *path = cli_path(c, "/v1/plugins/", c->args[0], cmd->tail);
    cli_reply r = {0};
    int rc = path ? cli_request_json(c, "POST", path, "application/json", "{}", 2, &r)
                  : EXIT_RUNTIME;
    if (rc == 0 && (c->given & LIVE_JSON))
        cli_print_body(&r);
    else if (rc == 0 && strcmp(cmd->name, "activate") == 0)
        printf("plugin %s %s is active\n", cli_str(r.json, "name"), cli_str(r.json, "version"));
    else if (rc == 0)
        printf("plugin %s is inactive\n", cli_str(r.json, "name"));
    cli_reply_free(&r);
    free(path);
    return rc;
}

static int do_upgrade(cli_client *c, const cli_command *cmd)
{
    (void)cmd;
    size_t len = 0;
    char *zip = cli_read_file(c->args[1], &len);
    if (!zip)
        return EXIT_RUNTIME;
    char *path = cli_path(c, "/plugins/portables/", c->args[0], "");
    cli_reply r = {0};
    int rc = path ? cli_request_json(c, "PUT", path, "application/zip", zip, len, &r)
                  : EXIT_RUNTIME;
    if (rc == 0 && (c->given & LIVE_JSON))
        cli_print_body(&r);
    else if (rc == 0)
        printf("portable plugin %s upgraded from %s to %s\n", cli_str(r.json, "name"),
               cli_str(r.json, "previousVersion"), cli_str(r.json, "version"));
    cli_reply_free(&r);
    free(path);
    free(zip);
    return rc;
}

static const cli_command live_commands[] = {
    {"activate", "NAME", 1, 1, LIVE_JSON, NULL, "/activate", do_live,
     "activate a C plugin of plugins.dir (its file name)\n"
     "or an installed portable plugin: its routes,\n"
     "subscriptions and estimator replacements go live"},
    {"deactivate", "NAME", 1, 1, LIVE_JSON, NULL, "/deactivate", do_live,
     "take them away (requests in flight finish); refused\n"
     "while a rule or a pipeline uses the plugin"},
    {"upgrade", "NAME FILE.zip", 2, 2, LIVE_JSON, NULL, NULL, do_upgrade,
     "install a new version of a portable plugin beside\n"
     "the old, move every user to it, stop the old; one\n"
     "that fails is rolled back and the old serves on"},
};

static const cli_family live_family = {
    .name = "plugin",
    .summary = "Change the plugins of a running daemon, over its HTTP API (/v1/plugins, "
               "/plugins/portables). list, inspect, install and remove work on the plugin "
               "folder and the state folder instead: inferd plugin --help.",
    .commands = live_commands,
    .n_commands = sizeof live_commands / sizeof live_commands[0],
    .flags = live_flags,
    .n_flags = sizeof live_flags / sizeof live_flags[0],
    .flags_help = "  --json           the daemon's JSON as it is\n",
};

int cmd_plugin(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
                      strcmp(argv[1], "help") == 0)) {
        cli_print_help("plugin");
        return 0;
    }
    if (argc >= 2 && (strcmp(argv[1], "activate") == 0 || strcmp(argv[1], "deactivate") == 0 ||
                      strcmp(argv[1], "upgrade") == 0))
        return cli_client_main(&live_family, argc, argv);
    if (argc < 2)
        return cli_usage_error("%s", "plugin needs a subcommand: list, inspect NAME, install "
                                     "FILE.zip [NAME], remove NAME, or against a running "
                                     "daemon activate NAME, deactivate NAME, upgrade NAME "
                                     "FILE.zip");
    const char *sub = argv[1];
    bool list = strcmp(sub, "list") == 0, install = strcmp(sub, "install") == 0;
    bool remove = strcmp(sub, "remove") == 0;
    if (!list && !install && !remove && strcmp(sub, "inspect") != 0)
        return cli_usage_error("unknown plugin subcommand '%s' (use list, inspect, install, "
                               "remove, activate, deactivate or upgrade)", sub);
    inferd_config *cfg = NULL;
    cli_options o;
    int rc = cli_load_config(argc - 1, argv + 1, &cfg, &o);
    if (rc != 0)
        return rc;
    const char *usage = list ? (o.n_args != 0 ? "plugin list takes no argument" : NULL)
                      : install ? (o.n_args < 1 || o.n_args > 2
                                       ? "plugin install takes FILE.zip and an optional NAME"
                                       : NULL)
                                : (o.n_args != 1 ? (remove ? "plugin remove takes one NAME"
                                                           : "plugin inspect takes one NAME")
                                                 : NULL);
    if (usage) {
        inferd_config_free(cfg);
        return cli_usage_error("%s", usage);
    }
    inferd_error err = {0};
    inferd_registry *reg = NULL;
    inferd_portables *portables = NULL;
    if (cli_open_registry(cfg, &reg, &err) != INFERD_OK ||
        inferd_portables_open(cfg, reg, install || remove, &portables, &err) != INFERD_OK) {
        fprintf(stderr, "inferd: %s\n", err.message);
        inferd_portables_free(portables);
        inferd_registry_free(reg);
        inferd_config_free(cfg);
        return EXIT_RUNTIME;
    }
    const char *dir = inferd_config_string(cfg, "plugins.dir");
    if (!*dir)
        dir = inferd_default_plugin_dir();
    if (install || remove)
        rc = portable_change(portables, install, o.args, o.n_args, o.json);
    else
        rc = list ? plugin_list(reg, dir, o.json) : plugin_inspect(reg, dir, o.args[0], o.json);
    inferd_portables_free(portables);
    inferd_registry_free(reg);
    inferd_config_free(cfg);
    return rc;
}
