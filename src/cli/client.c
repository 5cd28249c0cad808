/* cli/client.c: the command line and the HTTP requests of the daemon's
 * clients (client.h). */
#include "cli/client.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"

/* ---- requests ------------------------------------------------------------------------------ */

void cli_reply_free(cli_reply *r)
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
    cli_reply *r = arg;
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
    cli_reply *r = arg;
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
static void print_error(const cli_reply *r)
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

int cli_request(cli_client *c, const char *method, const char *path, const char *type,
                const void *body, size_t len, cli_reply *r)
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
    curl_easy_reset(c->curl); /* keeps the connection for the next request */
    cli_tls_apply(c->curl, &c->tls);
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

int cli_request_json(cli_client *c, const char *method, const char *path, const char *type,
                     const void *body, size_t len, cli_reply *r)
{
    int rc = cli_request(c, method, path, type, body, len, r);
    inferd_error err = {0};
    if (rc == 0 && inferd_value_from_json(r->body ? r->body : "", r->len, 0, &r->json, &err) !=
                       INFERD_OK) {
        fprintf(stderr, "inferd: %s%s answered what is not JSON: %s\n", c->url, path, err.message);
        rc = EXIT_RUNTIME;
    }
    return rc;
}

char *cli_path(cli_client *c, const char *prefix, const char *name, const char *tail)
{
    char *escaped = curl_easy_escape(c->curl, name, 0), *path = NULL;
    if (!escaped || asprintf(&path, "%s%s%s", prefix, escaped, tail) < 0)
        path = NULL;
    curl_free(escaped);
    return path;
}

/* ---- output -------------------------------------------------------------------------------- */

const char *cli_str(const inferd_value *obj, const char *key)
{
    return inferd_value_string_or(inferd_value_object_get(obj, key), "?");
}

long long cli_int(const inferd_value *obj, const char *key)
{
    return (long long)inferd_value_int_or(inferd_value_object_get(obj, key), 0);
}

void cli_print_body(const cli_reply *r)
{
    fputs(r->body ? r->body : "", stdout);
    if (!r->len || r->body[r->len - 1] != '\n')
        putchar('\n');
}

void cli_table_add(cli_table *t, const char *fmt, ...)
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

void cli_table_start(cli_table *t, const char *const *heads, size_t cols)
{
    t->cols = cols;
    for (size_t i = 0; i < cols; i++)
        cli_table_add(t, "%s", heads[i]);
}

void cli_table_add_int(cli_table *t, const inferd_value *obj, const char *key)
{
    if (inferd_value_object_get(obj, key))
        cli_table_add(t, "%lld", cli_int(obj, key));
    else
        cli_table_add(t, "-");
}

void cli_table_print(cli_table *t, size_t n_text)
{
    int width[16] = {0};
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
    t->cells = NULL;
    t->n = 0;
}

/* ---- the command line ---------------------------------------------------------------------- */

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

static void print_usage(FILE *to, const cli_family *f, const cli_command *cmd)
{
    if (cmd) {
        fprintf(to, "usage: inferd %s %s%s%s [OPTIONS]\n\n", f->name, cmd->name,
                cmd->synopsis[0] ? " " : "", cmd->synopsis);
        print_about(to, cmd->about, 0, 2);
    } else {
        fprintf(to, "usage: inferd %s COMMAND [ARGS] [OPTIONS]\n\n%s\n\nCommands:\n", f->name,
                f->summary);
        for (size_t i = 0; i < f->n_commands; i++) {
            const cli_command *c = &f->commands[i];
            print_about(to, c->about,
                        fprintf(to, "  %s%s%s", c->name, c->synopsis[0] ? " " : "", c->synopsis),
                        ABOUT_COLUMN);
        }
    }
    fprintf(to, "\nOptions:\n"
                "  --url URL        the daemon (default: $INFERD_URL, else " CLI_DEFAULT_URL ")\n"
                "  --token TOKEN    bearer token, needed from other hosts (default:\n"
                "                   $INFERD_TOKEN)\n"
                CLI_TLS_HELP
                "%s"
                "  -h, --help       this text; after a command, that command's\n"
                "\n"
                "Exit codes: 0 success, 1 the daemon answered an error or cannot be reached,\n"
                "2 usage error.\n",
            f->flags_help);
}

int cli_client_usage(const cli_family *f, const cli_command *cmd, const char *fmt,
                     const char *arg)
{
    fprintf(stderr, "inferd: %s%s%s: ", f->name, cmd ? " " : "", cmd ? cmd->name : "");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    for (size_t i = 0; i < f->n_commands; i++) {
        const cli_command *c = &f->commands[i];
        if (!cmd || cmd == c)
            fprintf(stderr, "%s inferd %s %s%s%s\n", !cmd && i ? "      " : "usage:", f->name,
                    c->name, c->synopsis[0] ? " " : "", c->synopsis);
    }
    fprintf(stderr, "Try 'inferd %s %s%s--help'.\n", f->name, cmd ? cmd->name : "",
            cmd ? " " : "");
    return EXIT_USAGE;
}

/* The i-th argument's name in a synopsis ("NAME IMAGE... [--async]", 1:
 * "IMAGE"), for "missing IMAGE". */
