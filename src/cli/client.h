/* cli/client.h: what the clients of a running daemon's HTTP API share
 * (`inferd pipeline`, `inferd model`): the command line (COMMAND ARGS with
 * --url, --token, --help and each family's own options, checked against a
 * table of subcommands, with the usage texts), one request with libcurl,
 * and the output helpers.
 *
 * Exit codes: 0 success; 1 the daemon answered an error ("inferd: <status>
 * <code>: <message>") or cannot be reached; 2 a usage error.
 */
#ifndef INFERD_CLI_CLIENT_H
#define INFERD_CLI_CLIENT_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "inferd/value.h"

#define CLI_DEFAULT_URL "http://127.0.0.1:8080"
#define CLI_MAX_FLAGS 8

typedef struct cli_client cli_client;
typedef struct cli_command cli_command;

/* A family's own option --NAME (with a value or not): bit i of given. */
typedef struct cli_flag {
    const char *name;
    bool takes_value;
} cli_flag;

struct cli_command {
    const char *name;
    const char *synopsis;      /* its arguments and options, for usage lines */
    int min_args, max_args;    /* max -1: any number */
    unsigned options;          /* the bits of the family's flags it takes */
    const char *method, *tail; /* for its run: the request it makes, when fixed */
    int (*run)(cli_client *c, const cli_command *cmd);
    const char *about;         /* lines of its description */
};

/* One command of the inferd binary made of subcommands ("pipeline"). */
typedef struct cli_family {
    const char *name;
    const char *summary;       /* the line under its usage */
    const cli_command *commands;
    size_t n_commands;
    const cli_flag *flags;     /* at most CLI_MAX_FLAGS */
    size_t n_flags;
    const char *flags_help;    /* the lines of --help about its flags */
} cli_family;

/* How a client trusts an HTTPS daemon and proves itself to one that asks
 * (http.tls_client_ca): --cacert, --cert, --key, or $INFERD_CACERT,
 * $INFERD_CLIENT_CERT, $INFERD_CLIENT_KEY. NULL: the system's CAs; none. */
typedef struct cli_tls {
    const char *cacert, *cert, *key;
} cli_tls;
/* The defaults from the environment. */
cli_tls cli_tls_from_env(void);
/* Takes --cacert, --cert or --key with its value v into t; false for
 * another option. */
bool cli_tls_option(cli_tls *t, const char *option, const char *v);
/* Applies t to a libcurl handle. */
void cli_tls_apply(CURL *h, const cli_tls *t);
/* The lines of --help about them. */
#define CLI_TLS_HELP                                                                        \
    "  --cacert FILE    the CA that signed an HTTPS daemon's certificate (default:\n"        \
    "                   $INFERD_CACERT, else the system's)\n"                                \
    "  --cert FILE, --key FILE  a client certificate and its key, for a daemon that\n"      \
    "                   asks for one (default: $INFERD_CLIENT_CERT, $INFERD_CLIENT_KEY)\n"

struct cli_client {
    const cli_family *family;
    CURL *curl;
    char *url;                     /* owned: the daemon, without a trailing '/' */
    const char *token;             /* NULL: none */
    cli_tls tls;
    unsigned given;                /* the flags given */
    const char *value[CLI_MAX_FLAGS]; /* their values (borrowed from argv) */
    char **args;                   /* after the subcommand's name (borrowed from argv) */
    int n_args;
};

/* Parses argv (argv[0] is the family's name), checks the subcommand's
 * arguments and options, and runs it. Returns the exit code. */
int cli_client_main(const cli_family *f, int argc, char **argv);
/* Says what is wrong with cmd's use (NULL: the family's), with its usage
 * lines; returns 2. */
int cli_client_usage(const cli_family *f, const cli_command *cmd, const char *fmt,
                     const char *arg);

/* ---- requests ------------------------------------------------------------------------------ */

typedef struct cli_reply {
    long status;         /* 0: no answer */
    char *body;          /* owned, NUL-terminated; a stream's: its unfinished line */
    size_t len;
    char type[128];      /* Content-Type */
    char frame[32];      /* X-Inferd-Frame: the frame of a pipeline's result sent as bytes */
    inferd_value *json;  /* owned: the body parsed, by cli_request_json */
    /* A stream: each line of a 2xx body, without its end; false ends the transfer. */
    bool (*on_line)(char *line, void *arg);
    void *arg;
    bool stopped;        /* on_line ended it */
} cli_reply;

void cli_reply_free(cli_reply *r);
/* One request: method on the daemon's path, with body (NULL: none) of
 * type. Fills *r (free it with cli_reply_free in every case). Returns 0
 * for a 2xx answer; else says why on stderr and returns 1. */
int cli_request(cli_client *c, const char *method, const char *path, const char *type,
                const void *body, size_t len, cli_reply *r);
/* cli_request for an answer in JSON, parsed into r->json. */
int cli_request_json(cli_client *c, const char *method, const char *path, const char *type,
                     const void *body, size_t len, cli_reply *r);
/* prefix + NAME escaped for a URL + tail ("/v1/pipelines/", "a b", "/start"
 * -> "/v1/pipelines/a%20b/start"). The caller frees it; NULL: no memory. */
char *cli_path(cli_client *c, const char *prefix, const char *name, const char *tail);

/* A whole file, NUL-terminated (malloc'd; *len without the NUL); NULL
 * after saying why on stderr. */
char *cli_read_file(const char *path, size_t *len);

/* ---- output -------------------------------------------------------------------------------- */

/* Fields of the daemon's answers ("?" and 0 when absent). */
const char *cli_str(const inferd_value *obj, const char *key);
long long cli_int(const inferd_value *obj, const char *key);
/* The daemon's answer as it sent it. */
void cli_print_body(const cli_reply *r);

/* A table: cells row by row, the first row the header, each column as wide
 * as its widest cell; the first n_text columns to the left, numbers to the
 * right. */
typedef struct cli_table {
    char **cells;
    size_t n, cols;
} cli_table;

void cli_table_start(cli_table *t, const char *const *heads, size_t cols);
void cli_table_add(cli_table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* obj[key] as a cell: "-" when absent. */
void cli_table_add_int(cli_table *t, const inferd_value *obj, const char *key);
/* Prints it (at most 16 columns) and frees its cells. */
void cli_table_print(cli_table *t, size_t n_text);

#endif
