/* plugin/models.c: models opened through backend components.
 *
 * Owns the registry's list of loaded models and one instance per backend
 * component. A model is keyed by (backend, path, options as canonical JSON):
 * every element that opens the same one shares it (and its session), and it
 * is unloaded when the last user closes it. Models from memory are never
 * shared (no key to compare).
 */
#include "plugin/internal.h"

#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inferd/log.h"

#define LOG "model"

struct backend_entry {
    backend_entry *next;
    inferd_instance *inst;          /* owned */
};

struct model_entry {
    model_entry *next;
    inferd_registry *reg;
    backend_entry *backend;         /* borrowed from reg->backends */
    char *backend_name, *path, *options_json; /* owned; path NULL from memory */
    void *model;                    /* the backend's */
    unsigned refs;                  /* guarded by reg->models_lock */
    bool stale;                     /* its file may have changed: not shared again */
};

/* inferd_model is a model_entry seen from outside. */
struct inferd_model {
    model_entry e;
};

static const inferd_backend_ops *ops_of(const backend_entry *b)
{
    return inferd_instance_component(b->inst)->ops;
}

/* The backend instance for a component name, created on first use; caller
 * holds models_lock. */
static inferd_status backend_for(inferd_registry *reg, const char *name, backend_entry **out,
                                 inferd_error *err)
{
    for (backend_entry *b = reg->backends; b; b = b->next)
        if (strcmp(inferd_instance_component(b->inst)->name, name) == 0) {
            *out = b;
            return INFERD_OK;
        }
    const inferd_component *c = inferd_registry_find(reg, name, NULL);
    if (!c)
        return inferd_error_set(err, INFERD_ENOTFOUND,
                                "no backend named '%s' is registered (is its plugin active?)",
                                name);
    if (c->kind != INFERD_KIND_BACKEND)
        return inferd_error_set(err, INFERD_EINVAL, "'%s' is not a backend (its kind is %s)",
                                name, inferd_component_kind_name(c->kind));
    if (((const inferd_backend_ops *)c->ops)->size < sizeof(inferd_backend_ops))
        return inferd_error_set(err, INFERD_EUNSUPPORTED,
                                "backend %s was built for plugin ABI 1.0, which has no model "
                                "calls: rebuild it against ABI 1.1 or newer", name);
    backend_entry *b = calloc(1, sizeof *b);
    if (!b)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    /* A backend instance takes only its defaults: per-model options arrive
     * with each load. */
    inferd_status st = inferd_instance_create(reg, name, name, NULL, &b->inst, err);
    if (st != INFERD_OK) {
        free(b);
        return st;
    }
    b->next = reg->backends;
    reg->backends = b;
    *out = b;
    return INFERD_OK;
}

static inferd_status model_open(inferd_registry *reg, const char *backend, const char *path,
                                const void *data, size_t len, const inferd_value *options,
                                bool fresh, inferd_model **out, inferd_error *err);

inferd_status inferd_model_open(inferd_instance *self, const char *backend, const char *path,
                                const void *data, size_t len, const inferd_value *options,
                                inferd_model **out, inferd_error *err)
{
    if (!self || !backend || (!path && !data))
        return inferd_error_set(err, INFERD_EINVAL, "model_open needs the caller, a backend, "
                                                    "and a path or data");
    inferd_status st = model_open(self->reg, backend, path, data, len, options, false, out, err);
    if (st == INFERD_OK) {
        const char *why, *device = inferd_model_device(*out, &why);
        if (device)
            inferd__instance_set_device(self, device, why);
    }
    return st;
}

inferd_status inferd_registry_model_open(inferd_registry *reg, const char *backend,
                                         const char *path, const inferd_value *options,
                                         inferd_model **out, inferd_error *err)
{
    if (!reg || !backend || !path)
        return inferd_error_set(err, INFERD_EINVAL, "model_open needs a backend and a path");
    return model_open(reg, backend, path, NULL, 0, options, false, out, err);
}

