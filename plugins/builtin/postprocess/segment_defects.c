/* segment_defects.c: the segment_defects element of the built-in
 * "postprocess" plugin. It reads a segmentation mask (e.g. scratch_segmenter's
 * [N,1,H,W] in [0,1]), takes the connected components of mask > threshold
 * (4- or 8-connected, found with a queue: no recursion), drops those smaller
 * than minArea pixels, and attaches metadata/object {"count", "objects":
 * [{"x0", "y0", "x1", "y1", "area", "score"}...]}, largest first: each box
 * mapped back to the original image through the buffer's metadata/transform
 * entries, its area in mask pixels, its score the mean mask value. With
 * maskOutput it also attaches the thresholded mask as a GRAY8 image (0/255)
 * under metadata/semanticseg. */
#include "postprocess.h"

#include <math.h>
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
    double t = inferd_props_double(p, "threshold");
    s->threshold = (float)t;
    if ((double)s->threshold > t)
        s->threshold = nextafterf(s->threshold, -INFINITY);
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

typedef struct component {
    size_t first; /* its first pixel in raster order (a stable tie-break) */
    size_t area;
    double sum;
    size_t x0, y0, x1, y1; /* inclusive pixel bounds */
} component;

/* Pixel states: background, foreground not yet reached, foreground labelled.
 * FG is 255 so that the states before labelling are the mask image. */
enum { BG = 0, FG = 255, DONE = 1 };

/* state[i] = FG where v[i] > t (NaN is background). Restrict pointers and
 * blocks of a fixed 16 so that GCC's -O2 (the "very cheap" cost model, which
 * wants no scalar remainder) vectorises the inner loop. */
static void threshold_plane(const float *restrict v, uint8_t *restrict state, size_t n, float t)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (size_t k = 0; k < 16; k++)
            state[i + k] = v[i + k] > t ? FG : BG;
    for (; i < n; i++)
        state[i] = v[i] > t ? FG : BG;
}

typedef struct components {
    component *c;
    size_t n, cap;
} components;

/* Labels every component of state[] (FG pixels) with a breadth-first walk;
 * keeps those of at least min_area pixels. */
static bool label(const float *m, uint8_t *state, size_t h, size_t w, bool eight,
                  int64_t min_area, components *out)
{
    static const int d4[4][2] = {{-1, 0}, {0, -1}, {0, 1}, {1, 0}};
    static const int d8[8][2] = {{-1, -1}, {-1, 0}, {-1, 1}, {0, -1},
                                 {0, 1},   {1, -1}, {1, 0},  {1, 1}};
    const int(*dirs)[2] = eight ? d8 : d4;
    int ndirs = eight ? 8 : 4;
    size_t *queue = malloc(h * w * sizeof *queue);
    if (!queue)
        return false;
    bool ok = true;
    size_t hw = h * w;
    for (size_t start = 0; start < hw && ok; start++) {
        /* The next unlabelled foreground pixel (memchr: a vectorised scan). */
        const uint8_t *next = memchr(state + start, FG, hw - start);
        if (!next)
            break;
        start = (size_t)(next - state);
        component c = {.first = start, .x0 = SIZE_MAX, .y0 = SIZE_MAX};
        size_t head = 0, tail = 0;
        queue[tail++] = start;
        state[start] = DONE;
        while (head < tail) {
            size_t q = queue[head++], y = q / w, x = q % w;
            c.area++;
            c.sum += m[q];
            if (x < c.x0) c.x0 = x;
            if (x > c.x1) c.x1 = x;
            if (y < c.y0) c.y0 = y;
            if (y > c.y1) c.y1 = y;
            for (int k = 0; k < ndirs; k++) {
                /* Unsigned wrap-around makes -1 huge: one bound check each. */
                size_t yy = y + (size_t)(ptrdiff_t)dirs[k][0];
                size_t xx = x + (size_t)(ptrdiff_t)dirs[k][1];
                if (yy >= h || xx >= w)
                    continue;
                size_t r = yy * w + xx;
                if (state[r] == FG) {
                    state[r] = DONE;
                    queue[tail++] = r;
                }
            }
        }
        if ((int64_t)c.area < min_area)
            continue;
        if (out->n == out->cap) {
            size_t ncap = out->cap ? 2 * out->cap : 16;
            component *nc = realloc(out->c, ncap * sizeof *nc);
            if (!nc) {
                ok = false;
                break;
            }
            out->c = nc;
            out->cap = ncap;
        }
        out->c[out->n++] = c;
    }
    free(queue);
    return ok;
}

static double mean_score(const component *c) { return c->sum / (double)c->area; }

static int largest_first(const void *a, const void *b)
{
    const component *x = a, *y = b;
    if (x->area != y->area)
        return x->area > y->area ? -1 : 1;
    double sx = mean_score(x), sy = mean_score(y);
    if (sx != sy)
        return sx > sy ? -1 : 1;
    return x->first < y->first ? -1 : x->first > y->first;
}

static inferd_status object_value(const component *c, const pp_chain *chain, inferd_value **out,
                                  inferd_error *err)
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
        (st = pp_set_double(o, "score", mean_score(c), err))) {
        inferd_value_free(o);
        return st;
    }
    *out = o;
    return INFERD_OK;
}

static inferd_status objects_value(const components *cs, const pp_chain *chain,
                                   inferd_value **out, inferd_error *err)
{
    inferd_value *meta = inferd_value_object(), *arr = inferd_value_array();
    inferd_status st = INFERD_OK;
    if (!meta || !arr)
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    for (size_t i = 0; i < cs->n && st == INFERD_OK; i++) {
        inferd_value *o = NULL;
        if ((st = object_value(&cs->c[i], chain, &o, err)) == INFERD_OK)
            st = inferd_value_array_push(arr, o, err);
    }
    if (st == INFERD_OK && (st = pp_set_int(meta, "count", (int64_t)cs->n, err)) == INFERD_OK) {
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

/* The thresholded mask as a GRAY8 image: state[] before labelling (0/255). */
static inferd_status mask_image(const uint8_t *state, size_t h, size_t w, inferd_image **out,
                                inferd_error *err)
{
    if (h > INFERD_IMAGE_MAX_DIM || w > INFERD_IMAGE_MAX_DIM)
        return inferd_error_set(err, INFERD_ERANGE,
                                "maskOutput: a %zux%zu mask is larger than an image may be "
                                "(%u per side)", w, h, INFERD_IMAGE_MAX_DIM);
    inferd_image *img = NULL;
    inferd_status st = inferd_image_new(INFERD_PIXEL_GRAY8, (uint32_t)w, (uint32_t)h, &img, err);
    if (st != INFERD_OK)
        return st;
    for (size_t y = 0; y < h; y++)
        memcpy(img->data + y * img->stride, state + y * w, w);
    *out = img;
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
    components cs = {0};
    pp_chain chain = {0};
    inferd_value *meta = NULL;
    inferd_image *img = NULL;
    if (!state) {
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        goto done;
    }
    threshold_plane(f.v, state, h * w, s->threshold);
    if (s->mask_output && (st = mask_image(state, h, w, &img, err)))
        goto done;
    if (!label(f.v, state, h, w, s->eight, s->min_area, &cs)) {
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        goto done;
    }
    if (cs.n > 1)
        qsort(cs.c, cs.n, sizeof *cs.c, largest_first);
    if ((st = pp_chain_load(buf, &chain, err)) || (st = objects_value(&cs, &chain, &meta, err)))
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
    free(cs.c);
    free(state);
    pp_floats_free(&f);
    return st;
}
