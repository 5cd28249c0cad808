/* image_resize.c: the image_resize element of the vision plugin. Its
 * geometry and pixels are the core's input contract (inferd/contract.h,
 * uint8 channels-last in the image's own order), so that a pipeline resizes
 * exactly as an estimator does.
 *
 * In and out: "image/rgb", "image/bgr", "image/gray" (the pixel format is
 * kept). Out (port 0) is a buffer derived from the input whose payload is
 * the resized image, with a metadata/transform entry under the element's
 * name (docs/metadata.md):
 *   {"type": "resize", "scale_x", "scale_y", "pad_x", "pad_y",
 *    "src_width", "src_height"}
 * where output (u, v) is input ((u - pad_x) / scale_x, (v - pad_y) / scale_y)
 * (pad_x, pad_y are negative when the output is a crop).
 *
 * Size: `resizeWidth` x `resizeHeight`. A 0 dimension is not resized:
 *   - keepAspect false: 0 keeps the source size in that dimension;
 *   - keepAspect true: the image is scaled by one factor to fit inside the
 *     box, the rest filled with `padValue` (letterbox), the image centred or
 *     at the top-left (`padPosition`). A 0 dimension leaves that side free:
 *     the image is scaled to the other dimension and nothing is padded,
 *     e.g. resizeWidth 320 on 640x480 gives 320x240.
 *   - `limit` > 0 or `multiple` > 1: one factor so that the longer side is
 *     at most `limit` (never enlarged), then each side rounded to a multiple
 *     of `multiple` (DB-style text detectors); resizeWidth/Height unused.
 *   - `shortSide` > 0: the shorter side scaled to shortSide, then the centre
 *     resizeWidth x resizeHeight (ImageNet classifiers).
 * Both sizes 0 with neither limit, multiple nor shortSide is refused at
 * init. scale_x, scale_y are the factors actually used (inner size / source
 * size, which can differ from each other by the rounding of the sizes).
 *
 * Sampling uses half-pixel centres. When the output would equal the input
 * (same size, no pad), the output shares the input's pixels (the derived
 * buffer keeps its parent alive).
 */
#include "vision.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const interpolations[] = {"bilinear", "nearest", NULL};
static const char *const positions[] = {"center", "topleft", NULL};

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
                     "scale by one factor to fit inside resizeWidth x resizeHeight, padding the "
                     "rest with padValue",
                     false),
    INFERD_PROP_INT("padValue", "value of every channel of the padding (keepAspect)", 0, 0, 255),
    INFERD_PROP_ENUM("padPosition", "keepAspect: the image centred, or at the top-left (pad "
                     "right and bottom, as text recognisers take it)", "center", positions),
    INFERD_PROP_UINT("limit", "keep the aspect with the longer side at most this (0: none; "
                     "never enlarged)", 0, 0, 16384),
    INFERD_PROP_UINT("multiple", "with limit: each side rounded to a multiple of this", 1, 1,
                     4096),
    INFERD_PROP_UINT("shortSide", "scale the shorter side to this, then take the centre "
                     "resizeWidth x resizeHeight", 0, 0, 16384),
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
    inferd_input_contract base; /* uint8 channels-last; resize, sizes set per image */
} resizer;

inferd_status vision_resize_init(inferd_instance *self, const inferd_props *p, inferd_error *err)
{
    int64_t w = inferd_props_int(p, "resizeWidth"), h = inferd_props_int(p, "resizeHeight");
    inferd_input_contract c;
    memset(&c, 0, sizeof c);
    c.dtype = INFERD_DTYPE_UINT8;
    c.layout = INFERD_LAYOUT_NHWC;
    c.scale = 1;
    c.std[0] = c.std[1] = c.std[2] = 1;
    c.pad_value = (uint8_t)inferd_props_int(p, "padValue");
    c.pad_top_left = strcmp(inferd_props_string(p, "padPosition"), "topleft") == 0;
    c.nearest = strcmp(inferd_props_string(p, "interpolation"), "nearest") == 0;
    c.limit = (uint32_t)inferd_props_int(p, "limit");
    c.multiple = (uint32_t)inferd_props_int(p, "multiple");
    c.short_side = (uint32_t)inferd_props_int(p, "shortSide");
    if (c.short_side) {
        if (!w || !h || w > c.short_side || h > c.short_side)
            return inferd_error_set(err, INFERD_EINVAL,
                                    "shortSide %u takes the centre resizeWidth x resizeHeight: "
                                    "give both, at most shortSide (got %lldx%lld)",
                                    c.short_side, (long long)w, (long long)h);
        c.resize = INFERD_RESIZE_SHORTCROP;
    } else if (c.limit || c.multiple > 1) {
        if (c.limit && c.limit < c.multiple)
            return inferd_error_set(err, INFERD_EINVAL, "limit %u is below multiple %u",
                                    c.limit, c.multiple);
        c.resize = INFERD_RESIZE_LIMIT;
    } else if (w == 0 && h == 0) {
        return inferd_error_set(err, INFERD_EINVAL,
                                "resizeWidth and resizeHeight are both 0: set at least one (or "
                                "limit, multiple or shortSide)");
    }
    resizer *r = calloc(1, sizeof *r);
    if (!r)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    r->width = (uint32_t)w;
    r->height = (uint32_t)h;
    r->keep_aspect = inferd_props_bool(p, "keepAspect");
    r->base = c;
    inferd_instance_set_state(self, r);
    return INFERD_OK;
}

