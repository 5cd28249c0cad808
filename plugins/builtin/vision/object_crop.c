/* object_crop.c: the object_crop element of the vision plugin: the
 * per-object fan-out. For each object of a frame's metadata/object list
 * (text_boxes', segment_defects', a detector's: any array of objects with
 * x, y, width, height in the original image's pixels) it pushes one buffer
 * whose payload is that part of the frame's original image (a view: the
 * derived buffer keeps the frame alive), with a metadata/fanout entry under
 * the element's name: {"index": i, "count": n, "object": {...}}. A frame
 * with no object pushes one buffer with no payload and count 0, so that
 * object_join still answers for the frame.
 *
 * The list is the dataSource element's metadata/object entry, or (dataSource
 * auto) the newest metadata/object entry of the buffer; the array is the
 * entry itself or its first member that is an array ("objects", "texts",
 * "defects"). The image is the oldest image payload among the buffer and
 * its ancestors: the decoded frame, whose pixels the coordinates are in.
 * `padding` widens every box on each side (clamped to the image).
 */
#include "vision.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const inferd_prop_spec vision_object_crop_props[] = {
    INFERD_PROP_UINT("padding", "pixels added around every box on each side", 0, 0, 4096),
    INFERD_PROP_END,
};
const inferd_port_spec vision_object_crop_in[] = {INFERD_PORT_STATIC("metadata/object"),
                                                  INFERD_PORT_END};
const inferd_port_spec vision_object_crop_out[] = {INFERD_PORT_STATIC(VISION_IMAGE_FORMATS),
                                                   INFERD_PORT_END};

typedef struct fanout {
    char *source; /* NULL: the newest metadata/object */
    int64_t padding;
} fanout;

