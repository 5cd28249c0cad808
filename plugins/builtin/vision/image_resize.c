/* image_resize.c: the image_resize element of the vision plugin; the
 * resampling is the core's (inferd_image_resample, src/core/resample.c).
 *
 * In and out: "image/rgb", "image/bgr", "image/gray" (the pixel format is
 * kept). Out (port 0) is a buffer derived from the input whose payload is
 * the resized image, with a metadata/transform entry under the element's
 * name (docs/metadata.md):
 *   {"type": "resize", "scale_x", "scale_y", "pad_x", "pad_y",
 *    "src_width", "src_height"}
 * where output (u, v) is input ((u - pad_x) / scale_x, (v - pad_y) / scale_y).
 *
 * Size: `resizeWidth` x `resizeHeight`. A 0 dimension is not resized:
 *   - keepAspect false: 0 keeps the source size in that dimension;
 *   - keepAspect true: the image is scaled by one factor to fit inside the
 *     box and centred in it, the rest filled with `padValue` (letterbox;
 *     pad_x, pad_y are the left and top pads). A 0 dimension leaves that
 *     side free: the image is scaled to the other dimension and nothing is
 *     padded, e.g. resizeWidth 320 on 640x480 gives 320x240.
 * Both 0 is refused at init. scale_x, scale_y are the factors actually used
 * (inner size / source size, which with keepAspect can differ from each
 * other by the rounding of the inner size).
 *
 * Sampling uses half-pixel centres: output pixel u samples the source at
 * (u + 0.5) / scale - 0.5, clamped to the edge. When the
 * output would equal the input (same size, no pad), the output shares the
 * input's pixels (the derived buffer keeps its parent alive).
 */
#include "vision.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const interpolations[] = {"bilinear", "nearest", NULL};

const inferd_prop_spec vision_resize_props[] = {
    INFERD_PROP_INT("resizeWidth",
                    "output width; 0 keeps the source width (with keepAspect: follows the "
                    "aspect ratio)",
                    0, 0, 16384),
    INFERD_PROP_INT("resizeHeight",
                    "output height; 0 keeps the source height (with keepAspect: follows the "
                    "aspect ratio)",
                    0, 0, 16384),
    INFERD_PROP_BOOL("keepAspect",
                     "scale by one factor to fit inside resizeWidth x resizeHeight, centred, "
                     "padding the rest with padValue",
                     false),
    INFERD_PROP_INT("padValue", "value of every channel of the padding (keepAspect)", 0, 0, 255),
    INFERD_PROP_ENUM("interpolation", "bilinear (half-pixel centres) or nearest", "bilinear",
                     interpolations),
    INFERD_PROP_END,
};
const inferd_port_spec vision_resize_in[] = {INFERD_PORT_STATIC(VISION_IMAGE_FORMATS),
                                             INFERD_PORT_END};
const inferd_port_spec vision_resize_out[] = {INFERD_PORT_STATIC(VISION_IMAGE_FORMATS),
                                              INFERD_PORT_END};

typedef struct resizer {
    uint32_t width, height; /* 0: see the file comment */
    bool keep_aspect;
    uint8_t pad;
    bool nearest;
} resizer;

inferd_status vision_resize_init(inferd_instance *self, const inferd_props *p, inferd_error *err)
{
    int64_t w = inferd_props_int(p, "resizeWidth"), h = inferd_props_int(p, "resizeHeight");
    if (w == 0 && h == 0)
        return inferd_error_set(err, INFERD_EINVAL,
                                "resizeWidth and resizeHeight are both 0: set at least one");
    resizer *r = calloc(1, sizeof *r);
    if (!r)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    r->width = (uint32_t)w;
    r->height = (uint32_t)h;
    r->keep_aspect = inferd_props_bool(p, "keepAspect");
    r->pad = (uint8_t)inferd_props_int(p, "padValue");
    r->nearest = strcmp(inferd_props_string(p, "interpolation"), "nearest") == 0;
    inferd_instance_set_state(self, r);
    return INFERD_OK;
}

void vision_resize_deinit(inferd_instance *self)
{
    free(inferd_instance_state(self));
}

/* ---- geometry -------------------------------------------------------------- */

typedef struct geometry {
    uint32_t out_w, out_h;     /* the output image */
    uint32_t inner_w, inner_h; /* the resampled image inside it */
    uint32_t pad_x, pad_y;     /* where the inner image starts */
} geometry;

static uint32_t scaled(uint32_t n, double s)
{
    double v = floor((double)n * s + 0.5);
    return v < 1 ? 1 : (uint32_t)v;
}

