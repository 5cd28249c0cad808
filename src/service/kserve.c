/* service/kserve.c: the KServe v2 inference protocol (Triton's HTTP/REST
 * API) over the ONNX models of models.dir.
 *
 * Every *.onnx of models.dir is opened at start through the onnxruntime
 * backend and served as version "1" of the model named by its file name
 * without ".onnx". A file that fails to load is logged and listed as not
 * ready; the others are served.
 *
 * Metadata and health are answered in the HTTP thread. An inference request
 * is suspended and queued for a small pool of our own (KS_WORKERS threads, at
 * most KS_MAX_QUEUE waiting; beyond that 503 overloaded): the worker parses
 * the body, runs the model and replies, so no HTTP thread waits on a model
 * or on a large JSON body.
 *
 * Binary tensor data (Triton's extension): with the request header
 * Inference-Header-Content-Length: N the first N bytes of the body are the
 * JSON request and the rest are the raw little-endian tensors of the inputs
 * that carry parameters.binary_data_size, in the order of the inputs. An
 * output asked for with parameters.binary_data (or every output, with the
 * request's parameters.binary_data_output) comes back the same way: the
 * reply is the JSON (that output with parameters.binary_data_size and no
 * data) followed by the raw bytes, with the same header.
 *
 * Errors keep inferd's shape {"error": {"code", "message"}} (Triton's own
 * server answers {"error": "message"}).
 */
#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "inferd/log.h"
#include "core/clock.h"
#include "core/build_value.h"
#include "inferd/tensor.h"
#include "inferd/version.h"
#include "service/kserve_request.h"
#include "service/service.h"

#define LOG "kserve"
#define KS_BACKEND "onnxruntime"
#define KS_PLATFORM "onnxruntime_onnx"
#define KS_VERSION "1"
/* The default models run in about a millisecond on small inputs and ONNX
 * Runtime spreads one run over the cores itself: two runs at a time keep
 * the cores busy without oversubscribing them. */
#define KS_WORKERS 2
/* Waiting requests beyond which a new one gets 503 overloaded at once
 * rather than a growing delay. */
#define KS_MAX_QUEUE 64



typedef struct ks_job {
    svc_request *r;     /* borrowed: suspended until the worker replies */
    ks_model *m;        /* borrowed from the svc_kserve */
    uint64_t queued_us; /* monotonic */
    struct ks_job *next;
} ks_job;

struct svc_kserve {
    svc *s;           /* borrowed */
    inferd_value *options; /* owned: models.backend_options (NULL: none given) */
    ks_model *models; /* owned, sorted by name */
    size_t n_models;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    ks_job *head, *tail; /* owned, under lock */
    size_t queued;       /* under lock */
    bool stopping;       /* under lock */
    pthread_t workers[KS_WORKERS];
    size_t n_workers;
};

/* ---- building replies ----------------------------------------------------------- */

static void reply_value(svc_request *r, unsigned status, inferd_value *v, bool ok)
{
    if (!ok || !v) {
        inferd_value_free(v);
        svc_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    svc_reply_json(r, status, v);
}

static inferd_value *shape_value(size_t ndim, const int64_t *shape, bool *ok)
{
    inferd_value *a = inferd_value_array();
    for (size_t d = 0; d < ndim; d++)
        inferd__push(a, inferd_value_int(shape[d]), ok);
    if (!a)
        *ok = false;
    return a;
}

/* "a, b, c" into buf (truncated with "..."), for messages that list names. */

static const char *model_name_at(const void *items, size_t i)
{
    return ((const ks_model *)items)[i].name;
}

/* ---- the models ---------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_model_file(const char *dir, const char *name)
{
    size_t n = strlen(name);
    if (n <= 5 || strcmp(name + n - 5, ".onnx") != 0)
        return false;
    char path[8192];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The *.onnx file names of dir, sorted (owned: each and the array). */
static inferd_status list_models(const char *dir, char ***out, size_t *n_out, inferd_error *err)
{
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(dir);
    if (!d)
        return inferd_error_set(err, INFERD_EIO, "cannot open the folder '%s': %s", dir,
                                strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    inferd_status st = INFERD_OK;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (!is_model_file(dir, e->d_name))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            char **grown = realloc(names, cap * sizeof *grown);
            if (!grown) {
                st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
                break;
            }
            names = grown;
        }
        if (!(names[n] = strdup(e->d_name))) {
            st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
            break;
        }
        n++;
    }
    closedir(d);
    if (st != INFERD_OK) {
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        free(names);
        return st;
    }
    if (n)
        qsort(names, n, sizeof *names, cmp_str);
    *out = names;
    *n_out = n;
    return INFERD_OK;
}