void inferd_registry_models_refresh(inferd_registry *reg)
{
    pthread_mutex_lock(&reg->models_lock);
    for (model_entry *m = reg->models; m; m = m->next)
        m->stale = true;
    pthread_mutex_unlock(&reg->models_lock);
}

inferd_status inferd_registry_model_load(inferd_registry *reg, const char *backend,
                                         const char *path, const inferd_value *options,
                                         inferd_model **out, inferd_error *err)
{
    if (!reg || !backend || !path)
        return inferd_error_set(err, INFERD_EINVAL, "model_load needs a backend and a path");
    return model_open(reg, backend, path, NULL, 0, options, true, out, err);
}

const char *inferd_model_path(const inferd_model *model) { return model->e.path; }
const char *inferd_model_backend(const inferd_model *model) { return model->e.backend_name; }

/* The validated options as sorted JSON (every declared key present). */
static inferd_status canonical_options(const inferd_props *props, char **out, inferd_error *err)
{
    inferd_value *o = inferd_value_object();
    const inferd_prop_spec *specs = inferd_props_specs(props);
    inferd_status st = o ? INFERD_OK : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    for (size_t i = 0; st == INFERD_OK && specs && specs[i].name; i++)
        st = inferd_value_object_set(o, specs[i].name,
                                     inferd_value_copy(inferd_props_get(props, specs[i].name)),
                                     err);
    if (st == INFERD_OK)
        st = inferd_value_to_json(o, INFERD_JSON_SORT_KEYS, out, NULL, err);
    inferd_value_free(o);
    return st;
}

/* fresh: read the file again even when a session of it is open (a reload),
 * never sharing one that is. */
static inferd_status model_open(inferd_registry *reg, const char *backend, const char *path,
                                const void *data, size_t len, const inferd_value *options,
                                bool fresh, inferd_model **out, inferd_error *err)
{
    /* A bare file name that is not here names one of the default models. */
    char resolved[8192];
    if (path && !strchr(path, '/') && access(path, F_OK) != 0) {
        snprintf(resolved, sizeof resolved, "%s/%s", inferd_default_models_dir(), path);
        if (access(resolved, F_OK) == 0)
            path = resolved;
    }
    /* Validate first: the key is the options with every default filled in,
     * so {} and {"provider": "cpu"} share one loaded model. */
    pthread_mutex_lock(&reg->models_lock);
    backend_entry *b = NULL;
    inferd_status st = backend_for(reg, backend, &b, err);
    inferd_props *props = NULL;
    char *options_json = NULL;
    if (st == INFERD_OK) {
        char owner[256];
        snprintf(owner, sizeof owner, "backend %.64s, model %.160s", backend,
                 path ? path : "(memory)");
        static const inferd_prop_spec none[] = {INFERD_PROP_END};
        const inferd_prop_spec *specs = inferd_instance_component(b->inst)->props;
        st = inferd_props_validate(specs ? specs : none, owner, options, &props, err);
    }
    if (st == INFERD_OK)
        st = canonical_options(props, &options_json, err);
    for (model_entry *m = reg->models; st == INFERD_OK && path && !fresh && m; m = m->next) {
        if (m->path && !m->stale && strcmp(m->backend_name, backend) == 0 &&
            strcmp(m->path, path) == 0 &&
            strcmp(m->options_json, options_json) == 0) {
            m->refs++;
            pthread_mutex_unlock(&reg->models_lock);
            inferd_props_free(props);
            free(options_json);
            *out = (inferd_model *)m;
            return INFERD_OK;
        }
    }
    model_entry *m = NULL;
    if (st == INFERD_OK) {
        m = calloc(1, sizeof *m);
        if (!m || !(m->backend_name = strdup(backend)) || (path && !(m->path = strdup(path)))) {
            st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        } else {
            inferd_error_clear(err);
            st = ops_of(b)->load(b->inst, path, data, len, props, &m->model, err);
            if (st != INFERD_OK) {
                if (err && !err->message[0])
                    inferd_error_set(err, st, "no message");
                inferd_error_prefix(err, "backend %s: cannot load %s", backend,
                                    path ? path : "the model from memory");
            }
        }
    }
    inferd_props_free(props);
    if (st != INFERD_OK) {
        if (m) {
            free(m->backend_name);
            free(m->path);
            free(m);
        }
        free(options_json);
        pthread_mutex_unlock(&reg->models_lock);
        return st;
    }
    m->reg = reg;
    m->backend = b;
    m->options_json = options_json;
    m->refs = 1;
    m->next = reg->models;
    reg->models = m;
    pthread_mutex_unlock(&reg->models_lock);
    inferd_log_info(LOG, "loaded %s with backend %s", path ? path : "a model from memory", backend);
    *out = (inferd_model *)m;
    return INFERD_OK;
}