static inferd_status plan(const resizer *r, uint32_t sw, uint32_t sh, geometry *g,
                          inferd_error *err)
{
    memset(g, 0, sizeof *g);
    if (!r->keep_aspect) {
        g->out_w = g->inner_w = r->width ? r->width : sw;
        g->out_h = g->inner_h = r->height ? r->height : sh;
        return INFERD_OK;
    }
    double s;
    if (r->width && r->height) {
        double sx = (double)r->width / sw, sy = (double)r->height / sh;
        s = sx < sy ? sx : sy;
        g->inner_w = sx <= sy ? r->width : scaled(sw, s);
        g->inner_h = sy <= sx ? r->height : scaled(sh, s);
        if (g->inner_w > r->width)
            g->inner_w = r->width;
        if (g->inner_h > r->height)
            g->inner_h = r->height;
        g->out_w = r->width;
        g->out_h = r->height;
        g->pad_x = (r->width - g->inner_w) / 2;
        g->pad_y = (r->height - g->inner_h) / 2;
    } else if (r->width) {
        s = (double)r->width / sw;
        g->out_w = g->inner_w = r->width;
        double h = floor((double)sh * s + 0.5);
        if (h > INFERD_IMAGE_MAX_DIM)
            return inferd_error_set(err, INFERD_ERANGE,
                                    "keeping the aspect of a %ux%u image at width %u gives a "
                                    "height of %.0f, above %u",
                                    sw, sh, r->width, h, INFERD_IMAGE_MAX_DIM);
        g->out_h = g->inner_h = scaled(sh, s);
    } else {
        s = (double)r->height / sh;
        g->out_h = g->inner_h = r->height;
        double w = floor((double)sw * s + 0.5);
        if (w > INFERD_IMAGE_MAX_DIM)
            return inferd_error_set(err, INFERD_ERANGE,
                                    "keeping the aspect of a %ux%u image at height %u gives a "
                                    "width of %.0f, above %u",
                                    sw, sh, r->height, w, INFERD_IMAGE_MAX_DIM);
        g->out_w = g->inner_w = scaled(sw, s);
    }
    return INFERD_OK;
}

/* ---- the element ----------------------------------------------------------- */

static inferd_value *transform_entry(const inferd_image *src, const geometry *g,
                                     inferd_error *err)
{
    inferd_value *t = inferd_value_object();
    if (!t) {
        inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        return NULL;
    }
    if (vision_set_string(t, "type", "resize", err) ||
        vision_set_double(t, "scale_x", (double)g->inner_w / src->width, err) ||
        vision_set_double(t, "scale_y", (double)g->inner_h / src->height, err) ||
        vision_set_int(t, "pad_x", g->pad_x, err) || vision_set_int(t, "pad_y", g->pad_y, err) ||
        vision_set_int(t, "src_width", src->width, err) ||
        vision_set_int(t, "src_height", src->height, err)) {
        inferd_value_free(t);
        return NULL;
    }
    return t;
}

inferd_status vision_resize_process(inferd_instance *self, inferd_buffer *const *in_bufs,
                                    size_t n, inferd_error *err)
{
    const resizer *r = inferd_instance_state(self);
    inferd_buffer *in;
    const inferd_image *src;
    inferd_status st = vision_one_input(in_bufs, n, &in, err);
    if (st != INFERD_OK)
        return st;
    if (vision_forward_error(self, in, &st, err))
        return st;
    if ((st = vision_input_image(in, &src, err)) != INFERD_OK)
        return st;

    geometry g;
    if ((st = plan(r, src->width, src->height, &g, err)) != INFERD_OK)
        return st;
    inferd_value *transform = transform_entry(src, &g, err);
    if (!transform)
        return err ? err->code : INFERD_ENOMEM; /* transform_entry said why */

    inferd_image *out = NULL;
    if (g.out_w == src->width && g.out_h == src->height && g.inner_w == g.out_w &&
        g.inner_h == g.out_h) {
        /* Nothing to resample: share the input's pixels. */
        st = inferd_image_wrap(src->format, src->width, src->height, src->stride, src->data, NULL,
                               NULL, &out, err);
    } else {
        st = inferd_image_new(src->format, g.out_w, g.out_h, &out, err);
        if (st == INFERD_OK) {
            const size_t C = inferd_pixel_channels(src->format);
            if ((g.inner_w != g.out_w || g.inner_h != g.out_h) && r->pad != 0)
                memset(out->data, r->pad, out->stride * g.out_h);
            inferd_image inner = *out; /* the part of out the image goes to */
            inner.data = out->data + (size_t)g.pad_y * out->stride + (size_t)g.pad_x * C;
            inner.width = g.inner_w;
            inner.height = g.inner_h;
            st = inferd_image_resample(src, &inner, r->nearest, err);
        }
    }
    if (st != INFERD_OK) {
        inferd_image_free(out);
        inferd_value_free(transform);
        return st;
    }
    return vision_push_image(self, in, out, "metadata/transform", transform, err);
}
