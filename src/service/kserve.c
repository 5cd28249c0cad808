/* service/kserve.c: the KServe v2 inference protocol (Triton's HTTP/REST
 * API) over the model repository of models.dir (kserve_repo.h: NAME.onnx
 * files as version 1, and Triton's folders NAME/<version>/model.onnx with
 * an optional NAME/config.json), with Triton's extensions for it: the
 * repository (index, load, unload), statistics and model configuration.
 *
 * Metadata, health, statistics and the index are answered in the HTTP
 * thread. An inference request takes a reference to the model version it
 * names (or the highest), is suspended and queued for a small pool of our
 * own (KS_WORKERS threads, at most KS_MAX_QUEUE waiting; beyond that 503
 * overloaded): the worker parses the body, runs the model, replies, counts
 * the request in the version's statistics and lets go of the version, so
 * no HTTP thread waits on a model or on a large JSON body, and a reload or
 * unload never closes a session a request still uses. Loads and unloads
 * are management routes on the service's worker pool (a load opens
 * sessions, which takes seconds).
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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "inferd/log.h"
#include "inferd/props.h"
#include "core/build_value.h"
#include "inferd/tensor.h"
#include "inferd/version.h"
#include "service/kserve_repo.h"
#include "service/health.h"
#include "service/kserve_request.h"
#include "service/service.h"

#define LOG "kserve"
/* The default models run in about a millisecond on small inputs and ONNX
 * Runtime spreads one run over the cores itself: two runs at a time keep
 * the cores busy without oversubscribing them. */
#define KS_WORKERS 2
/* Waiting requests beyond which a new one gets 503 overloaded at once
 * rather than a growing delay. */
#define KS_MAX_QUEUE 64

typedef struct ks_job {
    svc_request *r;      /* borrowed: suspended until the worker replies */
    ks_version *v;       /* a reference, let go after the reply */
    uint64_t started_ns; /* monotonic: the request's headers */
    uint64_t queued_ns;
    struct ks_job *next;
} ks_job;

struct svc_kserve {
    svc *s;              /* borrowed */
    ks_repo *repo;       /* owned */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    ks_job *head, *tail; /* owned, under lock */
    size_t queued;       /* under lock */
    bool stopping;       /* under lock */
    pthread_t workers[KS_WORKERS];
    size_t n_workers;
};

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

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

