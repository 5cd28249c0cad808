/* text_boxes.c: the text_boxes element of the built-in "postprocess"
 * plugin: DB post-processing of a text detector's probability map
 * (algorithms.h, pp_text_boxes, the same as the "text" estimator family),
 * each box's corners mapped back to the original image through the
 * buffer's metadata/transform entries. Attaches metadata/object {"count",
 * "objects": [{"x", "y", "width", "height", "points": [{"x", "y"} x 4],
 * "score"}...]} in reading order: the bounds in whole pixels, the corners
 * (top-left first, clockwise) to 0.01. object_crop cuts them out. */
#include "algorithms.h"
#include "postprocess.h"

#include <stdlib.h>

const inferd_prop_spec pp_text_props[] = {
    INFERD_PROP_STRING("tensorName", "the model output to read; \"\" = the first tensor", ""),
    INFERD_PROP_DOUBLE("binThreshold", "a pixel of the map above this is text", 0.3, 0, 1),
    INFERD_PROP_DOUBLE("boxThreshold", "a box whose mean probability is under this is dropped",
                       0.6, 0, 1),
    INFERD_PROP_DOUBLE("unclipRatio", "each box grows by area x ratio / perimeter on every side",
                       1.5, 0, 100),
    INFERD_PROP_DOUBLE("minSize", "boxes with a shorter side under this (map pixels) are "
                       "dropped", 3, 0, 100000),
    INFERD_PROP_UINT("maxCandidates", "regions considered at most", 1000, 1, 1000000),
    INFERD_PROP_END,
};

typedef struct texts {
    char *tensor_name;
    double bin, box, unclip, min_size;
    size_t max_candidates;
} texts;

inferd_status pp_text_init(inferd_instance *self, const inferd_props *p, inferd_error *err)
{
    texts *s = calloc(1, sizeof *s);
    if (!s || !(s->tensor_name = pp_strdup(inferd_props_string(p, "tensorName")))) {
        free(s);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    s->bin = inferd_props_double(p, "binThreshold");
    s->box = inferd_props_double(p, "boxThreshold");
    s->unclip = inferd_props_double(p, "unclipRatio");
    s->min_size = inferd_props_double(p, "minSize");
    s->max_candidates = (size_t)inferd_props_int(p, "maxCandidates");
    inferd_instance_set_state(self, s);
    return INFERD_OK;
}

void pp_text_deinit(inferd_instance *self)
{
    texts *s = inferd_instance_state(self);
    if (s) {
        free(s->tensor_name);
        free(s);
    }
}

/* A corner from the model input's space to the original image's. */
static void chain_map(void *ctx, double *x, double *y)
{
    pp_chain_map(ctx, x, y);
}

inferd_status pp_text_process(inferd_instance *self, inferd_buffer *const *in, size_t n,
                              inferd_error *err)
{
    const texts *s = inferd_instance_state(self);
    inferd_buffer *buf;
    const inferd_tensor *t;
    size_t h, w;
    inferd_status st;
    if ((st = pp_input_tensor(in, n, s->tensor_name, &buf, &t, err)) ||
        (st = pp_plane_shape(t, &h, &w, err)))
        return st;
    pp_floats f;
    if ((st = pp_floats_get(t, &f, err)))
        return st;
    pp_quad *quads = NULL;
    size_t nq = 0;
    pp_chain chain = {0};
    inferd_value *meta = inferd_value_object(), *arr = inferd_value_array();
    if (!meta || !arr)
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    if (st == INFERD_OK)
        st = pp_text_boxes(f.v, h, w, s->bin, s->box, s->unclip, s->min_size, s->max_candidates,
                           &quads, &nq, err);
    if (st == INFERD_OK)
        st = pp_chain_load(buf, &chain, err);
    for (size_t i = 0; i < nq && st == INFERD_OK; i++) {
        inferd_value *o = NULL;
        if ((st = pp_quad_value(&quads[i], chain_map, &chain, &o, err)) == INFERD_OK)
            st = inferd_value_array_push(arr, o, err);
    }
    if (st == INFERD_OK && (st = pp_set_int(meta, "count", (int64_t)nq, err)) == INFERD_OK) {
        st = inferd_value_object_set(meta, "objects", arr, err);
        arr = NULL; /* taken */
    }
    inferd_value_free(arr);
    free(quads);
    pp_chain_free(&chain);
    pp_floats_free(&f);
    if (st != INFERD_OK) {
        inferd_value_free(meta);
        return st;
    }
    return pp_attach_and_push(self, buf, "metadata/object", meta, err);
}