static void entry_unload(model_entry *m)
{
    ops_of(m->backend)->unload(m->backend->inst, m->model);
    free(m->backend_name);
    free(m->path);
    free(m->options_json);
    free(m);
}

void inferd_model_close(inferd_model *model)
{
    if (!model)
        return;
    model_entry *m = &model->e;
    inferd_registry *reg = m->reg;
    pthread_mutex_lock(&reg->models_lock);
    if (--m->refs > 0) {
        pthread_mutex_unlock(&reg->models_lock);
        return;
    }
    for (model_entry **pp = &reg->models; *pp; pp = &(*pp)->next)
        if (*pp == m) {
            *pp = m->next;
            break;
        }
    entry_unload(m);
    pthread_mutex_unlock(&reg->models_lock);
}

size_t inferd_model_io_count(const inferd_model *model, int output)
{
    const model_entry *m = &model->e;
    return ops_of(m->backend)->io_count(m->backend->inst, m->model, output);
}

inferd_status inferd_model_io(const inferd_model *model, int output, size_t i,
                              inferd_tensor_info *info, inferd_error *err)
{
    const model_entry *m = &model->e;
    size_t n = inferd_model_io_count(model, output);
    if (i >= n)
        return inferd_error_set(err, INFERD_ERANGE, "model %s has %zu %s, asked for #%zu",
                                m->path ? m->path : "(memory)", n, output ? "outputs" : "inputs", i);
    return ops_of(m->backend)->io_info(m->backend->inst, m->model, output, i, info, err);
}

const char *inferd_model_device(const inferd_model *model, const char **why)
{
    const model_entry *m = &model->e;
    const inferd_backend_ops *ops = ops_of(m->backend);
    if (why)
        *why = NULL;
    if (ops->size < offsetof(inferd_backend_ops, device) + sizeof ops->device || !ops->device)
        return NULL;
    const char *unused; /* the op always sets its why */
    return ops->device(m->backend->inst, m->model, why ? why : &unused);
}

inferd_status inferd_model_metadata(const inferd_model *model, inferd_value **out,
                                    inferd_error *err)
{
    const model_entry *m = &model->e;
    const inferd_backend_ops *ops = ops_of(m->backend);
    *out = NULL;
    if (ops->size >= offsetof(inferd_backend_ops, metadata) + sizeof ops->metadata &&
        ops->metadata) {
        inferd_status st = ops->metadata(m->backend->inst, m->model, out, err);
        if (st != INFERD_OK || *out)
            return st;
    }
    return (*out = inferd_value_object()) ? INFERD_OK
                                          : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
}