static inferd_status read_io(ks_model *m, inferd_error *err)
{
    m->n_in = inferd_model_io_count(m->model, 0);
    m->n_out = inferd_model_io_count(m->model, 1);
    m->in = calloc(m->n_in + 1, sizeof *m->in);
    m->out = calloc(m->n_out + 1, sizeof *m->out);
    if (!m->in || !m->out)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    inferd_status st = INFERD_OK;
    for (size_t i = 0; i < m->n_in && st == INFERD_OK; i++)
        st = inferd_model_io(m->model, 0, i, &m->in[i], err);
    for (size_t i = 0; i < m->n_out && st == INFERD_OK; i++)
        st = inferd_model_io(m->model, 1, i, &m->out[i], err);
    return st;
}

/* Opens m->path; on failure keeps the reason in m->load_error and logs it. */
static void load_model(svc_kserve *k, ks_model *m)
{
    inferd_error err = {0};
    inferd_status st = inferd_registry_model_open(k->s->reg, KS_BACKEND, m->path, k->options,
                                                  &m->model, &err);
    if (st == INFERD_OK && (st = read_io(m, &err)) != INFERD_OK) {
        inferd_model_close(m->model);
        m->model = NULL;
    }
    if (st == INFERD_OK) {
        inferd_log_debug(LOG, "model %s: %s (%zu input(s), %zu output(s))", m->name, m->path,
                         m->n_in, m->n_out);
        return;
    }
    free(m->in);
    free(m->out);
    m->in = m->out = NULL;
    m->n_in = m->n_out = 0;
    m->load_error = strdup(err.message[0] ? err.message : inferd_status_name(st));
    inferd_log_warn(LOG, "model %s (%s) is not served: %s", m->name, m->path, err.message);
}

static ks_model *find_model(svc_kserve *k, const char *name)
{
    for (size_t i = 0; k && name && i < k->n_models; i++)
        if (strcmp(k->models[i].name, name) == 0)
            return &k->models[i];
    return NULL;
}

/* The model of the route's first '*', or NULL after a 404 (or a 503 when
 * loaded is needed and it did not load). versioned: the route's second '*'
 * is a version, and only "1" exists. */
static ks_model *model_or_reply(svc_request *r, bool versioned, bool loaded)
{
    svc_kserve *k = svc_of(r)->kserve;
    const char *name = svc_param(r, 0);
    ks_model *m = find_model(k, name);
    if (!m) {
        char list[320];
        svc_reply_error(r, 404, "not_found", "no model '%s'; the models are: %s", name ? name : "",
                        ks_name_list(k ? k->models : NULL, k ? k->n_models : 0, model_name_at, list,
                                  sizeof list));
        return NULL;
    }
    const char *version = versioned ? svc_param(r, 1) : NULL;
    if (versioned && (!version || strcmp(version, KS_VERSION) != 0)) {
        svc_reply_error(r, 404, "not_found", "model '%s' has no version '%s'; its only version is "
                        KS_VERSION, m->name, version ? version : "");
        return NULL;
    }
    if (loaded && !m->model) {
        svc_reply_error(r, 503, "not_ready", "model '%s' is not ready: it failed to load: %s",
                        m->name, m->load_error);
        return NULL;
    }
    return m;
}

/* ---- health, server and model metadata --------------------------------------- */