inferd_status vision_object_crop_init(inferd_instance *self, const inferd_props *p,
                                      inferd_error *err)
{
    fanout *f = calloc(1, sizeof *f);
    if (!f || !vision_data_source(p, &f->source)) {
        free(f);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    f->padding = inferd_props_int(p, "padding");
    inferd_instance_set_state(self, f);
    return INFERD_OK;
}

void vision_object_crop_deinit(inferd_instance *self)
{
    fanout *f = inferd_instance_state(self);
    free(f->source);
    free(f);
}

/* The array of objects of an entry's value. */
static const inferd_value *object_array(const inferd_value *v)
{
    if (inferd_value_is(v, INFERD_VALUE_ARRAY))
        return v;
    const char *key;
    inferd_value *item;
    for (size_t k = 0; inferd_value_object_entry(v, k, &key, &item); k++)
        if (inferd_value_is(item, INFERD_VALUE_ARRAY))
            return item;
    return NULL;
}

static const inferd_value *find_objects(const fanout *f, const inferd_buffer *in,
                                        inferd_error *err)
{
    inferd_meta m = {0};
    bool found = false;
    if (f->source) {
        found = inferd_buffer_find_meta(in, f->source, "metadata/object", &m);
    } else {
        inferd_meta e;
        for (size_t i = 0; inferd_buffer_meta_at(in, i, &e); i++) /* ancestors first */
            if (e.value && strcmp(e.format, "metadata/object") == 0) {
                m = e;
                found = true;
            }
    }
    const inferd_value *arr = found ? object_array(m.value) : NULL;
    if (!arr)
        inferd_error_set(err, INFERD_EINVAL,
                         "no metadata/object list%s%s on the frame (put a detector's "
                         "post-processing, text_boxes or segment_defects, before)",
                         f->source ? " from dataSource " : "", f->source ? f->source : "");
    return arr;
}

/* The frame's original image: the oldest image payload up the chain. */
static const inferd_image *frame_image(const inferd_buffer *in)
{
    const inferd_image *img = NULL;
    for (const inferd_buffer *b = in; b; b = inferd_buffer_parent(b))
        if (inferd_buffer_image(b))
            img = inferd_buffer_image(b);
    return img;
}

static inferd_status push_part(inferd_instance *self, inferd_buffer *in, inferd_image *view,
                               int64_t index, size_t count, const inferd_value *object,
                               inferd_error *err)
{
    inferd_value *meta = inferd_value_object();
    inferd_status st = meta ? INFERD_OK : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    if (st == INFERD_OK && !(st = vision_set_int(meta, "index", index, err)) &&
        !(st = vision_set_int(meta, "count", (int64_t)count, err)) && object)
        st = inferd_value_object_set(meta, "object", inferd_value_copy(object), err);
    if (st != INFERD_OK) {
        inferd_value_free(meta);
        inferd_image_free(view);
        return st;
    }
    if (view)
        return vision_push_image(self, in, view, "metadata/fanout", meta, err);
    inferd_buffer *out = inferd_buffer_derive(in);
    if (!out) {
        inferd_value_free(meta);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory deriving a buffer");
    }
    st = inferd_buffer_add_meta_value(out, inferd_instance_name(self), "metadata/fanout", meta,
                                      err);
    if (st != INFERD_OK) {
        inferd_buffer_unref(out);
        return st;
    }
    return inferd_instance_push(self, 0, out, err);
}

inferd_status vision_object_crop_process(inferd_instance *self, inferd_buffer *const *in_bufs,
                                         size_t n, inferd_error *err)
{
    const fanout *f = inferd_instance_state(self);
    inferd_buffer *in;
    inferd_status st;
    if (!vision_begin(self, in_bufs, n, &in, &st, err))
        return st;
    const inferd_value *arr = find_objects(f, in, err);
    if (!arr)
        return err ? err->code : INFERD_EINVAL;
    const inferd_image *img = frame_image(in);
    if (!img)
        return inferd_error_set(err, INFERD_ETYPE, "the frame has no decoded image to crop");
    size_t count = inferd_value_array_len(arr);
    if (count == 0)
        return push_part(self, in, NULL, 0, 0, NULL, err);
    const size_t C = inferd_pixel_channels(img->format);
    for (size_t i = 0; i < count && st == INFERD_OK; i++) {
        const inferd_value *o = inferd_value_array_get(arr, i);
        double x = inferd_value_double_or(inferd_value_object_get(o, "x"), NAN);
        double y = inferd_value_double_or(inferd_value_object_get(o, "y"), NAN);
        double w = inferd_value_double_or(inferd_value_object_get(o, "width"), NAN);
        double h = inferd_value_double_or(inferd_value_object_get(o, "height"), NAN);
        if (!isfinite(x) || !isfinite(y) || !isfinite(w) || !isfinite(h) || w <= 0 || h <= 0)
            return inferd_error_set(err, INFERD_EINVAL,
                                    "object %zu of %zu has no box (numbers x, y, width, height "
                                    "above 0)", i, count);
        int64_t x0 = (int64_t)floor(x) - f->padding, y0 = (int64_t)floor(y) - f->padding;
        int64_t x1 = (int64_t)ceil(x + w) + f->padding, y1 = (int64_t)ceil(y + h) + f->padding;
        x0 = x0 < 0 ? 0 : x0, y0 = y0 < 0 ? 0 : y0;
        x1 = x1 > img->width ? img->width : x1, y1 = y1 > img->height ? img->height : y1;
        inferd_image *view = NULL;
        if (x1 <= x0 || y1 <= y0) { /* outside the image: a part with no pixels */
            st = push_part(self, in, NULL, (int64_t)i, count, o, err);
            continue;
        }
        st = inferd_image_wrap(img->format, (uint32_t)(x1 - x0), (uint32_t)(y1 - y0), img->stride,
                               img->data + (size_t)y0 * img->stride + (size_t)x0 * C, NULL, NULL,
                               &view, err);
        if (st == INFERD_OK)
            st = push_part(self, in, view, (int64_t)i, count, o, err);
    }
    return st;
}