inferd_status inferd_model_run(inferd_model *model, const inferd_tensor *const *inputs,
                               size_t n_in, inferd_tensor **outputs, size_t n_out,
                               inferd_error *err)
{
    model_entry *m = &model->e;
    size_t want_in = inferd_model_io_count(model, 0), want_out = inferd_model_io_count(model, 1);
    if (n_in != want_in || n_out != want_out)
        return inferd_error_set(err, INFERD_EINVAL,
                                "model %s takes %zu input(s) and gives %zu output(s); called with "
                                "%zu and %zu", m->path ? m->path : "(memory)", want_in, want_out,
                                n_in, n_out);
    for (size_t i = 0; i < n_out; i++)
        outputs[i] = NULL;
    inferd_error_clear(err);
    inferd_status st = ops_of(m->backend)->run(m->backend->inst, m->model, inputs, n_in, outputs,
                                                n_out, err);
    if (st != INFERD_OK) {
        for (size_t i = 0; i < n_out; i++) {
            inferd_tensor_free(outputs[i]);
            outputs[i] = NULL;
        }
        if (err && !err->message[0])
            inferd_error_set(err, st, "no message");
        inferd_error_prefix(err, "backend %s: %s", m->backend_name,
                            m->path ? m->path : "(memory)");
        return st;
    }
    return INFERD_OK;
}

void inferd__models_shutdown(inferd_registry *reg)
{
    pthread_mutex_lock(&reg->models_lock);
    while (reg->models) {
        model_entry *m = reg->models;
        reg->models = m->next;
        inferd_log_warn(LOG, "model %s still open at shutdown (%u user(s)); unloading it",
                        m->path ? m->path : "(memory)", m->refs);
        entry_unload(m);
    }
    while (reg->backends) {
        backend_entry *b = reg->backends;
        reg->backends = b->next;
        inferd_instance_destroy(b->inst);
        free(b);
    }
    pthread_mutex_unlock(&reg->models_lock);
}

inferd_status inferd_contract_from_model(const inferd_model *model, const char *name,
                                         const inferd_value *given, inferd_input_contract *out,
                                         inferd_error *err)
{
    static const inferd_prop_spec contract_fields[] = {INFERD_CONTRACT_FIELDS, INFERD_PROP_END};
    static const inferd_prop_spec specs[] = {
        {.name = "inferd.input", .type = INFERD_PROP_TYPE_OBJECT,
         .description = "the model's input contract", .fields = contract_fields},
        INFERD_PROP_END,
    };
    inferd_value *md = NULL, *doc = NULL, *merged = NULL;
    inferd_props *mp = NULL;
    inferd_status st = inferd_model_metadata(model, &md, err);
    const char *text = inferd_value_string_or(inferd_value_object_get(md, "inferd.input"), NULL);
    char owner[4200];
    snprintf(owner, sizeof owner, "model %s: metadata", name);
    if (st == INFERD_OK && text) {
        /* Checked as a document {"inferd.input": {...}}, so that a fault is
         * named by the metadata key that holds it. */
        inferd_value *parsed = NULL;
        st = inferd_value_from_json(text, strlen(text), 0, &parsed, err);
        if (st == INFERD_OK && !(doc = inferd_value_object()))
            st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        if (st == INFERD_OK)
            st = inferd_value_object_set(doc, "inferd.input", parsed, err);
        else
            inferd_value_free(parsed);
        if (st == INFERD_OK)
            st = inferd_props_validate(specs, owner, doc, &mp, err);
        else
            inferd_error_prefix(err, "%s 'inferd.input'", owner);
        merged = st == INFERD_OK ? inferd_value_copy(inferd_props_get(mp, "inferd.input")) : NULL;
    } else if (st == INFERD_OK) {
        merged = inferd_value_object();
    }
    if (st == INFERD_OK && !merged)
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    const char *key;
    inferd_value *v;
    for (size_t k = 0; st == INFERD_OK && inferd_value_object_entry(given, k, &key, &v); k++)
        st = inferd_value_object_set(merged, key, inferd_value_copy(v), err);
    if (st == INFERD_OK)
        st = inferd_contract_from_value(merged, out, err);
    inferd_value_free(merged);
    inferd_props_free(mp);
    inferd_value_free(doc);
    inferd_value_free(md);
    return st;
}
