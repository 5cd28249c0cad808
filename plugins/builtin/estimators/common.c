/* common.c: what the three built-in estimators share: the model on its
 * device, finding a file beside it, and the batch run (prepare each area
 * under the input contract, group by size, one model run per group,
 * post-process, map back, complete every item once).
 *
 * Ownership in est_run_batch: the item table and each group's input tensor
 * and output tensors are owned here and freed before it returns; each
 * result is handed to inferd_estimate_done, which takes it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr */
#endif
#include "estimators.h"

#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const est_device_classes[] = {"cpu", "gpu", NULL};
const inferd_prop_spec est_input_fields[] = {INFERD_CONTRACT_FIELDS, INFERD_PROP_END};

/* ---- the model ------------------------------------------------------------------------ */

void est_model_close(est_model *m)
{
    inferd_model_close(m->model);
    free(m->path);
    m->model = NULL;
    m->path = NULL;
}

void est_deinit(inferd_instance *self)
{
    est_model *m = inferd_instance_state(self);
    if (m) {
        est_model_close(m);
        free(m);
    }
}

/* The model must take one image that the contract fits and give float32
 * outputs; a refusal names the model, the input, its shape and what is
 * needed. */
static inferd_status check_model(est_model *m, const inferd_props *p, inferd_error *err)
{
    inferd_tensor_info *in = &m->input, out;
    inferd_status st;
    size_t n_in = inferd_model_io_count(m->model, 0), n_out = inferd_model_io_count(m->model, 1);
    if (n_in != 1 || n_out < 1)
        return inferd_error_set(err, INFERD_EUNSUPPORTED,
                                "model %s has %zu input(s) and %zu output(s): an estimator needs "
                                "one input (the image) and at least one output", m->path, n_in,
                                n_out);
    /* The model's metadata contract, the config's input keys laid over it. */
    if ((st = inferd_model_io(m->model, 0, 0, in, err)) ||
        (st = inferd_contract_from_model(m->model, m->path, inferd_props_get(p, "input"),
                                         &m->contract, err)))
        return st;
    if ((st = inferd_contract_fit(&m->contract, m->path, in->dtype, in->ndim, in->shape, err))) {
        inferd_error_prefix(err, "input '%s'", in->name);
        return st;
    }
    if (in->shape[0] == 0)
        return inferd_error_set(err, INFERD_EUNSUPPORTED, "model %s: input '%s' has a batch of 0",
                                m->path, in->name);
    for (size_t j = 0; j < n_out; j++) {
        if ((st = inferd_model_io(m->model, 1, j, &out, err)))
            return st;
        if (out.dtype != INFERD_DTYPE_FLOAT32)
            return inferd_error_set(err, INFERD_EUNSUPPORTED,
                                    "model %s: output '%s' must be float32, it is %s", m->path,
                                    out.name, inferd_dtype_name(out.dtype));
    }
    m->batch = in->shape[0] > 0 ? (size_t)in->shape[0] : 0;
    return INFERD_OK;
}

/* The backend's options: backendOptions, plus the provider of deviceClass. */
static inferd_status backend_options(const inferd_props *p, inferd_value **out,
                                     inferd_error *err)
{
    bool gpu = strcmp(inferd_props_string(p, "deviceClass"), "gpu") == 0;
    const inferd_value *given = inferd_props_get(p, "backendOptions");
    if (inferd_value_object_get(given, "provider") || inferd_value_object_get(given, "device_id"))
        return inferd_error_set(err, INFERD_EINVAL,
                                "property 'backendOptions': set the device with deviceClass and "
                                "gpuDeviceId, not with 'provider' or 'device_id'");
    inferd_value *o = given ? inferd_value_copy(given) : inferd_value_object();
    inferd_status st = o ? inferd_value_object_set(o, "provider",
                                                   inferd_value_string(gpu ? "cuda" : "cpu"), err)
                         : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    if (st == INFERD_OK && gpu)
        st = inferd_value_object_set(o, "device_id",
                                     inferd_value_int(inferd_props_int(p, "gpuDeviceId")), err);
    if (st != INFERD_OK) {
        inferd_value_free(o);
        return st;
    }
    *out = o;
    return INFERD_OK;
}

inferd_status est_model_open(inferd_instance *self, const inferd_props *p, est_model *m,
                             inferd_error *err)
{
    const char *path = inferd_props_string(p, "modelPath");
    inferd_value *options = NULL;
    inferd_status st = (m->path = strdup(path))
                           ? backend_options(p, &options, err)
                           : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    if (st == INFERD_OK)
        st = inferd_model_open(self, "onnxruntime", path, NULL, 0, options, &m->model, err);
    inferd_value_free(options);
    if (st == INFERD_OK)
        st = check_model(m, p, err);
    if (st != INFERD_OK) {
        est_model_close(m);
        return st;
    }
    /* The host's batcher never groups more than the model takes. */
    inferd_estimator_limit_batch(self, m->batch);
    return INFERD_OK;
}

