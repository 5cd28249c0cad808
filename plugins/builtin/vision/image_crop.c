/* image_crop.c: the image_crop element of the vision plugin.
 *
 * In and out: "image/rgb", "image/bgr", "image/gray". Out (port 0) is a
 * buffer derived from the input whose payload is the rectangle of the input
 * image, as a view of the input's pixels (no copy: the image keeps the
 * input's stride, and the derived buffer keeps its parent alive), with a
 * metadata/transform entry under the element's name (docs/metadata.md):
 *   {"type": "crop", "x", "y", "width", "height"}
 * the rectangle actually cropped; output (u, v) is input (u + x, v + y).
 *
 * The rectangle: properties `x`, `y`, `width`, `height` (width or height 0:
 * to the right or bottom edge). When the common property `dataSource` names
 * an element (not "auto") and the
 * frame has a metadata/attribute entry of that element, the rectangle comes
 * from that entry instead, per frame: an object with number keys "x", "y",
 * "width", "height" (a missing key means 0, as for the properties;
 * fractional values are widened to the pixels they touch). This is how a
 * request's detect area reaches the pipeline. A frame without such an entry
 * uses the properties.
 *
 * The rectangle is clamped to the image; one with nothing inside the image
 * is an error (INFERD_ERANGE) naming both rectangles.
 */
#include "vision.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const inferd_prop_spec vision_crop_props[] = {
    INFERD_PROP_INT("x", "left edge of the crop, pixels", 0, 0, 65535),
    INFERD_PROP_INT("y", "top edge of the crop, pixels", 0, 0, 65535),
    INFERD_PROP_INT("width", "width of the crop; 0 to the right edge", 0, 0, 65535),
    INFERD_PROP_INT("height", "height of the crop; 0 to the bottom edge", 0, 0, 65535),
    INFERD_PROP_END,
};
const inferd_port_spec vision_crop_in[] = {INFERD_PORT_STATIC(VISION_IMAGE_FORMATS),
                                           INFERD_PORT_END};
const inferd_port_spec vision_crop_out[] = {INFERD_PORT_STATIC(VISION_IMAGE_FORMATS),
                                            INFERD_PORT_END};

/* A rectangle as asked for: width or height 0 means "to the edge". */
typedef struct area {
    int64_t x, y, width, height;
} area;

typedef struct cropper {
    area props;
    char *area_source; /* NULL: use the properties */
} cropper;

