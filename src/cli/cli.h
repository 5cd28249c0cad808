/* cli/cli.h: what the subcommands of the inferd binary share. */
#ifndef INFERD_CLI_H
#define INFERD_CLI_H

#include <stdbool.h>

#include "inferd/config.h"

/* Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error. */
enum { EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

typedef struct cli_options {
    bool json;
    char **args;   /* positional arguments after the options (borrowed from argv) */
    int n_args;
} cli_options;

/* Parses the options every command shares and loads the configuration
 * (file, environment, flags). Returns 0, or the exit code to end with. */
int cli_load_config(int argc, char **argv, inferd_config **out, cli_options *opts);
/* The registry every command uses: the built-in plugins, the active ones of
 * the configuration, and the daemon's connector elements (mqtt_source,
 * mqtt_sink, http_sink). *out is NULL on failure. */
struct inferd_registry;
inferd_status cli_open_registry(const inferd_config *cfg, struct inferd_registry **out,
                                inferd_error *err);
/* Prints "inferd: <message>" and the --help hint; returns EXIT_USAGE. */
int cli_usage_error(const char *fmt, const char *arg);
/* Prints cmd's --help ("serve", "plugin", ...; else the global one). */
void cli_print_help(const char *cmd);

int cmd_plugin(int argc, char **argv);
int cmd_describe(int argc, char **argv);
/* Prints a declaration: each key's type, range, default, description,
 * nested keys indented below (describe, config, plugin inspect). */
struct inferd_prop_spec;
void cli_print_specs(const struct inferd_prop_spec *specs, int indent);
int cmd_run(int argc, char **argv);
/* A client of a running daemon's /v1/pipelines (cmd_pipeline.c). */
int cmd_pipeline(int argc, char **argv);
/* A client of a running daemon's KServe models (cmd_model.c). */
int cmd_model(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif
