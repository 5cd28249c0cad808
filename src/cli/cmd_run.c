/* cli/cmd_run.c: `inferd run PIPELINE.json [INPUT...]`.
 *
 * Feeds files (or every image in a folder, or standard input) to the
 * pipeline's appsrc on one thread, and prints one JSON line per input from
 * its appsink on another, in input order. Exit code 1 when any input failed.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/build_value.h"
#include "inferd/log.h"
#include "inferd/pipeline.h"

#define MAX_INPUT_BYTES (256u << 20)

typedef struct run_state {
    inferd_pipeline *p;
    char **inputs;          /* owned: the files to feed, "-" for stdin */
    size_t n_inputs;
    char **names;           /* names[frame id]: borrowed from inputs */
    size_t n_pushed;        /* frames pushed, written by the feeder */
    int failures;           /* inputs that could not be read or pushed */
    pthread_mutex_t lock;
    bool progress;
} run_state;

static bool is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0 ||
                   strcasecmp(dot, ".png") == 0);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds path, or the images of the folder path (sorted), to the list. */
static int add_input(run_state *s, const char *path)
{
    struct stat sb;
    size_t first = s->n_inputs;
    if (strcmp(path, "-") != 0 && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (!is_image_name(e->d_name))
                continue;
            char **grown = realloc(s->inputs, (s->n_inputs + 1) * sizeof *grown);
            if (!grown)
                break;
            s->inputs = grown;
            size_t plen = strlen(path);
            while (plen > 1 && path[plen - 1] == '/')
                plen--;
            if (asprintf(&s->inputs[s->n_inputs], "%.*s/%s", (int)plen, path, e->d_name) >= 0)
                s->n_inputs++;
        }
        if (d)
            closedir(d);
        qsort(s->inputs + first, s->n_inputs - first, sizeof *s->inputs, by_name);
        return 0;
    }
    char **grown = realloc(s->inputs, (s->n_inputs + 1) * sizeof *grown);
    if (!grown || !(grown[s->n_inputs] = strdup(path)))
        return -1;
    s->inputs = grown;
    s->n_inputs++;
    return 0;
}

/* Reads a whole file (or standard input) into malloc'd memory. */
static inferd_status read_all(const char *path, void **out, size_t *len, inferd_error *err)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f)
        return inferd_error_set(err, INFERD_EIO, "cannot open %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap || ferror(f))
            break;
        if (cap >= MAX_INPUT_BYTES) {
            free(buf);
            buf = NULL;
            if (f != stdin)
                fclose(f);
            return inferd_error_set(err, INFERD_ERANGE, "%s is larger than %u MiB", path,
                                    MAX_INPUT_BYTES >> 20);
        }
        char *grown = realloc(buf, cap * 2);
        if (!grown) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = grown;
        cap *= 2;
    }
    bool failed = !buf || ferror(f);
    if (f != stdin)
        fclose(f);
    if (failed) {
        free(buf);
        return inferd_error_set(err, INFERD_EIO, "cannot read %s", path);
    }
    *out = buf;
    *len = n;
    return INFERD_OK;
}

static void print_input_error(const char *name, const inferd_error *e)
{
    inferd_value *o = inferd_value_object();
    inferd_value *ev = inferd_value_object();
    inferd__put(o, "input", inferd_value_string(name), NULL);
    inferd__put(ev, "code", inferd_value_string(inferd_status_name(e->code)), NULL);
    inferd__put(ev, "message", inferd_value_string(e->message), NULL);
    inferd__put(o, "error", ev, NULL);
    char *text = NULL;
    if (inferd_value_to_json(o, INFERD_JSON_COMPACT, &text, NULL, NULL) == INFERD_OK)
        printf("%s\n", text);
    fflush(stdout);
    free(text);
    inferd_value_free(o);
}

static void *feeder(void *arg)
{
    run_state *s = arg;
    for (size_t i = 0; i < s->n_inputs; i++) {
        inferd_error err = {0};
        void *data = NULL;
        size_t len = 0;
        inferd_buffer *buf = inferd_buffer_new();
        if (!buf)
            break;
        if (read_all(s->inputs[i], &data, &len, &err) != INFERD_OK) {
            /* The error goes through the pipeline as this input's frame, so
             * that it is printed after the results of the inputs before it. */
            inferd_buffer_set_error(buf, &err);
        } else {
            const char *mime = inferd_image_codec_mime(inferd_image_sniff(data, len));
            if (inferd_buffer_set_value(buf, mime ? mime : "application/octet-stream",
                                        inferd_value_bytes_take(data, len), &err) != INFERD_OK) {
                inferd_buffer_unref(buf);
                break;
            }
        }
        /* Frame ids are given in push order from 0: record the name first. */
        pthread_mutex_lock(&s->lock);
        s->names[s->n_pushed] = s->inputs[i];
        pthread_mutex_unlock(&s->lock);
        if (inferd_pipeline_push(s->p, NULL, buf, NULL, -1, &err) != INFERD_OK) {
            pthread_mutex_lock(&s->lock);
            print_input_error(s->inputs[i], &err);
            s->failures++;
            pthread_mutex_unlock(&s->lock);
            break;
        }
        pthread_mutex_lock(&s->lock);
        s->n_pushed++;
        pthread_mutex_unlock(&s->lock);
    }
    inferd_pipeline_end(s->p, NULL);
    return NULL;
}