inferd_status vision_crop_init(inferd_instance *self, const inferd_props *p, inferd_error *err)
{
    cropper *c = calloc(1, sizeof *c);
    if (!c)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    c->props.x = inferd_props_int(p, "x");
    c->props.y = inferd_props_int(p, "y");
    c->props.width = inferd_props_int(p, "width");
    c->props.height = inferd_props_int(p, "height");
    /* The common property dataSource names the element whose metadata gives
     * the area; "auto" (the default) means the properties. */
    const char *source = inferd_props_string(p, "dataSource");
    if (source[0] && strcmp(source, "auto") != 0 && !(c->area_source = vision_strdup(source))) {
        free(c);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    inferd_instance_set_state(self, c);
    return INFERD_OK;
}

void vision_crop_deinit(inferd_instance *self)
{
    cropper *c = inferd_instance_state(self);
    free(c->area_source);
    free(c);
}

/* Reads one key of an area entry; fractional edges widen (floor for the
 * origin, ceil for the far edge, done by the caller). */
static inferd_status area_number(const inferd_value *entry, const char *key, const char *source,
                                 double *out, inferd_error *err)
{
    const inferd_value *v = inferd_value_object_get(entry, key);
    *out = 0;
    if (!v)
        return INFERD_OK;
    if (inferd_value_get_double(v, out, NULL) != INFERD_OK)
        return inferd_error_set(err, INFERD_ETYPE,
                                "dataSource %s: metadata/attribute key '%s' must be a number, "
                                "got %s %s",
                                source, key,
                                vision_a(inferd_value_type_name(inferd_value_type_of(v))),
                                inferd_value_type_name(inferd_value_type_of(v)));
    if (!isfinite(*out) || fabs(*out) > 1e9)
        return inferd_error_set(err, INFERD_ERANGE,
                                "dataSource %s: metadata/attribute key '%s' is %g, outside "
                                "-1e9..1e9",
                                source, key, *out);
    return INFERD_OK;
}

static inferd_status area_from_meta(const inferd_value *entry, const char *source, area *a,
                                    inferd_error *err)
{
    if (!inferd_value_is(entry, INFERD_VALUE_OBJECT))
        return inferd_error_set(err, INFERD_ETYPE,
                                "dataSource %s: expected a metadata/attribute object {x, y, width, "
                                "height}, got %s %s",
                                source,
                                vision_a(inferd_value_type_name(inferd_value_type_of(entry))),
                                inferd_value_type_name(inferd_value_type_of(entry)));
    double x, y, w, h;
    inferd_status st;
    if ((st = area_number(entry, "x", source, &x, err)) ||
        (st = area_number(entry, "y", source, &y, err)) ||
        (st = area_number(entry, "width", source, &w, err)) ||
        (st = area_number(entry, "height", source, &h, err)))
        return st;
    if (w < 0 || h < 0)
        return inferd_error_set(err, INFERD_ERANGE,
                                "dataSource %s: crop area width %g, height %g: they must not be "
                                "negative",
                                source, w, h);
    a->x = (int64_t)floor(x);
    a->y = (int64_t)floor(y);
    /* The far edge covers every pixel the area touches. */
    a->width = w > 0 ? (int64_t)ceil(x + w) - a->x : 0;
    a->height = h > 0 ? (int64_t)ceil(y + h) - a->y : 0;
    return INFERD_OK;
}

static const char *area_text(const area *a, char *text, size_t size)
{
    char w[32], h[32];
    if (a->width)
        snprintf(w, sizeof w, "%lld", (long long)a->width);
    else
        snprintf(w, sizeof w, "to the edge");
    if (a->height)
        snprintf(h, sizeof h, "%lld", (long long)a->height);
    else
        snprintf(h, sizeof h, "to the edge");
    snprintf(text, size, "x %lld, y %lld, width %s, height %s", (long long)a->x, (long long)a->y,
             w, h);
    return text;
}

inferd_status vision_crop_process(inferd_instance *self, inferd_buffer *const *in_bufs, size_t n,
                                  inferd_error *err)
{
    const cropper *c = inferd_instance_state(self);
    inferd_buffer *in;
    const inferd_image *src;
    inferd_status st;
    if (!vision_begin(self, in_bufs, n, &in, &st, err))
        return st;
    if ((st = vision_input_image(in, &src, err)) != INFERD_OK)
        return st;

    area a = c->props;
    bool from_meta = false;
    inferd_meta m;
    if (c->area_source &&
        inferd_buffer_find_meta(in, c->area_source, "metadata/attribute", &m)) {
        if ((st = area_from_meta(m.value, c->area_source, &a, err)) != INFERD_OK)
            return st;
        from_meta = true;
    }

    /* Clamp [x0, x1) x [y0, y1) to the image. */
    const int64_t W = src->width, H = src->height;
    int64_t x0 = a.x, y0 = a.y;
    int64_t x1 = a.width ? a.x + a.width : W, y1 = a.height ? a.y + a.height : H;
    if (x0 < 0)
        x0 = 0;
    if (y0 < 0)
        y0 = 0;
    if (x1 > W)
        x1 = W;
    if (y1 > H)
        y1 = H;
    if (x1 <= x0 || y1 <= y0) {
        char text[160];
        return inferd_error_set(err, INFERD_ERANGE,
                                "crop area (%s; from %s%s) lies outside the image (x 0, y 0, "
                                "width %lld, height %lld)",
                                area_text(&a, text, sizeof text),
                                from_meta ? "dataSource " : "the properties",
                                from_meta ? c->area_source : "", (long long)W, (long long)H);
    }

    const size_t C = inferd_pixel_channels(src->format);
    inferd_image *out = NULL;
    st = inferd_image_wrap(src->format, (uint32_t)(x1 - x0), (uint32_t)(y1 - y0), src->stride,
                           src->data + (size_t)y0 * src->stride + (size_t)x0 * C, NULL, NULL, &out,
                           err);
    if (st != INFERD_OK)
        return st;
    inferd_value *t = inferd_value_object();
    if (!t) {
        inferd_image_free(out);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    if ((st = vision_set_string(t, "type", "crop", err)) ||
        (st = vision_set_int(t, "x", x0, err)) || (st = vision_set_int(t, "y", y0, err)) ||
        (st = vision_set_int(t, "width", x1 - x0, err)) ||
        (st = vision_set_int(t, "height", y1 - y0, err))) {
        inferd_value_free(t);
        inferd_image_free(out);
        return st;
    }
    return vision_push_image(self, in, out, "metadata/transform", t, err);
}