static const char *arg_name(const cli_command *cmd, int i, char *out, size_t size)
{
    const char *p = cmd->synopsis;
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

/* The subcommand's arguments and the options it takes; 0 or EXIT_USAGE. */
static int check_args(const cli_client *c, const cli_command *cmd)
{
    const cli_family *f = c->family;
    char name[32];
    for (size_t i = 0; i < f->n_flags; i++)
        if ((c->given & (1u << i)) && !(cmd->options & (1u << i)))
            return cli_client_usage(f, cmd, "--%s is not an option of this command",
                                    f->flags[i].name);
    if (c->n_args < cmd->min_args)
        return cli_client_usage(f, cmd, "missing %s", arg_name(cmd, c->n_args, name, sizeof name));
    if (cmd->max_args >= 0 && c->n_args > cmd->max_args)
        return cli_client_usage(f, cmd, "unexpected argument '%s'", c->args[cmd->max_args]);
    return 0;
}

int cli_client_main(const cli_family *f, int argc, char **argv)
{
    enum { OPT_URL = 'u', OPT_TOKEN = 't', OPT_HELP = 'h', OPT_TLS = 128, OPT_FLAG = 256 };
    enum { N_COMMON = 6 };
    struct option opts[N_COMMON + CLI_MAX_FLAGS + 1] = {
        {"url", required_argument, NULL, OPT_URL},
        {"token", required_argument, NULL, OPT_TOKEN},
        {"help", no_argument, NULL, OPT_HELP},
        {"cacert", required_argument, NULL, OPT_TLS},
        {"cert", required_argument, NULL, OPT_TLS + 1},
        {"key", required_argument, NULL, OPT_TLS + 2},
    };
    for (size_t i = 0; i < f->n_flags && i < CLI_MAX_FLAGS; i++)
        opts[N_COMMON + i] = (struct option){f->flags[i].name,
                                      f->flags[i].takes_value ? required_argument : no_argument,
                                      NULL, OPT_FLAG + (int)i};
    cli_client c = {.family = f, .tls = cli_tls_from_env()};
    const char *url = getenv("INFERD_URL"), *token = getenv("INFERD_TOKEN");
    /* The first option error, told with the usage of the command it is for. */
    const char *bad = NULL, *bad_arg = NULL;
    bool help = false;
    int o;
    optind = 1;
    opterr = 0; /* our messages, with the usage */
    while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (o == OPT_URL) {
            url = optarg;
        } else if (o == OPT_TOKEN) {
            token = optarg;
        } else if (o == OPT_HELP) {
            help = true;
        } else if (o >= OPT_TLS && o < OPT_TLS + 3) {
            cli_tls_option(&c.tls, opts[3 + (o - OPT_TLS)].name, optarg);
        } else if (o >= OPT_FLAG && o < OPT_FLAG + CLI_MAX_FLAGS) {
            c.given |= 1u << (o - OPT_FLAG);
            c.value[o - OPT_FLAG] = optarg;
        } else if (!bad) {
            bad = o == ':' ? "option '%s' needs a value" : "unknown option '%s'";
            bad_arg = argv[optind - 1];
        }
    }
    const cli_command *cmd = NULL;
    for (size_t i = 0; optind < argc && i < f->n_commands; i++)
        if (strcmp(argv[optind], f->commands[i].name) == 0)
            cmd = &f->commands[i];
    if (bad)
        return cli_client_usage(f, cmd, bad, bad_arg);
    if (help) {
        print_usage(stdout, f, cmd);
        return 0;
    }
    if (optind >= argc)
        return cli_client_usage(f, NULL, "%s", "missing COMMAND");
    if (!cmd)
        return cli_client_usage(f, NULL, "unknown command '%s'", argv[optind]);
    c.token = token && *token ? token : NULL;
    c.args = argv + optind + 1;
    c.n_args = argc - optind - 1;
    int rc = check_args(&c, cmd);
    if (rc)
        return rc;

    if (!url || !*url)
        url = CLI_DEFAULT_URL;
    size_t n = strlen(url);
    while (n > 1 && url[n - 1] == '/')
        n--;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(c.curl = curl_easy_init()) ||
        !(c.url = strndup(url, n))) {
        fprintf(stderr, "inferd: cannot start an HTTP client (out of memory?)\n");
        curl_easy_cleanup(c.curl);
        return EXIT_RUNTIME;
    }
    rc = cmd->run(&c, cmd);
    curl_easy_cleanup(c.curl);
    curl_global_cleanup();
    free(c.url);
    return rc;
}

cli_tls cli_tls_from_env(void)
{
    const char *ca = getenv("INFERD_CACERT"), *cert = getenv("INFERD_CLIENT_CERT"),
               *key = getenv("INFERD_CLIENT_KEY");
    return (cli_tls){ca && *ca ? ca : NULL, cert && *cert ? cert : NULL, key && *key ? key : NULL};
}

bool cli_tls_option(cli_tls *t, const char *option, const char *v)
{
    option += strspn(option, "-");
    if (strcmp(option, "cacert") == 0)
        t->cacert = v;
    else if (strcmp(option, "cert") == 0)
        t->cert = v;
    else if (strcmp(option, "key") == 0)
        t->key = v;
    else
        return false;
    return true;
}

void cli_tls_apply(CURL *h, const cli_tls *t)
{
    if (t->cacert)
        curl_easy_setopt(h, CURLOPT_CAINFO, t->cacert);
    if (t->cert)
        curl_easy_setopt(h, CURLOPT_SSLCERT, t->cert);
    if (t->key)
        curl_easy_setopt(h, CURLOPT_SSLKEY, t->key);
}

/* A whole file, NUL-terminated; NULL after saying why. */
char *cli_read_file(const char *path, size_t *len)
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