static void h_live(svc_request *r)
{
    bool ok = true;
    inferd_value *v = inferd_value_object();
    inferd__put(v, "live", inferd_value_bool(true), &ok);
    reply_value(r, 200, v, ok);
}

static void h_ready(svc_request *r)
{
    svc *s = svc_of(r);
    if (!s->ready) {
        svc_reply_error(r, 503, "not_ready", "inferd is starting or stopping");
        return;
    }
    for (size_t i = 0; s->kserve && i < s->kserve->n_models; i++) {
        const ks_model *m = &s->kserve->models[i];
        if (!m->model) {
            svc_reply_error(r, 503, "not_ready", "model '%s' is not ready: it failed to load: %s",
                            m->name, m->load_error);
            return;
        }
    }
    bool ok = true;
    inferd_value *v = inferd_value_object();
    inferd__put(v, "ready", inferd_value_bool(true), &ok);
    reply_value(r, 200, v, ok);
}

static void h_server(svc_request *r)
{
    bool ok = true;
    inferd_value *v = inferd_value_object(), *ext = inferd_value_array();
    inferd__put(v, "name", inferd_value_string("inferd"), &ok);
    inferd__put(v, "version", inferd_value_string(inferd_version()), &ok);
    inferd__push(ext, inferd_value_string("binary_tensor_data"), &ok);
    inferd__put(v, "extensions", ext, &ok);
    reply_value(r, 200, v, ok);
}

static inferd_value *io_value(const inferd_tensor_info *io, size_t n, bool *ok)
{
    inferd_value *a = inferd_value_array();
    for (size_t i = 0; i < n; i++) {
        inferd_value *o = inferd_value_object();
        inferd__put(o, "name", inferd_value_string(io[i].name), ok);
        inferd__put(o, "datatype", inferd_value_string(inferd_dtype_name(io[i].dtype)), ok);
        inferd__put(o, "shape", shape_value(io[i].ndim, io[i].shape, ok), ok);
        inferd__push(a, o, ok);
    }
    if (!a)
        *ok = false;
    return a;
}

static void model_metadata(svc_request *r, bool versioned)
{
    ks_model *m = model_or_reply(r, versioned, true);
    if (!m)
        return;
    bool ok = true;
    inferd_value *v = inferd_value_object(), *versions = inferd_value_array();
    inferd__put(v, "name", inferd_value_string(m->name), &ok);
    inferd__push(versions, inferd_value_string(KS_VERSION), &ok);
    inferd__put(v, "versions", versions, &ok);
    inferd__put(v, "platform", inferd_value_string(KS_PLATFORM), &ok);
    inferd__put(v, "inputs", io_value(m->in, m->n_in, &ok), &ok);
    inferd__put(v, "outputs", io_value(m->out, m->n_out, &ok), &ok);
    reply_value(r, 200, v, ok);
}

static void h_model(svc_request *r) { model_metadata(r, false); }
static void h_model_version(svc_request *r) { model_metadata(r, true); }

static void model_ready(svc_request *r, bool versioned)
{
    ks_model *m = model_or_reply(r, versioned, true);
    if (!m)
        return;
    bool ok = true;
    inferd_value *v = inferd_value_object();
    inferd__put(v, "name", inferd_value_string(m->name), &ok);
    inferd__put(v, "ready", inferd_value_bool(true), &ok);
    reply_value(r, 200, v, ok);
}

static void h_model_ready(svc_request *r) { model_ready(r, false); }
static void h_model_version_ready(svc_request *r) { model_ready(r, true); }

/* Triton's model repository index: every model and its state. The body may
 * be empty or {"ready": true} (only the ready ones). */