/* <libdir>/../share/inferd/models, from where this plugin is:
 * <libdir>/inferd/builtin/estimators.so (the layout of the build tree and
 * of an installation, where the host finds the default models too). */
static void models_dir(char *buf, size_t size)
{
    Dl_info info;
    const char *so = dladdr((void *)models_dir, &info) && info.dli_fname ? info.dli_fname : "";
    const char *slash = strrchr(so, '/');
    snprintf(buf, size, "%.*s/../../../share/inferd/models", slash ? (int)(slash - so) : 1,
             slash ? so : ".");
}

const char *est_resolve_beside_model(const char *name, const char *model_path, char *buf,
                                     size_t size)
{
    const char *slash = strrchr(model_path, '/');
    if (strchr(name, '/') || access(name, F_OK) == 0) {
        snprintf(buf, size, "%s", name);
    } else if (slash) {
        snprintf(buf, size, "%.*s/%s", (int)(slash - model_path), model_path, name);
    } else {
        char dir[4096];
        models_dir(dir, sizeof dir);
        snprintf(buf, size, "%s/%s", dir, name);
    }
    return buf;
}

/* ---- the batch -------------------------------------------------------------------------- */

static void fail_item(inferd_instance *self, est_item *it, inferd_error *e)
{
    inferd_error_prefix(e, "estimator %s", inferd_instance_name(self));
    inferd_estimate_done(it->item, NULL, e);
    it->item = NULL;
}

/* The model runs g items (g <= the model's fixed batch, if any) of the same
 * prepared size as one batch, padded with zero rows to a fixed batch; every
 * item is completed. */
static void run_group(inferd_instance *self, const est_model *m, est_item **group, size_t g,
                      est_post_fn post)
{
    const inferd_input_contract *c = &m->contract;
    size_t w = group[0]->geo.width, h = group[0]->geo.height;
    size_t C = c->order == INFERD_PIXEL_GRAY8 ? 1 : 3;
    size_t n = m->batch ? m->batch : g; /* rows of the input tensor */
    size_t n_out = inferd_model_io_count(m->model, 1);
    size_t row_bytes = C * h * w * inferd_dtype_size(c->dtype);
    int64_t shape[4] = {(int64_t)n, (int64_t)C, (int64_t)h, (int64_t)w};
    if (c->layout == INFERD_LAYOUT_NHWC) {
        shape[1] = (int64_t)h;
        shape[2] = (int64_t)w;
        shape[3] = (int64_t)C;
    }
    inferd_tensor *in = NULL;
    inferd_tensor **out = calloc(n_out, sizeof *out);
    inferd_error e = {0};
    inferd_status st = out ? inferd_tensor_new(c->dtype, 4, shape, &in, &e)
                           : inferd_error_set(&e, INFERD_ENOMEM, "out of memory");
    for (size_t k = 0; k < g && st == INFERD_OK; k++) /* rows g..n stay zero: the padding */
        st = inferd_contract_fill(c, group[k]->image, &group[k]->geo,
                                  (uint8_t *)in->data + k * row_bytes, &e);
    if (st == INFERD_OK) {
        st = inferd_model_run(m->model, (const inferd_tensor *const *)&in, 1, out, n_out, &e);
        /* The estimator built this input to the model's declared shape: a run
         * that fails is the server's failure, never the request's. */
        if (st != INFERD_OK && st != INFERD_ENOMEM) {
            inferd_error_prefix(&e, "model %s", m->path);
            st = e.code = INFERD_EBACKEND;
        }
    }
    /* Every output float32 with the batch first; each item gets its rows. */
    est_output *slices = st == INFERD_OK ? calloc(n_out, sizeof *slices) : NULL;
    if (st == INFERD_OK && !slices)
        st = inferd_error_set(&e, INFERD_ENOMEM, "out of memory");
    for (size_t j = 0; st == INFERD_OK && j < n_out; j++) {
        const inferd_tensor *o = out[j];
        if (o->dtype != INFERD_DTYPE_FLOAT32 || o->ndim < 1 || o->shape[0] != (int64_t)n) {
            char s[160];
            inferd_shape_format(o->ndim, o->shape, s, sizeof s);
            st = inferd_error_set(&e, INFERD_EPLUGIN,
                                  "model %s gave %s %s as output %zu for a batch of %zu images: "
                                  "expected float32 with the batch first", m->path,
                                  inferd_dtype_name(o->dtype), s, j, n);
        }
    }
    for (size_t k = 0; k < g; k++) {
        inferd_error ek = e;
        inferd_value *result = NULL;
        if (st == INFERD_OK) {
            for (size_t j = 0; j < n_out; j++) {
                size_t per = inferd_tensor_count(out[j]) / n;
                slices[j] = (est_output){(const float *)out[j]->data + k * per, per,
                                         out[j]->ndim - 1, out[j]->shape + 1, n_out};
            }
            if (post(self, group[k], slices, &result, &ek) == INFERD_OK) {
                inferd_estimate_done(group[k]->item, result, NULL);
                group[k]->item = NULL;
                continue;
            }
        }
        fail_item(self, group[k], &ek);
    }
    free(slices);
    for (size_t j = 0; out && j < n_out; j++)
        inferd_tensor_free(out[j]);
    free(out);
    inferd_tensor_free(in);
}

