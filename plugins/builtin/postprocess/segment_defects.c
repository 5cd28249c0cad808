/* segment_defects.c: the segment_defects element of the built-in
 * "postprocess" plugin. It reads a segmentation mask (e.g. scratch_segmenter's
 * [N,1,H,W] in [0,1]), takes the connected components of mask > threshold
 * (4- or 8-connected, found with a queue: no recursion), drops those smaller
 * than minArea pixels, and attaches metadata/object {"count", "objects":
 * [{"x0", "y0", "x1", "y1", "area", "score"}...]}, largest first: each box
 * mapped back to the original image through the buffer's metadata/transform
 * entries, its area in mask pixels, its score the mean mask value. With
 * maskOutput it also attaches the thresholded mask as a GRAY8 image (0/255)
 * under metadata/semanticseg. The thresholding and the components are
 * algorithms.c's (shared with the estimators). */
#include "algorithms.h"
#include "postprocess.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const connectivities[] = {"4", "8", NULL};

const inferd_prop_spec pp_segment_props[] = {
    INFERD_PROP_STRING("tensorName", "the model output to read; \"\" = the first tensor", ""),
    INFERD_PROP_DOUBLE("threshold", "a pixel is part of a defect when its value is above this",
                       0.5, -1e9, 1e9),
    INFERD_PROP_INT("minArea", "smaller components (in mask pixels) are dropped", 10, 1,
                    1000000000),
    INFERD_PROP_ENUM("connectivity", "4 (edges) or 8 (edges and corners) neighbours", "8",
                     connectivities),
    INFERD_PROP_BOOL("maskOutput", "also attach the thresholded mask (GRAY8, 0/255) as "
                     "metadata/semanticseg", false),
    INFERD_PROP_END,
};

typedef struct segment {
    char *tensor_name;
    float threshold; /* the largest float <= the property: v > it iff v > the property */
    int64_t min_area;
    bool eight;
    bool mask_output;
} segment;

inferd_status pp_segment_init(inferd_instance *self, const inferd_props *p, inferd_error *err)
{
    segment *s = calloc(1, sizeof *s);
    if (!s || !(s->tensor_name = pp_strdup(inferd_props_string(p, "tensorName")))) {
        free(s);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    s->threshold = pp_mask_threshold(inferd_props_double(p, "threshold"));
    s->min_area = inferd_props_int(p, "minArea");
    s->eight = strcmp(inferd_props_string(p, "connectivity"), "8") == 0;
    s->mask_output = inferd_props_bool(p, "maskOutput");
    inferd_instance_set_state(self, s);
    return INFERD_OK;
}

void pp_segment_deinit(inferd_instance *self)
{
    segment *s = inferd_instance_state(self);
    if (s) {
        free(s->tensor_name);
        free(s);
    }
}

static inferd_status object_value(const pp_component *c, const pp_chain *chain,
                                  inferd_value **out, inferd_error *err)
{
    /* Continuous coordinates: pixel x covers [x, x+1), so the box of pixels
     * x0..x1 is [x0, x1 + 1). Both corners go back through the transforms. */
    double ax = (double)c->x0, ay = (double)c->y0;
    double bx = (double)c->x1 + 1, by = (double)c->y1 + 1;
    pp_chain_map(chain, &ax, &ay);
    pp_chain_map(chain, &bx, &by);
    inferd_value *o = inferd_value_object();
    if (!o)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    inferd_status st;
    if ((st = pp_set_double(o, "x0", ax < bx ? ax : bx, err)) ||
        (st = pp_set_double(o, "y0", ay < by ? ay : by, err)) ||
        (st = pp_set_double(o, "x1", ax < bx ? bx : ax, err)) ||
        (st = pp_set_double(o, "y1", ay < by ? by : ay, err)) ||
        (st = pp_set_int(o, "area", (int64_t)c->area, err)) ||
        (st = pp_set_double(o, "score", pp_component_score(c), err))) {
        inferd_value_free(o);
        return st;
    }
    *out = o;
    return INFERD_OK;
}

static inferd_status objects_value(const pp_component *cs, size_t n, const pp_chain *chain,
                                   inferd_value **out, inferd_error *err)
{
    inferd_value *meta = inferd_value_object(), *arr = inferd_value_array();
    inferd_status st = INFERD_OK;
    if (!meta || !arr)
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && st == INFERD_OK; i++) {
        inferd_value *o = NULL;
        if ((st = object_value(&cs[i], chain, &o, err)) == INFERD_OK)
            st = inferd_value_array_push(arr, o, err);
    }
    if (st == INFERD_OK && (st = pp_set_int(meta, "count", (int64_t)n, err)) == INFERD_OK) {
        st = inferd_value_object_set(meta, "objects", arr, err);
        arr = NULL;
    }
    inferd_value_free(arr);
    if (st != INFERD_OK) {
        inferd_value_free(meta);
        return st;
    }
    *out = meta;
    return INFERD_OK;
}

inferd_status pp_segment_process(inferd_instance *self, inferd_buffer *const *in, size_t n,
                                 inferd_error *err)
{
    const segment *s = inferd_instance_state(self);
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
    uint8_t *state = malloc(h * w);
    pp_component *cs = NULL;
    size_t n_cs = 0;
    pp_chain chain = {0};
    inferd_value *meta = NULL;
    inferd_image *img = NULL;
    if (!state) {
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        goto done;
    }
    pp_threshold_plane(f.v, state, h * w, s->threshold);
    if (s->mask_output && (st = pp_mask_image(state, h, w, &img, err))) {
        inferd_error_prefix(err, "maskOutput");
        goto done;
    }
    if (!pp_label_components(f.v, state, h, w, s->eight, s->min_area, &cs, &n_cs)) {
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        goto done;
    }
    if ((st = pp_chain_load(buf, &chain, err)) ||
        (st = objects_value(cs, n_cs, &chain, &meta, err)))
        goto done;
    if (img) {
        st = inferd_buffer_add_meta_image(buf, inferd_instance_name(self),
                                          "metadata/semanticseg", img, err);
        img = NULL; /* taken, also on failure */
        if (st != INFERD_OK)
            goto done;
    }
    st = pp_attach_and_push(self, buf, "metadata/object", meta, err);
    meta = NULL; /* taken */
done:
    inferd_image_free(img);
    inferd_value_free(meta);
    pp_chain_free(&chain);
    free(cs);
    free(state);
    pp_floats_free(&f);
    return st;
}