static void h_repository_index(svc_request *r)
{
    size_t len = 0;
    const char *body = svc_body(r, &len);
    bool only_ready = false;
    if (len) {
        inferd_value *req = NULL;
        inferd_error err = {0};
        if (inferd_value_from_json(body, len, svc_of(r)->max_json_depth, &req, &err) != INFERD_OK) {
            svc_reply_error(r, 400, "bad_request", "the request is not valid JSON: %s",
                            err.message);
            return;
        }
        const inferd_value *ready = inferd_value_object_get(req, "ready");
        if (!inferd_value_is(req, INFERD_VALUE_OBJECT) ||
            (ready && !inferd_value_is(ready, INFERD_VALUE_BOOL))) {
            inferd_value_free(req);
            svc_reply_error(r, 400, "bad_request",
                            "the request must be an object such as {\"ready\": true}");
            return;
        }
        only_ready = inferd_value_bool_or(ready, false);
        inferd_value_free(req);
    }
    svc_kserve *k = svc_of(r)->kserve;
    bool ok = true;
    inferd_value *list = inferd_value_array();
    for (size_t i = 0; k && i < k->n_models; i++) {
        const ks_model *m = &k->models[i];
        if (only_ready && !m->model)
            continue;
        inferd_value *o = inferd_value_object();
        inferd__put(o, "name", inferd_value_string(m->name), &ok);
        inferd__put(o, "version", inferd_value_string(KS_VERSION), &ok);
        inferd__put(o, "state", inferd_value_string(m->model ? "READY" : "UNAVAILABLE"), &ok);
        if (!m->model)
            inferd__put(o, "reason", inferd_value_string(m->load_error), &ok);
        inferd__push(list, o, &ok);
    }
    reply_value(r, 200, list, ok);
}

/* ---- parsing an inference request -------------------------------------------- */

/* One inference, from the parsed request to the reply. */
/* ---- the reply ------------------------------------------------------------------ */

/* Element i of t as a JSON value. */
static inferd_value *element_value(const inferd_tensor *t, size_t i)
{
    const void *p = t->data;
    switch (t->dtype) {
    case INFERD_DTYPE_BOOL: return inferd_value_bool(((const uint8_t *)p)[i] != 0);
    case INFERD_DTYPE_UINT8: return inferd_value_int(((const uint8_t *)p)[i]);
    case INFERD_DTYPE_INT8: return inferd_value_int(((const int8_t *)p)[i]);
    case INFERD_DTYPE_UINT16: return inferd_value_int(((const uint16_t *)p)[i]);
    case INFERD_DTYPE_INT16: return inferd_value_int(((const int16_t *)p)[i]);
    case INFERD_DTYPE_UINT32: return inferd_value_int(((const uint32_t *)p)[i]);
    case INFERD_DTYPE_INT32: return inferd_value_int(((const int32_t *)p)[i]);
    case INFERD_DTYPE_INT64: return inferd_value_int(((const int64_t *)p)[i]);
    case INFERD_DTYPE_UINT64: {
        /* Beyond int64 a JSON integer would not read back here: a number. */
        uint64_t x = ((const uint64_t *)p)[i];
        return x <= INT64_MAX ? inferd_value_int((int64_t)x) : inferd_value_double((double)x);
    }
    case INFERD_DTYPE_FLOAT32: return inferd_value_double(((const float *)p)[i]);
    case INFERD_DTYPE_FLOAT64: return inferd_value_double(((const double *)p)[i]);
    default: return NULL; /* FP16 is refused before the run */
    }
}

