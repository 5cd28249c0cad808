/* vision.c: the built-in "vision" plugin: its descriptor (INFERD_PLUGIN with
 * the elements image_decoder, image_encoder, image_resize, image_crop,
 * object_crop, overlay and
 * image_to_tensor, each implemented in its own file) and the helpers the
 * elements share (vision.h).
 */
#include "vision.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *vision_payload_text(const inferd_buffer *buf, char *text, size_t size)
{
    const char *format = inferd_buffer_format(buf);
    switch (inferd_buffer_payload_kind(buf)) {
    case INFERD_PAYLOAD_VALUE:
        snprintf(text, size, "%s %s", format ? format : "(no format)",
                 inferd_value_type_name(inferd_value_type_of(inferd_buffer_value(buf))));
        break;
    case INFERD_PAYLOAD_IMAGE:
        snprintf(text, size, "%s image", format ? format : "(no format)");
        break;
    case INFERD_PAYLOAD_TENSORS:
        snprintf(text, size, "%s (%zu tensor%s)", format ? format : "(no format)",
                 inferd_buffer_tensor_count(buf), inferd_buffer_tensor_count(buf) == 1 ? "" : "s");
        break;
    case INFERD_PAYLOAD_NONE:
    default:
        snprintf(text, size, "no payload");
        break;
    }
    return text;
}

bool vision_begin(inferd_instance *self, inferd_buffer *const *in_bufs, size_t n,
                  inferd_buffer **in, inferd_status *st, inferd_error *err)
{
    if (n != 1 || !in_bufs || !in_bufs[0]) {
        *st = inferd_error_set(err, INFERD_EINVAL, "expected one input buffer, got %zu%s", n,
                               n == 1 ? " (NULL)" : "");
        return false;
    }
    *in = in_bufs[0];
    if (inferd_buffer_error(*in)) {
        *st = inferd_instance_push(self, 0, inferd_buffer_ref(*in), err);
        return false;
    }
    *st = INFERD_OK;
    return true;
}

inferd_status vision_input_image(const inferd_buffer *in, const inferd_image **img,
                                 inferd_error *err)
{
    const inferd_image *im = inferd_buffer_image(in);
    if (!im) {
        char text[128];
        return inferd_error_set(err, INFERD_ETYPE, "expected an image payload, got %s",
                                vision_payload_text(in, text, sizeof text));
    }
    if (im->format != INFERD_PIXEL_RGB8 && im->format != INFERD_PIXEL_BGR8 &&
        im->format != INFERD_PIXEL_GRAY8)
        return inferd_error_set(err, INFERD_EUNSUPPORTED,
                                "expected an rgb, bgr or gray image, got %s",
                                inferd_pixel_format_name(im->format));
    if (!im->data || im->width == 0 || im->height == 0 ||
        im->stride < (size_t)im->width * inferd_pixel_channels(im->format))
        return inferd_error_set(err, INFERD_EINVAL, "malformed %ux%u %s image (stride %zu)",
                                im->width, im->height, inferd_pixel_format_name(im->format),
                                im->stride);
    *img = im;
    return INFERD_OK;
}

inferd_status vision_push_image(inferd_instance *self, inferd_buffer *in, inferd_image *img,
                                const char *meta_format, inferd_value *meta, inferd_error *err)
{
    inferd_buffer *out = inferd_buffer_derive(in);
    if (!out) {
        inferd_image_free(img);
        inferd_value_free(meta);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory deriving a buffer");
    }
    inferd_status st = inferd_buffer_set_image(out, img, err);
    if (st == INFERD_OK && meta)
        st = inferd_buffer_add_meta_value(out, inferd_instance_name(self), meta_format, meta, err);
    else
        inferd_value_free(meta);
    if (st != INFERD_OK) {
        inferd_buffer_unref(out);
        return st;
    }
    return inferd_instance_push(self, 0, out, err);
}

static inferd_status set_item(inferd_value *obj, const char *key, inferd_value *item,
                              inferd_error *err)
{
    if (!item)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    return inferd_value_object_set(obj, key, item, err);
}

inferd_status vision_set_int(inferd_value *obj, const char *key, int64_t v, inferd_error *err)
{
    return set_item(obj, key, inferd_value_int(v), err);
}

inferd_status vision_set_double(inferd_value *obj, const char *key, double v, inferd_error *err)
{
    return set_item(obj, key, inferd_value_double(v), err);
}

inferd_status vision_set_string(inferd_value *obj, const char *key, const char *v,
                                inferd_error *err)
{
    return set_item(obj, key, inferd_value_string(v), err);
}

const char *vision_a(const char *word)
{
    return word && strchr("aeiou", word[0]) && word[0] ? "an" : "a";
}

bool vision_data_source(const inferd_props *p, char **out)
{
    const char *source = inferd_props_string(p, "dataSource");
    *out = NULL;
    if (!source[0] || strcmp(source, "auto") == 0)
        return true;
    return (*out = vision_strdup(source)) != NULL;
}

char *vision_strdup(const char *s)
{
    size_t len = strlen(s);
    char *copy = malloc(len + 1);
    if (copy)
        memcpy(copy, s, len + 1);
    return copy;
}

/* Each element's declarations and callbacks share a prefix. */
#define VISION_ELEMENT(cname, cdesc, pre)                                                      \
    INFERD_COMPONENT(INFERD_KIND_ELEMENT, .name = (cname), .description = (cdesc),             \
                     .props = pre##_props, .inputs = pre##_in, .outputs = pre##_out,           \
                     .ops = INFERD_ELEMENT_OPS(pre##_init, pre##_process, pre##_deinit))

INFERD_PLUGIN("vision", "1.0.0",
              VISION_ELEMENT("image_decoder",
                             "decodes JPEG or PNG bytes into an rgb, bgr or gray image",
                             vision_decoder),
              VISION_ELEMENT("image_resize",
                             "resizes an image (bilinear or nearest), optionally keeping its "
                             "aspect ratio with padding; records a resize transform",
                             vision_resize),
              VISION_ELEMENT("image_crop",
                             "crops an image to a rectangle from its properties or from an "
                             "upstream metadata/attribute entry; records a crop transform",
                             vision_crop),
              VISION_ELEMENT("image_to_tensor",
                             "turns an image into a normalised [1,C,H,W] or [1,H,W,C] tensor",
                             vision_to_tensor),
              VISION_ELEMENT("image_encoder",
                             "encodes an image as JPEG (quality) or PNG bytes",
                             vision_encoder),
              VISION_ELEMENT("object_crop",
                             "the per-object fan-out: one buffer per object of a "
                             "metadata/object list, its part of the frame's image "
                             "(object_join gathers the results)",
                             vision_object_crop),
              VISION_ELEMENT("overlay",
                             "draws the frame's results on its picture: points, boxes with "
                             "labels, masks, counts, classes and text",
                             vision_overlay))