/* One line per result: the JSON payload with "input" first, or the error. */
static bool print_result(run_state *s, inferd_buffer *r)
{
    pthread_mutex_lock(&s->lock);
    uint64_t id = inferd_buffer_frame_id(r);
    const char *name = id < s->n_inputs && s->names[id] ? s->names[id] : NULL;
    /* A pipeline that reads its own input names it in metadata: filesrc its
     * file, video_source its video. */
    inferd_meta m;
    for (size_t k = 0; !name && inferd_buffer_meta_at(r, k, &m); k++) {
        name = inferd_value_string_or(inferd_value_object_get(m.value, "file"), NULL);
        if (!name)
            name = inferd_value_string_or(inferd_value_object_get(m.value, "source"), NULL);
    }
    if (!name)
        name = "?";
    const inferd_error *e = inferd_buffer_error(r);
    if (e) {
        print_input_error(name, e);
        pthread_mutex_unlock(&s->lock);
        return false;
    }
    inferd_value *o = inferd_value_object();
    inferd__put(o, "input", inferd_value_string(name), NULL);
    const inferd_value *v = inferd_buffer_value(r);
    const char *key;
    inferd_value *item;
    if (inferd_value_is(v, INFERD_VALUE_OBJECT)) {
        for (size_t k = 0; inferd_value_object_entry(v, k, &key, &item); k++)
            inferd__put(o, key, inferd_value_copy(item), NULL);
    } else {
        inferd__put_str(o, "format", inferd_buffer_format(r) ? inferd_buffer_format(r) : "none",
                        NULL);
    }
    char *text = NULL;
    if (inferd_value_to_json(o, INFERD_JSON_COMPACT, &text, NULL, NULL) == INFERD_OK)
        printf("%s\n", text);
    fflush(stdout);
    free(text);
    inferd_value_free(o);
    if (s->progress)
        fprintf(stderr, "\r[%llu/%zu] %s\033[K", (unsigned long long)id + 1, s->n_inputs, name);
    pthread_mutex_unlock(&s->lock);
    return true;
}

int cmd_run(int argc, char **argv)
{
    inferd_config *cfg = NULL;
    cli_options o;
    int rc = cli_load_config(argc, argv, &cfg, &o);
    if (rc != 0)
        return rc;
    if (o.n_args < 1) {
        inferd_config_free(cfg);
        return cli_usage_error("%s", "run needs a pipeline file: inferd run PIPELINE.json "
                                     "[FILE|FOLDER|-]...");
    }
    run_state s = {.lock = PTHREAD_MUTEX_INITIALIZER};
    for (int i = 1; i < o.n_args; i++)
        if (add_input(&s, o.args[i]) != 0)
            return EXIT_RUNTIME;

    inferd_error err = {0};
    inferd_registry *reg = NULL;
    if (cli_open_registry(cfg, &reg, &err) != INFERD_OK ||
        inferd_pipeline_load(reg, o.args[0], &s.p, &err) != INFERD_OK) {
        fprintf(stderr, "inferd: %s\n", err.message);
        rc = EXIT_USAGE;
    } else if (inferd_pipeline_source_count(s.p) > 1 || inferd_pipeline_sink_count(s.p) > 1 ||
               (inferd_pipeline_source_count(s.p) == 0 && s.n_inputs > 0)) {
        fprintf(stderr, "inferd: run feeds at most one appsrc and reads at most one appsink; %s "
                        "has %zu and %zu%s\n", o.args[0], inferd_pipeline_source_count(s.p),
                inferd_pipeline_sink_count(s.p),
                s.n_inputs ? " (a pipeline without appsrc reads its own input: give no inputs)"
                           : "");
        rc = EXIT_USAGE;
    } else if (inferd_pipeline_source_count(s.p) == 1 && s.n_inputs == 0 &&
               add_input(&s, "-") != 0) {
        rc = EXIT_RUNTIME;
    } else if (!(s.names = calloc(s.n_inputs + 1, sizeof *s.names)) ||
               inferd_pipeline_start(s.p, &err) != INFERD_OK) {
        fprintf(stderr, "inferd: %s\n", err.message);
        rc = EXIT_RUNTIME;
    } else {
        s.progress = isatty(STDERR_FILENO) && s.n_inputs > 1;
        bool feeding = inferd_pipeline_source_count(s.p) == 1;
        pthread_t t;
        if (feeding)
            pthread_create(&t, NULL, feeder, &s);
        int failed = 0;
        inferd_buffer *r = NULL;
        while (inferd_pipeline_sink_count(s.p) == 1 &&
               inferd_pipeline_pull(s.p, NULL, -1, &r, &err) == INFERD_OK && r) {
            failed += !print_result(&s, r);
            inferd_buffer_unref(r);
        }
        if (feeding)
            pthread_join(t, NULL);
        /* Without a sink (a filesink), wait for the producers to finish. */
        inferd_pipeline_wait(s.p);
        inferd_pipeline_stats stats;
        inferd_pipeline_get_stats(s.p, &stats);
        if (inferd_pipeline_sink_count(s.p) == 0)
            failed += (int)stats.errors;
        if (s.progress)
            fprintf(stderr, "\n");
        rc = failed + s.failures > 0 ? EXIT_RUNTIME : 0;
    }
    inferd_pipeline_free(s.p);
    inferd_registry_free(reg);
    inferd_config_free(cfg);
    for (size_t i = 0; i < s.n_inputs; i++)
        free(s.inputs[i]);
    free(s.inputs);
    free(s.names);
    return rc;
}