void vision_resize_deinit(inferd_instance *self)
{
    free(inferd_instance_state(self));
}

/* The contract for one sw x sh image: the base with the sizes of the
 * resizeWidth/resizeHeight/keepAspect modes resolved. */
static inferd_status contract_for(const resizer *r, const inferd_image *src,
                                  inferd_input_contract *c, inferd_error *err)
{
    *c = r->base;
    c->order = src->format;
    c->width = r->width;
    c->height = r->height;
    if (c->resize != INFERD_RESIZE_NONE) /* limit, shortcrop: set at init */
        return INFERD_OK;
    uint32_t sw = src->width, sh = src->height;
    if (r->keep_aspect && r->width && r->height) {
        c->resize = INFERD_RESIZE_LETTERBOX;
        return INFERD_OK;
    }
    c->resize = INFERD_RESIZE_STRETCH;
    if (!r->keep_aspect) {
        c->width = r->width ? r->width : sw;
        c->height = r->height ? r->height : sh;
        return INFERD_OK;
    }
    /* keepAspect with one side given: the other follows. */
    double s = r->width ? (double)r->width / sw : (double)r->height / sh;
    double other = floor((double)(r->width ? sh : sw) * s + 0.5);
    if (other > INFERD_IMAGE_MAX_DIM)
        return inferd_error_set(err, INFERD_ERANGE,
                                "keeping the aspect of a %ux%u image at %s %u gives a %s of "
                                "%.0f, above %u", sw, sh, r->width ? "width" : "height",
                                r->width ? r->width : r->height, r->width ? "height" : "width",
                                other, INFERD_IMAGE_MAX_DIM);
    if (r->width)
        c->height = other < 1 ? 1 : (uint32_t)other;
    else
        c->width = other < 1 ? 1 : (uint32_t)other;
    return INFERD_OK;
}

static inferd_value *transform_entry(const inferd_image *src, const inferd_geometry *g,
                                     inferd_error *err)
{
    inferd_value *t = inferd_value_object();
    if (!t) {
        inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        return NULL;
    }
    if (vision_set_string(t, "type", "resize", err) ||
        vision_set_double(t, "scale_x", g->scale_x, err) ||
        vision_set_double(t, "scale_y", g->scale_y, err) ||
        vision_set_int(t, "pad_x", g->off_x, err) || vision_set_int(t, "pad_y", g->off_y, err) ||
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
    inferd_status st;
    if (!vision_begin(self, in_bufs, n, &in, &st, err))
        return st;
    if ((st = vision_input_image(in, &src, err)) != INFERD_OK)
        return st;

    inferd_input_contract c;
    inferd_geometry g;
    if ((st = contract_for(r, src, &c, err)) != INFERD_OK ||
        (st = inferd_contract_plan(&c, 0, 0, src->width, src->height, &g, err)) != INFERD_OK)
        return st;
    inferd_value *transform = transform_entry(src, &g, err);
    if (!transform)
        return err ? err->code : INFERD_ENOMEM; /* transform_entry said why */

    inferd_image *out = NULL;
    if (g.width == src->width && g.height == src->height && g.inner_w == g.width &&
        g.inner_h == g.height) {
        /* Nothing to resample: share the input's pixels. */
        st = inferd_image_wrap(src->format, src->width, src->height, src->stride, src->data, NULL,
                               NULL, &out, err);
    } else {
        st = inferd_image_new(src->format, g.width, g.height, &out, err);
        if (st == INFERD_OK) /* a new image's rows are contiguous: the uint8 NHWC row */
            st = inferd_contract_fill(&c, src, &g, out->data, err);
    }
    if (st != INFERD_OK) {
        inferd_image_free(out);
        inferd_value_free(transform);
        return st;
    }
    return vision_push_image(self, in, out, "metadata/transform", transform, err);
}