inferd_status est_run_batch(inferd_instance *self, const est_model *m,
                            inferd_estimate *const *items, size_t n, est_post_fn post,
                            inferd_error *err)
{
    est_item *its = calloc(n, sizeof *its);
    est_item **group = calloc(n, sizeof *group);
    if (!its || !group) {
        free(its);
        free(group);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory"); /* the host fails them */
    }
    for (size_t k = 0; k < n; k++) {
        est_item *it = &its[k];
        it->item = items[k];
        it->image = inferd_estimate_image(items[k]);
        it->options = inferd_estimate_options(items[k]);
        inferd_error e = {0};
        if (!it->image || it->image->format != INFERD_PIXEL_RGB8) {
            inferd_error_set(&e, INFERD_EINTERNAL, "the host gave an item without an RGB8 image");
            fail_item(self, it, &e);
            continue;
        }
        if (!inferd_estimate_area(items[k], &it->area))
            it->area = (inferd_rect){0, 0, it->image->width, it->image->height};
        if (inferd_contract_plan(&m->contract, it->area.x, it->area.y, (uint32_t)it->area.width,
                                 (uint32_t)it->area.height, &it->geo, &e) != INFERD_OK) {
            e.code = INFERD_EINVAL; /* the image's size: the request's */
            fail_item(self, it, &e);
        }
    }
    /* Groups of equal prepared size, in the order of their first item, run
     * in chunks the model's batch takes (the host never hands more than that
     * in all, so this only splits when sizes differ). */
    for (size_t k = 0; k < n; k++) {
        if (!its[k].item)
            continue;
        size_t g = 0;
        for (size_t j = k; j < n; j++)
            if (its[j].item && its[j].geo.width == its[k].geo.width &&
                its[j].geo.height == its[k].geo.height)
                group[g++] = &its[j];
        size_t per_run = m->batch ? m->batch : g;
        for (size_t first = 0; first < g; first += per_run)
            run_group(self, m, group + first, g - first < per_run ? g - first : per_run, post);
    }
    free(group);
    free(its);
    return INFERD_OK;
}

/* ---- mapping back ------------------------------------------------------------------------ */

static int64_t clamp(double v, int64_t lo, int64_t hi)
{
    return v < (double)lo ? lo : v > (double)hi ? hi : (int64_t)v;
}

void est_map_point(const est_item *it, double u, double v, int64_t *x, int64_t *y)
{
    double fx, fy;
    inferd_geometry_to_image(&it->geo, u, v, &fx, &fy);
    *x = clamp(floor(fx), it->area.x, it->area.x + it->area.width - 1);
    *y = clamp(floor(fy), it->area.y, it->area.y + it->area.height - 1);
}

void est_map_box(const est_item *it, double u0, double v0, double u1, double v1, int64_t *x0,
                 int64_t *y0, int64_t *x1, int64_t *y1)
{
    double a, b, c, d;
    inferd_geometry_to_image(&it->geo, u0, v0, &a, &b);
    inferd_geometry_to_image(&it->geo, u1, v1, &c, &d);
    *x0 = clamp(floor(a), it->area.x, it->area.x + it->area.width);
    *y0 = clamp(floor(b), it->area.y, it->area.y + it->area.height);
    *x1 = clamp(ceil(c), it->area.x, it->area.x + it->area.width);
    *y1 = clamp(ceil(d), it->area.y, it->area.y + it->area.height);
}

/* ---- values ------------------------------------------------------------------------------ */

inferd_status est_set_int(inferd_value *obj, const char *key, int64_t i, inferd_error *err)
{
    return inferd_value_object_set(obj, key, inferd_value_int(i), err);
}

inferd_status est_set_double(inferd_value *obj, const char *key, double d, inferd_error *err)
{
    return inferd_value_object_set(obj, key, inferd_value_double(d), err);
}

inferd_status est_counted(int64_t count, const char *key, inferd_value *arr,
                          inferd_value **result, inferd_error *err)
{
    inferd_value *res = inferd_value_object();
    inferd_status st = res && arr ? INFERD_OK
                                  : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    if (st == INFERD_OK && !(st = est_set_int(res, "count", count, err))) {
        st = inferd_value_object_set(res, key, arr, err);
        arr = NULL; /* taken */
    }
    inferd_value_free(arr);
    if (st != INFERD_OK) {
        inferd_value_free(res);
        return st;
    }
    *result = res;
    return INFERD_OK;
}

inferd_status est_model_fault(const est_model *m, inferd_status st, inferd_error *err)
{
    if (st == INFERD_OK || st == INFERD_ENOMEM)
        return st;
    inferd_error_prefix(err, "model %s", m->path);
    if (err)
        err->code = INFERD_EPLUGIN;
    return INFERD_EPLUGIN;
}