/* A value the repository made, or its error. */
static void reply_made(svc_request *r, inferd_status st, inferd_value *v,
                       const inferd_error *err)
{
    if (st == INFERD_OK)
        svc_reply_json(r, 200, v);
    else
        svc_reply_status(r, st, err);
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

/* The version of the route's model (its first '*'; versioned: the second
 * '*' names the version, else the highest), referenced; NULL after the
 * error reply (404 unknown or unloaded, 503 failed to load). */
static ks_version *version_or_reply(svc_request *r, bool versioned)
{
    ks_version *v = NULL;
    inferd_error err = {0};
    inferd_status st = ks_repo_acquire(svc_of(r)->kserve->repo, svc_param(r, 0),
                                       versioned ? svc_param(r, 1) : NULL, &v, &err);
    if (st != INFERD_OK)
        svc_reply_status(r, st, &err);
    return v;
}

/* A small request body (load, unload, index) checked by its declaration;
 * NULL after a 400. An empty body is {}. */
static inferd_props *body_props(svc_request *r, const inferd_prop_spec *specs, const char *owner)
{
    size_t len = 0;
    const char *body = svc_body(r, &len);
    inferd_value *given = NULL;
    inferd_props *props = NULL;
    inferd_error err = {0};
    inferd_status st = INFERD_OK;
    if (len && (st = inferd_value_from_json(body, len, svc_of(r)->max_json_depth, &given,
                                            &err)) != INFERD_OK)
        inferd_error_prefix(&err, "%s is not valid JSON", owner);
    if (st == INFERD_OK)
        st = inferd_props_validate(specs, owner, given, &props, &err);
    inferd_value_free(given);
    if (st != INFERD_OK)
        svc_reply_error(r, st == INFERD_ENOMEM ? 500 : 400,
                        st == INFERD_ENOMEM ? "internal" : "bad_request", "%s", err.message);
    return props;
}

/* ---- health, server and model metadata --------------------------------------- */

static void h_live(svc_request *r)
{
    bool ok = true;
    inferd_value *v = inferd_value_object();
    inferd__put(v, "live", inferd_value_bool(true), &ok);
    reply_value(r, 200, v, ok);
}

/* Ready when the service takes requests and no model failed to load (an
 * unloaded one does not count: it was asked for). */
inferd_status svc_kserve_health(svc_kserve *k, const char *name,
                                void (*down)(void *ctx, const char *reason), void *ctx)
{
    return ks_repo_health(k->repo, name, down, ctx);
}

/* Ready as /ready is (health.required), and with every model loaded:
 * Triton's strict readiness. */
static void h_ready(svc_request *r)
{
    svc *s = svc_of(r);
    inferd_value *reasons = svc_not_ready(s);
    if (reasons && s->ready)
        ks_repo_health(s->kserve->repo, NULL, svc_health_add, reasons);
    const char *first = inferd_value_string_or(inferd_value_array_get(reasons, 0), NULL);
    if (!reasons)
        svc_reply_error(r, 500, "internal", "out of memory");
    else if (first)
        svc_reply_error(r, 503, "not_ready", "%s", first);
    else {
        bool ok = true;
        inferd_value *v = inferd_value_object();
        inferd__put(v, "ready", inferd_value_bool(true), &ok);
        reply_value(r, 200, v, ok);
    }
    inferd_value_free(reasons);
}

static void h_server(svc_request *r)
{
    static const char *const extensions[] = {"binary_tensor_data", "model_repository",
                                             "statistics", "model_configuration"};
    bool ok = true;
    inferd_value *v = inferd_value_object(), *ext = inferd_value_array();
    inferd__put(v, "name", inferd_value_string("inferd"), &ok);
    inferd__put(v, "version", inferd_value_string(inferd_version()), &ok);
    for (size_t i = 0; i < sizeof extensions / sizeof extensions[0]; i++)
        inferd__push(ext, inferd_value_string(extensions[i]), &ok);
    inferd__put(v, "extensions", ext, &ok);
    reply_value(r, 200, v, ok);
}

/* The inputs or outputs as the metadata lists them ({name, datatype,
 * shape}), or as Triton's model configuration does ({name, data_type
 * TYPE_..., dims}, without the batch dimension when batched). */
static inferd_value *io_value(const inferd_tensor_info *io, size_t n, bool config, bool batched,
                              bool *ok)
{
    inferd_value *a = inferd_value_array();
    for (size_t i = 0; i < n; i++) {
        const char *dtype = inferd_dtype_name(io[i].dtype);
        char triton[32];
        snprintf(triton, sizeof triton, "TYPE_%s", dtype);
        size_t skip = config && batched ? 1 : 0;
        inferd_value *o = inferd_value_object();
        inferd__put(o, "name", inferd_value_string(io[i].name), ok);
        inferd__put(o, config ? "data_type" : "datatype",
                    inferd_value_string(config ? triton : dtype), ok);
        inferd__put(o, config ? "dims" : "shape",
                    shape_value(io[i].ndim - skip, io[i].shape + skip, ok), ok);
        inferd__push(a, o, ok);
    }
    if (!a)
        *ok = false;
    return a;
}

static void model_metadata(svc_request *r, bool versioned)
{
    ks_version *mv = version_or_reply(r, versioned);
    if (!mv)
        return;
    const ks_model *m = &mv->m;
    bool ok = true;
    inferd_value *v = inferd_value_object();
    inferd__put(v, "name", inferd_value_string(m->name), &ok);
    inferd__put(v, "versions", ks_repo_versions(mv->repo, mv, &ok), &ok);
    inferd__put(v, "platform", inferd_value_string(KS_PLATFORM), &ok);
    inferd__put(v, "inputs", io_value(m->in, m->n_in, false, false, &ok), &ok);
    inferd__put(v, "outputs", io_value(m->out, m->n_out, false, false, &ok), &ok);
    ks_version_release(mv);
    reply_value(r, 200, v, ok);
}

static void h_model(svc_request *r) { model_metadata(r, false); }
static void h_model_version(svc_request *r) { model_metadata(r, true); }

static void model_ready(svc_request *r, bool versioned)
{
    ks_version *mv = version_or_reply(r, versioned);
    if (!mv)
        return;
    bool ok = true;
    inferd_value *v = inferd_value_object();
    inferd__put(v, "name", inferd_value_string(mv->m.name), &ok);
    inferd__put(v, "ready", inferd_value_bool(true), &ok);
    ks_version_release(mv);
    reply_value(r, 200, v, ok);
}

static void h_model_ready(svc_request *r) { model_ready(r, false); }
static void h_model_version_ready(svc_request *r) { model_ready(r, true); }

/* The backend options a version was opened with, as Triton's config
 * parameters ({"key": {"string_value": "..."}}). */
static inferd_value *parameters_value(const inferd_value *options, bool *ok)
{
    inferd_value *p = inferd_value_object();
    const char *key;
    inferd_value *item;
    for (size_t i = 0; inferd_value_object_entry(options, i, &key, &item); i++) {
        char *text = NULL;
        const char *s = inferd_value_string_or(item, NULL);
        if (!s && inferd_value_to_json(item, INFERD_JSON_COMPACT, &text, NULL, NULL) != INFERD_OK)
            *ok = false;
        inferd_value *o = inferd_value_object();
        inferd__put(o, "string_value", inferd_value_string(s ? s : text ? text : ""), ok);
        inferd__put(p, key, o, ok);
        free(text);
    }
    if (!p)
        *ok = false;
    return p;
}

/* Triton's instance_group: where the model actually runs, as its backend
 * says (KIND_GPU with the GPU's number, KIND_CPU; nothing when it does not
 * say). A model asked onto the GPU that fell back shows KIND_CPU. */
static inferd_value *instance_group(const ks_model *m, bool *ok)
{
    const char *device = inferd_model_device(m->model, NULL);
    inferd_value *list = inferd_value_array(), *g = inferd_value_object();
    if (!device) {
        inferd_value_free(g);
        return list;
    }
    bool gpu = strncmp(device, "cuda:", 5) == 0;
    inferd__put(g, "name", inferd_value_string(m->name), ok);
    inferd__put(g, "kind", inferd_value_string(gpu ? "KIND_GPU" : "KIND_CPU"), ok);
    inferd__put(g, "count", inferd_value_int(1), ok);
    if (gpu) {
        inferd_value *gpus = inferd_value_array();
        inferd__push(gpus, inferd_value_int(strtoll(device + 5, NULL, 10)), ok);
        inferd__put(g, "gpus", gpus, ok);
    }
    inferd__push(list, g, ok);
    return list;
}

/* Triton's model configuration, as far as inferd knows it. */
static void model_config(svc_request *r, bool versioned)
{
    ks_version *mv = version_or_reply(r, versioned);
    if (!mv)
        return;
    const ks_model *m = &mv->m;
    bool ok = true, batched = mv->max_batch > 0;
    inferd_value *v = inferd_value_object();
    /* The versionPolicy of config.json; none: every version serves. */
    inferd_value *policy = mv->policy ? inferd_value_copy(mv->policy) : inferd_value_object();
    if (!mv->policy)
        inferd__put(policy, "all", inferd_value_object(), &ok);
    inferd__put(v, "name", inferd_value_string(m->name), &ok);
    inferd__put(v, "platform", inferd_value_string(KS_PLATFORM), &ok);
    inferd__put(v, "backend", inferd_value_string(KS_BACKEND), &ok);
    inferd__put(v, "version_policy", policy, &ok);
    inferd__put(v, "max_batch_size", inferd_value_int(mv->max_batch), &ok);
    inferd__put(v, "instance_group", instance_group(m, &ok), &ok);
    inferd__put(v, "input", io_value(m->in, m->n_in, true, batched, &ok), &ok);
    inferd__put(v, "output", io_value(m->out, m->n_out, true, batched, &ok), &ok);
    inferd__put(v, "parameters", parameters_value(mv->options, &ok), &ok);
    ks_version_release(mv);
    reply_value(r, 200, v, ok);
}

static void h_config(svc_request *r) { model_config(r, false); }
static void h_config_version(svc_request *r) { model_config(r, true); }

/* ---- the repository and statistics extensions ---------------------------------- */

static const inferd_prop_spec index_body[] = {
    INFERD_PROP_BOOL("ready", "list only the models ready for inference", false),
    INFERD_PROP_END,
};

/* Triton's model repository index: every model and its state. The body may
 * be empty or {"ready": true} (only the ready ones). */
static void h_repository_index(svc_request *r)
{
    inferd_props *props = body_props(r, index_body, "the index request (such as "
                                                    "{\"ready\": true})");
    if (!props)
        return;
    bool ok = true;
    inferd_value *list = ks_repo_index(svc_of(r)->kserve->repo, inferd_props_bool(props, "ready"),
                                       &ok);
    inferd_props_free(props);
    reply_value(r, 200, list, ok);
}

/* Triton's load and unload bodies: {"parameters": {...}}. inferd takes no
 * load parameter (Triton's "config" and "file:" ones replace the files:
 * change models.dir instead), and accepts the unload one (there are no
 * ensembles, so no dependents). */
static const inferd_prop_spec no_parameters[] = {INFERD_PROP_END};
static const inferd_prop_spec unload_parameters[] = {
    INFERD_PROP_BOOL("unload_dependents", "Triton's: also unload the models an ensemble loaded "
                     "(inferd has none: no effect)", false),
    INFERD_PROP_END,
};
static const inferd_prop_spec load_body[] = {
    {.name = "parameters", .type = INFERD_PROP_TYPE_OBJECT, .fields = no_parameters,
     .description = "none are taken"},
    INFERD_PROP_END,
};
static const inferd_prop_spec unload_body[] = {
    {.name = "parameters", .type = INFERD_PROP_TYPE_OBJECT, .fields = unload_parameters,
     .description = "unload_dependents"},
    INFERD_PROP_END,
};

static void change_model(svc_request *r, bool load)
{
    inferd_props *props = body_props(r, load ? load_body : unload_body,
                                     load ? "the load request" : "the unload request");
    if (!props)
        return;
    inferd_props_free(props);
    const char *name = svc_param(r, 0);
    inferd_value *state = NULL;
    inferd_error err = {0};
    inferd_status st = (load ? ks_repo_load : ks_repo_unload)(svc_of(r)->kserve->repo, name,
                                                              &state, &err);
    if (st == INFERD_OK && load)
        inferd_log_info(LOG, "model %s: loaded on request", name);
    reply_made(r, st, state, &err);
}

static void h_load(svc_request *r) { change_model(r, true); }
static void h_unload(svc_request *r) { change_model(r, false); }

/* Statistics of every model, of the route's model, or of its version. */
static void stats(svc_request *r, size_t params)
{
    inferd_value *v = NULL;
    inferd_error err = {0};
    inferd_status st = ks_repo_stats(svc_of(r)->kserve->repo, params > 0 ? svc_param(r, 0) : NULL,
                                     params > 1 ? svc_param(r, 1) : NULL, &v, &err);
    reply_made(r, st, v, &err);
}

static void h_stats_all(svc_request *r) { stats(r, 0); }
static void h_stats(svc_request *r) { stats(r, 1); }
static void h_stats_version(svc_request *r) { stats(r, 2); }

bool svc_kserve_metrics(svc_kserve *k, char **buf, size_t *len, size_t *cap)
{
    char *text = NULL;
    size_t n = 0;
    if (!k)
        return true;
    FILE *f = open_memstream(&text, &n);
    if (!f)
        return false;
    ks_repo_metrics(k->repo, f);
    bool ok = fclose(f) == 0 && text;
    if (ok && *len + n + 1 > *cap) {
        char *grown = realloc(*buf, *len + n + 1);
        if ((ok = grown != NULL)) {
            *buf = grown;
            *cap = *len + n + 1;
        }
    }
    if (ok) {
        memcpy(*buf + *len, text, n + 1);
        *len += n;
    }
    free(text);
    return ok;
}

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

/* The reply of a run: true when it is the outputs (not a 500). */
static bool reply_outputs(svc_request *r, ks_call *c, const char *version)
{
    const ks_model *m = c->m;
    bool ok = true;
    size_t binary_len = 0;
    inferd_value *res = inferd_value_object(), *outs = inferd_value_array();
    inferd__put(res, "model_name", inferd_value_string(m->name), &ok);
    inferd__put(res, "model_version", inferd_value_string(version), &ok);
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
        return ok;
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
        return false;
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
    return true;
}

/* In a worker: parses, runs and replies to one request. */

/* ---- running a request ------------------------------------------------------------- */

/* With maxBatchSize the first dimension of every input is the batch: at
 * most maxBatchSize, and the request's inferences (Triton's
 * inference_count); without, a request is one inference. */
static inferd_status batch_of(const ks_version *v, const ks_call *c, uint64_t *batch,
                              inferd_error *err)
{
    *batch = 1;
    for (size_t j = 0; v->max_batch > 0 && j < v->m.n_in; j++) {
        int64_t b = c->in[j]->shape[0];
        if (b > v->max_batch)
            return inferd_error_set(err, INFERD_EINVAL, "input '%s' of model '%s' carries a "
                                    "batch of %lld; its maxBatchSize is %lld", v->m.in[j].name,
                                    v->m.name, (long long)b, (long long)v->max_batch);
        if (j == 0)
            *batch = (uint64_t)b;
    }
    return INFERD_OK;
}

/* Parses, runs and replies to one request (its error, when it fails:
 * false). Fills the phases of t and the inferences it carried. */
static bool run_call(ks_job *job, ks_call *c, ks_timing *t, uint64_t *batch)
{
    uint64_t start = now_ns();
    const ks_model *m = c->m;
    inferd_error err = {0};
    t->queue = start - job->queued_ns;
    c->in = calloc(m->n_in + 1, sizeof *c->in);
    c->out = calloc(m->n_out + 1, sizeof *c->out);
    c->binary = calloc(m->n_out + 1, sizeof *c->binary);
    c->order = calloc(m->n_out + 1, sizeof *c->order);
    if (!c->in || !c->out || !c->binary || !c->order) {
        svc_reply_error(job->r, 500, "internal", "out of memory");
        return false;
    }
    size_t len = 0;
    const char *body = svc_body(job->r, &len);
    inferd_status st = ks_parse_request(c, body, len, svc_header(job->r, "Content-Encoding"),
                                        svc_header(job->r, KS_BINARY_HEADER),
                                        svc_of(job->r)->max_json_depth, &err);
    if (st == INFERD_OK)
        st = batch_of(job->v, c, batch, &err);
    if (st != INFERD_OK) {
        svc_reply_error(job->r, 400, "bad_request", "%s", err.message);
        return false;
    }
    uint64_t parsed = now_ns();
    st = inferd_model_run(m->model, (const inferd_tensor *const *)c->in, m->n_in, c->out,
                          m->n_out, &err);
    uint64_t ran = now_ns();
    t->input = parsed - start;
    t->infer = ran - parsed;
    svc_set_timings(job->r, t->input / 1000, t->queue / 1000, t->infer / 1000);
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
        return false;
    }
    bool replied = reply_outputs(job->r, c, job->v->label);
    t->output = now_ns() - ran;
    inferd_log_debug(LOG, "model %s version %s: queued %llu us, parsed %llu us, ran %llu us, "
                     "replied %llu us", m->name, job->v->label,
                     (unsigned long long)(t->queue / 1000), (unsigned long long)(t->input / 1000),
                     (unsigned long long)(t->infer / 1000), (unsigned long long)(t->output / 1000));
    return replied;
}

