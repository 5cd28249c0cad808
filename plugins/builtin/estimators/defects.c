/* defects.c: defectEstimator, the built-in estimator that finds defects
 * (here the scratch_segmenter model's dark scratches).
 *
 * The model gives a mask per image; its connected regions above threshold
 * (the postprocess plugin's components: 8- or 4-connected, at least minArea
 * pixels) are the defects. Result per image: {"count": N, "defects": [{"x",
 * "y", "width", "height", "area", "score"}...]}, largest first: each box in
 * pixels of the whole image (the detect area's x, y added back), its area in
 * mask pixels, its score the mean mask value. With the request option
 * mask=true, also "mask": the thresholded mask of the processed area as a
 * grey PNG (0/255), a bytes value (base64 in JSON).
 */
#include "algorithms.h"
#include "estimators.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const inferd_prop_spec est_defect_options[] = {
    INFERD_PROP_BOOL("mask", "also return the binary mask of the processed area as a PNG",
                     false),
    INFERD_PROP_END,
};

static const char *const connectivities[] = {"4", "8", NULL};

const inferd_prop_spec est_defect_props[] = {
    EST_PROP_MODEL("scratch_segmenter.onnx"),
    EST_PROP_DEVICE,
    EST_PROP_INPUT,
    INFERD_PROP_DOUBLE("threshold", "a pixel is part of a defect when its mask value is above "
                       "this", 0.5, -1e9, 1e9),
    INFERD_PROP_INT("minArea", "smaller regions (in mask pixels) are not defects", 10, 1,
                    1000000000),
    INFERD_PROP_ENUM("connectivity", "4 (edges) or 8 (edges and corners) neighbours", "8",
                     connectivities),
    INFERD_PROP_END,
};

typedef struct defects {
    est_model m; /* first: est_deinit frees it */
    float threshold;
    int64_t min_area;
    bool eight;
} defects;

inferd_status est_defect_init(inferd_instance *self, const inferd_props *p, inferd_error *err)
{
    defects *s = calloc(1, sizeof *s);
    if (!s)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    s->threshold = pp_mask_threshold(inferd_props_double(p, "threshold"));
    s->min_area = inferd_props_int(p, "minArea");
    s->eight = strcmp(inferd_props_string(p, "connectivity"), "8") == 0;
    inferd_status st = est_model_open(self, p, &s->m, err);
    if (st != INFERD_OK) {
        free(s);
        return st;
    }
    inferd_instance_set_state(self, s);
    return INFERD_OK;
}

/* One defect; sx, sy: input row pixels per mask pixel (1 for a full-size
 * mask); the box is mapped back through the contract's resize. */
static inferd_status defect_value(const pp_component *c, const est_item *it, double sx,
                                  double sy, inferd_value *arr, inferd_error *err)
{
    int64_t x0, y0, x1, y1;
    est_map_box(it, c->x0 * sx, c->y0 * sy, (c->x1 + 1) * sx, (c->y1 + 1) * sy, &x0, &y0, &x1,
                &y1);
    inferd_value *o = inferd_value_object();
    inferd_status st;
    if (!o)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    if ((st = est_set_int(o, "x", x0, err)) || (st = est_set_int(o, "y", y0, err)) ||
        (st = est_set_int(o, "width", x1 - x0, err)) ||
        (st = est_set_int(o, "height", y1 - y0, err)) ||
        (st = est_set_int(o, "area", (int64_t)c->area, err)) ||
        (st = est_set_double(o, "score", pp_component_score(c), err))) {
        inferd_value_free(o);
        return st;
    }
    return inferd_value_array_push(arr, o, err);
}

/* The thresholded mask (state before labelling) as PNG bytes. */
static inferd_status mask_png(const uint8_t *state, size_t h, size_t w, inferd_value **out,
                              inferd_error *err)
{
    inferd_image *img = NULL;
    void *png = NULL;
    size_t len = 0;
    inferd_status st = pp_mask_image(state, h, w, &img, err);
    if (st == INFERD_OK)
        st = inferd_image_encode(img, INFERD_CODEC_PNG, 0, &png, &len, err);
    inferd_image_free(img);
    if (st != INFERD_OK) {
        inferd_error_prefix(err, "mask");
        return st;
    }
    if (!(*out = inferd_value_bytes_take(png, len))) /* frees png on failure */
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    return INFERD_OK;
}

static inferd_status defect_post(inferd_instance *self, const est_item *it,
                                 const est_output *out, inferd_value **result, inferd_error *err)
{
    const defects *s = inferd_instance_state(self);
    if (out->ndim < 2 || out->ndim > 3 || (out->ndim == 3 && out->dims[0] != 1) ||
        out->dims[out->ndim - 2] < 1 || out->dims[out->ndim - 1] < 1)
        return inferd_error_set(err, INFERD_EPLUGIN,
                                "model %s: expected a mask [N,1,H,W] per image", s->m.path);
    size_t h = (size_t)out->dims[out->ndim - 2], w = (size_t)out->dims[out->ndim - 1];
    uint8_t *state = malloc(h * w);
    pp_component *cs = NULL;
    size_t n = 0;
    inferd_value *res = inferd_value_object(), *arr = inferd_value_array(), *mask = NULL;
    inferd_status st = state && res && arr ? INFERD_OK
                                           : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    if (st == INFERD_OK) {
        pp_threshold_plane(out->v, state, h * w, s->threshold);
        if (inferd_props_bool(it->options, "mask"))
            st = mask_png(state, h, w, &mask, err);
    }
    if (st == INFERD_OK &&
        !pp_label_components(out->v, state, h, w, s->eight, s->min_area, &cs, &n))
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    double sx = (double)it->geo.width / (double)w, sy = (double)it->geo.height / (double)h;
    for (size_t i = 0; i < n && st == INFERD_OK; i++)
        st = defect_value(&cs[i], it, sx, sy, arr, err);
    if (st == INFERD_OK && !(st = est_set_int(res, "count", (int64_t)n, err))) {
        st = inferd_value_object_set(res, "defects", arr, err);
        arr = NULL; /* taken */
        if (st == INFERD_OK && mask) {
            st = inferd_value_object_set(res, "mask", mask, err);
            mask = NULL; /* taken */
        }
    }
    inferd_value_free(mask);
    inferd_value_free(arr);
    free(cs);
    free(state);
    if (st != INFERD_OK) {
        inferd_value_free(res);
        return st;
    }
    *result = res;
    return INFERD_OK;
}

inferd_status est_defect_batch(inferd_instance *self, inferd_estimate *const *items, size_t n,
                               inferd_error *err)
{
    const defects *s = inferd_instance_state(self);
    return est_run_batch(self, &s->m, items, n, defect_post, err);
}
