/* image_decoder.c: the image_decoder element of the vision plugin.
 *
 * In: "image/jpeg", "image/png" or "application/octet-stream" (bytes whose
 * type nobody knew), a bytes value (the encoded file). The codec is taken
 * from the bytes' magic, not from the port format, so a PNG labelled
 * image/jpeg still decodes, and bytes that are neither get the decoder's
 * own diagnosis (empty, truncated, not JPEG or PNG). Out (port 0): a buffer derived from the
 * input whose payload is the decoded image in the `format` property's pixel
 * order (rgb, bgr or gray), with a metadata/attribute entry under the
 * element's name: {"codec": "jpeg"|"png", "width", "height", "format"}.
 *
 * `maxPixels` is the decompression-bomb limit: the header is read first and
 * an image with more pixels is refused before anything is allocated.
 */
#include "vision.h"

#include <stdlib.h>

static const char *const pixel_formats[] = {"rgb", "bgr", "gray", NULL};

const inferd_prop_spec vision_decoder_props[] = {
    INFERD_PROP_ENUM("format", "pixel order of the decoded image", "rgb", pixel_formats),
    INFERD_PROP_UINT("maxPixels",
                     "largest image (width * height) decoded; larger ones are refused "
                     "before decoding (decompression bombs)",
                     67108864, 1, 4294836225),
    INFERD_PROP_END,
};
const inferd_port_spec vision_decoder_in[] = {INFERD_PORT_STATIC("image/jpeg", "image/png",
                                                                 "application/octet-stream"),
                                              INFERD_PORT_END};
const inferd_port_spec vision_decoder_out[] = {INFERD_PORT_STATIC(VISION_IMAGE_FORMATS),
                                               INFERD_PORT_END};

typedef struct decoder {
    inferd_pixel_format format;
    uint64_t max_pixels;
} decoder;

inferd_status vision_decoder_init(inferd_instance *self, const inferd_props *p, inferd_error *err)
{
    decoder *d = calloc(1, sizeof *d);
    if (!d)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    inferd_status st = inferd_pixel_format_parse(inferd_props_string(p, "format"), &d->format, err);
    if (st != INFERD_OK) {
        free(d);
        return st;
    }
    d->max_pixels = (uint64_t)inferd_props_int(p, "maxPixels");
    inferd_instance_set_state(self, d);
    return INFERD_OK;
}

inferd_status vision_decoder_process(inferd_instance *self, inferd_buffer *const *in_bufs,
                                     size_t n, inferd_error *err)
{
    const decoder *d = inferd_instance_state(self);
    inferd_buffer *in;
    inferd_status st;
    if (!vision_begin(self, in_bufs, n, &in, &st, err))
        return st;

    const void *bytes = NULL;
    size_t len = 0;
    const inferd_value *v = inferd_buffer_value(in);
    if (!v || inferd_value_get_bytes(v, &bytes, &len, NULL) != INFERD_OK) {
        char text[128];
        return inferd_error_set(err, INFERD_ETYPE,
                                "expected image/jpeg or image/png bytes, got %s",
                                vision_payload_text(in, text, sizeof text));
    }

    inferd_image_codec codec = inferd_image_sniff(bytes, len);
    inferd_image *img = NULL;
    st = inferd_image_decode(bytes, len, d->format, d->max_pixels, &img, err);
    if (st != INFERD_OK) {
        const char *format = inferd_buffer_format(in);
        inferd_error_prefix(err, "decoding %s (%zu bytes)", format ? format : "bytes", len);
        return st;
    }

    inferd_value *meta = inferd_value_object();
    if (!meta) {
        inferd_image_free(img);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    if ((st = vision_set_string(meta, "codec", codec == INFERD_CODEC_PNG ? "png" : "jpeg", err)) ||
        (st = vision_set_int(meta, "width", img->width, err)) ||
        (st = vision_set_int(meta, "height", img->height, err)) ||
        (st = vision_set_string(meta, "format", inferd_pixel_format_name(d->format), err))) {
        inferd_value_free(meta);
        inferd_image_free(img);
        return st;
    }
    return vision_push_image(self, in, img, "metadata/attribute", meta, err);
}

void vision_decoder_deinit(inferd_instance *self)
{
    free(inferd_instance_state(self));
}