/* In a worker: one request, counted in its version's statistics; then
 * the version is let go (the last user of a replaced one closes it). */
static void run_job(ks_job *job)
{
    ks_call c = {.m = &job->v->m};
    ks_timing t = {0};
    uint64_t batch = 1;
    bool ok = run_call(job, &c, &t, &batch);
    ks_call_free(&c);
    t.total = now_ns() - job->started_ns;
    ks_version_record(job->v, ok, batch, &t);
    ks_version_release(job->v);
}

/* A job that will not run: a 503 (stopping, or the queue is full),
 * counted as the version's failure. */
static void refuse(ks_job *job, bool stopping)
{
    ks_timing t = {.total = now_ns() - job->started_ns};
    ks_version_record(job->v, false, 0, &t);
    if (stopping)
        svc_reply_error(job->r, 503, "not_ready", "inferd is stopping; model '%s' did not run",
                        job->v->m.name);
    else
        svc_reply_error(job->r, 503, "overloaded", "%d KServe inference requests are already "
                        "waiting; retry later (model '%s' did not run)", KS_MAX_QUEUE,
                        job->v->m.name);
    ks_version_release(job->v);
    free(job);
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
    ks_version *v = version_or_reply(r, versioned);
    if (!v)
        return;
    svc_kserve *k = svc_of(r)->kserve;
    ks_job *job = calloc(1, sizeof *job);
    if (!job) {
        ks_version_release(v);
        svc_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    job->r = r;
    job->v = v;
    job->started_ns = svc_started_us(r) * 1000u;
    job->queued_ns = now_ns();
    pthread_mutex_lock(&k->lock);
    if (k->stopping || k->queued >= KS_MAX_QUEUE) {
        bool stopping = k->stopping;
        pthread_mutex_unlock(&k->lock);
        refuse(job, stopping);
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
    inferd_log_debug(LOG, "model %s: request queued (%zu waiting)", v->m.name, waiting);
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
        refuse(queued, true);
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
    ks_repo_free(k->repo);
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
    const inferd_value *opts = NULL;
    inferd_status st = inferd_config_get(s->cfg, "models.backend_options", &opts, err);
    if (st == INFERD_OK)
        st = ks_repo_open(s->reg, dir, configured, opts, &k->repo, err);
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
    size_t models = 0, ready = 0;
    ks_repo_counts(k->repo, &models, &ready);
    inferd_log_info(LOG, "serving %zu model(s) from %s (%zu ready)", models, dir, ready);
    *out = k;
    return INFERD_OK;
}

/* ---- routes ------------------------------------------------------------------------ */

/* /v2/models/stats before /v2/models/{m}: the first match wins (a model
 * named "stats" has its metadata at /v2/models/stats/versions/{v}, as in
 * Triton). */
const svc_route svc_kserve_routes[] = {
    {"GET", "/v2/health/live", h_live, 0},
    {"GET", "/v2/health/ready", h_ready, 0},
    {"GET", "/v2", h_server, 0},
    {"GET", "/v2/models/stats", h_stats_all, 0},
    {"GET", "/v2/models/*", h_model, 0},
    {"GET", "/v2/models/*/ready", h_model_ready, 0},
    {"GET", "/v2/models/*/config", h_config, 0},
    {"GET", "/v2/models/*/stats", h_stats, 0},
    {"GET", "/v2/models/*/versions/*", h_model_version, 0},
    {"GET", "/v2/models/*/versions/*/ready", h_model_version_ready, 0},
    {"GET", "/v2/models/*/versions/*/config", h_config_version, 0},
    {"GET", "/v2/models/*/versions/*/stats", h_stats_version, 0},
    {"POST", "/v2/models/*/infer", h_infer, 0},
    {"POST", "/v2/models/*/versions/*/infer", h_infer_version, 0},
    {"POST", "/v2/repository/index", h_repository_index, 0},
    {"POST", "/v2/repository/models/*/load", h_load, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {"POST", "/v2/repository/models/*/unload", h_unload, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {NULL, NULL, NULL, 0},
};