static void reply_outputs(svc_request *r, ks_call *c)
{
    const ks_model *m = c->m;
    bool ok = true;
    size_t binary_len = 0;
    inferd_value *res = inferd_value_object(), *outs = inferd_value_array();
    inferd__put(res, "model_name", inferd_value_string(m->name), &ok);
    inferd__put(res, "model_version", inferd_value_string(KS_VERSION), &ok);
    const inferd_value *id = inferd_value_object_get(c->req, "id");
    if (id)
        inferd__put(res, "id", inferd_value_copy(id), &ok);
    for (size_t k = 0; k < c->n_order && ok; k++) {
        size_t j = c->order[k];
        const inferd_tensor *t = c->out[j];
        inferd_value *o = inferd_value_object();
        inferd__put(o, "name", inferd_value_string(m->out[j].name), &ok);
        inferd__put(o, "datatype", inferd_value_string(inferd_dtype_name(t->dtype)), &ok);
        inferd__put(o, "shape", shape_value(t->ndim, t->shape, &ok), &ok);
        if (c->binary[j]) {
            inferd_value *params = inferd_value_object();
            inferd__put(params, "binary_data_size", inferd_value_int((int64_t)t->nbytes), &ok);
            inferd__put(o, "parameters", params, &ok);
            binary_len += t->nbytes;
        } else {
            inferd_value *data = inferd_value_array();
            size_t n = inferd_tensor_count(t);
            for (size_t i = 0; i < n && ok; i++)
                inferd__push(data, element_value(t, i), &ok);
            inferd__put(o, "data", data, &ok);
        }
        inferd__push(outs, o, &ok);
    }
    inferd__put(res, "outputs", outs, &ok);
    bool any_binary = false;
    for (size_t k = 0; k < c->n_order; k++)
        any_binary |= c->binary[c->order[k]];
    if (!any_binary || !ok) {
        reply_value(r, 200, res, ok);
        return;
    }
    char *json = NULL;
    size_t json_len = 0;
    char *buf = NULL;
    if (inferd_value_to_json(res, INFERD_JSON_COMPACT, &json, &json_len, NULL) == INFERD_OK)
        buf = malloc(json_len + binary_len + 1);
    inferd_value_free(res);
    if (!buf) {
        free(json);
        svc_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    memcpy(buf, json, json_len);
    free(json);
    size_t at = json_len;
    for (size_t k = 0; k < c->n_order; k++) {
        const inferd_tensor *t = c->out[c->order[k]];
        if (c->binary[c->order[k]]) {
            memcpy(buf + at, t->data, t->nbytes);
            at += t->nbytes;
        }
    }
    char header[32];
    snprintf(header, sizeof header, "%zu", json_len);
    svc_reply_header(r, KS_BINARY_HEADER, header);
    svc_reply_bytes(r, 200, "application/octet-stream", buf, at);
}

/* In a worker: parses, runs and replies to one request. */
static void run_job(ks_job *job)
{
    uint64_t start = inferd__now_us();
    ks_call c = {.m = job->m};
    const ks_model *m = job->m;
    inferd_error err = {0};
    c.in = calloc(m->n_in + 1, sizeof *c.in);
    c.out = calloc(m->n_out + 1, sizeof *c.out);
    c.binary = calloc(m->n_out + 1, sizeof *c.binary);
    c.order = calloc(m->n_out + 1, sizeof *c.order);
    if (!c.in || !c.out || !c.binary || !c.order) {
        ks_call_free(&c);
        svc_reply_error(job->r, 500, "internal", "out of memory");
        return;
    }
    size_t len = 0;
    const char *body = svc_body(job->r, &len);
    if (ks_parse_request(&c, body, len, svc_header(job->r, "Content-Encoding"),
                         svc_header(job->r, KS_BINARY_HEADER), svc_of(job->r)->max_json_depth,
                         &err) != INFERD_OK) {
        ks_call_free(&c);
        svc_reply_error(job->r, 400, "bad_request", "%s", err.message);
        return;
    }
    uint64_t parsed = inferd__now_us();
    inferd_status st = inferd_model_run(m->model, (const inferd_tensor *const *)c.in, m->n_in,
                                        c.out, m->n_out, &err);
    uint64_t ran = inferd__now_us();
    svc_set_timings(job->r, parsed - start, start - job->queued_us, ran - parsed);
    if (st != INFERD_OK) {
        /* The request passed every check of the model's declared inputs
         * (datatype, rank, fixed dimensions): what fails now fails inside
         * the model's run (a size its graph cannot take, an operator's
         * error), the server's side, as in Triton. */
        inferd_log_warn(LOG, "model %s: %s", m->name, err.message);
        if (st == INFERD_ENOMEM)
            svc_reply_error(job->r, 500, "internal", "%s", err.message);
        else
            svc_reply_error(job->r, 500, "model_error", "model '%s' failed to run: %s", m->name,
                            err.message);
    } else {
        reply_outputs(job->r, &c);
        inferd_log_debug(LOG, "model %s: queued %llu us, parsed %llu us, ran %llu us, replied %llu "
                         "us", m->name, (unsigned long long)(start - job->queued_us),
                         (unsigned long long)(parsed - start), (unsigned long long)(ran - parsed),
                         (unsigned long long)(inferd__now_us() - ran));
    }
    ks_call_free(&c);
}

static void *worker_main(void *arg)
{
    svc_kserve *k = arg;
    for (;;) {
        pthread_mutex_lock(&k->lock);
        while (!k->head && !k->stopping)
            pthread_cond_wait(&k->wake, &k->lock);
        ks_job *job = k->head;
        if (job) {
            k->head = job->next;
            if (!k->head)
                k->tail = NULL;
            k->queued--;
        }
        pthread_mutex_unlock(&k->lock);
        if (!job)
            return NULL;
        run_job(job);
        free(job);
    }
}

static void infer(svc_request *r, bool versioned)
{
    ks_model *m = model_or_reply(r, versioned, true);
    if (!m)
        return;
    svc_kserve *k = svc_of(r)->kserve;
    ks_job *job = calloc(1, sizeof *job);
    if (!job) {
        svc_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    job->r = r;
    job->m = m;
    job->queued_us = inferd__now_us();
    pthread_mutex_lock(&k->lock);
    if (k->stopping || k->queued >= KS_MAX_QUEUE) {
        bool stopping = k->stopping;
        pthread_mutex_unlock(&k->lock);
        free(job);
        if (stopping)
            svc_reply_error(r, 503, "not_ready", "inferd is stopping");
        else
            svc_reply_error(r, 503, "overloaded", "%d KServe inference requests are already "
                            "waiting; retry later (model '%s' did not run)", KS_MAX_QUEUE,
                            m->name);
        return;
    }
    /* Suspended before a worker can see the job, so its reply always
     * follows the suspension. */
    svc_suspend(r);
    if (k->tail)
        k->tail->next = job;
    else
        k->head = job;
    k->tail = job;
    size_t waiting = ++k->queued;
    pthread_cond_signal(&k->wake);
    pthread_mutex_unlock(&k->lock);
    inferd_log_debug(LOG, "model %s: request queued (%zu waiting)", m->name, waiting);
}

static void h_infer(svc_request *r) { infer(r, false); }
static void h_infer_version(svc_request *r) { infer(r, true); }

/* ---- lifecycle ------------------------------------------------------------------- */

void svc_kserve_stop(svc_kserve *k)
{
    if (!k)
        return;
    pthread_mutex_lock(&k->lock);
    k->stopping = true;
    ks_job *queued = k->head;
    k->head = k->tail = NULL;
    k->queued = 0;
    pthread_cond_broadcast(&k->wake);
    pthread_mutex_unlock(&k->lock);
    /* Every suspended request gets its reply before the server closes. */
    while (queued) {
        ks_job *next = queued->next;
        svc_reply_error(queued->r, 503, "not_ready", "inferd is stopping; model '%s' did not run",
                        queued->m->name);
        free(queued);
        queued = next;
    }
    /* The runs in progress finish and reply. */
    for (size_t i = 0; i < k->n_workers; i++)
        pthread_join(k->workers[i], NULL);
    k->n_workers = 0;
}

void svc_kserve_free(svc_kserve *k)
{
    if (!k)
        return;
    svc_kserve_stop(k);
    pthread_cond_destroy(&k->wake);
    pthread_mutex_destroy(&k->lock);
    for (size_t i = 0; i < k->n_models; i++) {
        ks_model *m = &k->models[i];
        if (m->model)
            inferd_model_close(m->model);
        free(m->in);
        free(m->out);
        free(m->load_error);
        free(m->name);
        free(m->path);
    }
    free(k->models);
    inferd_value_free(k->options);
    free(k);
}

inferd_status svc_kserve_new(svc *s, svc_kserve **out, inferd_error *err)
{
    *out = NULL;
    const char *dir = inferd_config_string(s->cfg, "models.dir");
    bool configured = dir && dir[0];
    if (!configured)
        dir = inferd_default_models_dir();
    svc_kserve *k = calloc(1, sizeof *k);
    if (!k)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    k->s = s;
    pthread_mutex_init(&k->lock, NULL);
    pthread_cond_init(&k->wake, NULL);
    /* Checked here against the backend's declared options, once: a mistake
     * stops the start rather than leaving every model unready. */
    const inferd_value *opts = NULL;
    inferd_status checked = inferd_config_get(s->cfg, "models.backend_options", &opts, err);
    const inferd_component *backend = inferd_registry_find(s->reg, KS_BACKEND, NULL);
    inferd_props *props = NULL;
    if (checked == INFERD_OK && backend && inferd_value_object_len(opts) > 0) {
        checked = inferd_props_validate(backend->props, "config models.backend_options", opts,
                                        &props, err);
        if (checked == INFERD_OK && !(k->options = inferd_value_copy(opts)))
            checked = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    inferd_props_free(props);
    if (checked != INFERD_OK) {
        svc_kserve_free(k);
        return checked;
    }

    char **files = NULL;
    size_t n_files = 0;
    inferd_error list_err = {0};
    if (list_models(dir, &files, &n_files, &list_err) != INFERD_OK) {
        /* A folder the user named must exist; the default one may be
         * missing (a build without its models): then there are none. */
        if (configured || list_err.code == INFERD_ENOMEM) {
            svc_kserve_free(k);
            return inferd_error_set(err, list_err.code == INFERD_ENOMEM ? INFERD_ENOMEM
                                                                         : INFERD_EINVAL,
                                    "models.dir: %s", list_err.message);
        }
        inferd_log_warn(LOG, "no models to serve: %s", list_err.message);
    }
    inferd_status st = INFERD_OK;
    if (n_files && !(k->models = calloc(n_files, sizeof *k->models)))
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    for (size_t i = 0; i < n_files && st == INFERD_OK; i++) {
        ks_model *m = &k->models[k->n_models];
        m->name = strndup(files[i], strlen(files[i]) - strlen(".onnx"));
        if (!m->name || asprintf(&m->path, "%s/%s", dir, files[i]) < 0) {
            m->path = NULL;
            st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        }
        k->n_models++;
        if (st == INFERD_OK)
            load_model(k, m);
    }
    for (size_t i = 0; i < n_files; i++)
        free(files[i]);
    free(files);
    for (size_t i = 0; i < KS_WORKERS && st == INFERD_OK; i++) {
        int rc = pthread_create(&k->workers[i], NULL, worker_main, k);
        if (rc != 0)
            st = inferd_error_set(err, INFERD_EINTERNAL, "kserve: cannot start a worker thread: %s",
                                  strerror(rc));
        else
            k->n_workers++;
    }
    if (st != INFERD_OK) {
        svc_kserve_free(k);
        return st;
    }
    size_t ready = 0;
    for (size_t i = 0; i < k->n_models; i++)
        ready += k->models[i].model != NULL;
    inferd_log_info(LOG, "serving %zu model(s) from %s (%zu ready)", k->n_models, dir, ready);
    *out = k;
    return INFERD_OK;
}

/* ---- routes ------------------------------------------------------------------------ */

const svc_route svc_kserve_routes[] = {
    {"GET", "/v2/health/live", h_live, 0},
    {"GET", "/v2/health/ready", h_ready, 0},
    {"GET", "/v2", h_server, 0},
    {"GET", "/v2/models/*", h_model, 0},
    {"GET", "/v2/models/*/ready", h_model_ready, 0},
    {"GET", "/v2/models/*/versions/*", h_model_version, 0},
    {"GET", "/v2/models/*/versions/*/ready", h_model_version_ready, 0},
    {"POST", "/v2/models/*/infer", h_infer, 0},
    {"POST", "/v2/models/*/versions/*/infer", h_infer_version, 0},
    {"POST", "/v2/repository/index", h_repository_index, 0},
    {NULL, NULL, NULL, 0},
};
