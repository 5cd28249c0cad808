/* image_encoder.c: the image_encoder element of the vision plugin: an
 * image (rgb, bgr or gray) encoded as JPEG or PNG bytes (libjpeg-turbo,
 * libspng, through the host's inferd_image_encode).
 *
 * Out (port 0): a buffer derived from the input whose payload is the
 * encoded file, format "image/jpeg" or "image/png", with a
 * metadata/attribute entry under the element's name: {"codec", "bytes",
 * "width", "height"}. `quality` (1..100) is JPEG's; PNG is lossless.
 */
#include "vision.h"

#include <stdlib.h>
#include <string.h>

static const char *const codecs[] = {"jpeg", "png", NULL};

const inferd_prop_spec vision_encoder_props[] = {
    INFERD_PROP_ENUM("codec", "jpeg or png", "jpeg", codecs),
    INFERD_PROP_INT("quality", "JPEG quality, 1 (smallest) to 100 (best)", 90, 1, 100),
    INFERD_PROP_END,
};
const inferd_port_spec vision_encoder_in[] = {INFERD_PORT_STATIC(VISION_IMAGE_FORMATS),
                                              INFERD_PORT_END};
const inferd_port_spec vision_encoder_out[] = {INFERD_PORT_STATIC("image/jpeg", "image/png"),
                                               INFERD_PORT_END};

typedef struct encoder {
    bool png;
    int quality;
} encoder;

inferd_status vision_encoder_init(inferd_instance *self, const inferd_props *p, inferd_error *err)
{
    encoder *e = calloc(1, sizeof *e);
    if (!e)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    e->png = strcmp(inferd_props_string(p, "codec"), "png") == 0;
    e->quality = (int)inferd_props_int(p, "quality");
    inferd_instance_set_state(self, e);
    return INFERD_OK;
}

void vision_encoder_deinit(inferd_instance *self)
{
    free(inferd_instance_state(self));
}

inferd_status vision_encoder_process(inferd_instance *self, inferd_buffer *const *in_bufs,
                                     size_t n, inferd_error *err)
{
    const encoder *e = inferd_instance_state(self);
    inferd_buffer *in;
    const inferd_image *img;
    inferd_status st;
    if (!vision_begin(self, in_bufs, n, &in, &st, err))
        return st;
    if ((st = vision_input_image(in, &img, err)) != INFERD_OK)
        return st;
    void *data = NULL;
    size_t len = 0;
    st = inferd_image_encode(img, e->png ? INFERD_CODEC_PNG : INFERD_CODEC_JPEG, e->quality,
                             &data, &len, err);
    if (st != INFERD_OK)
        return st;
    inferd_value *meta = inferd_value_object();
    inferd_buffer *out = inferd_buffer_derive(in);
    if (!meta || !out || (st = vision_set_string(meta, "codec", e->png ? "png" : "jpeg", err)) ||
        (st = vision_set_int(meta, "bytes", (int64_t)len, err)) ||
        (st = vision_set_int(meta, "width", img->width, err)) ||
        (st = vision_set_int(meta, "height", img->height, err))) {
        free(data);
        inferd_value_free(meta);
        inferd_buffer_unref(out);
        return st ? st : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    inferd_value *bytes = inferd_value_bytes_take(data, len); /* frees data on failure */
    st = bytes ? inferd_buffer_set_value(out, e->png ? "image/png" : "image/jpeg", bytes, err)
               : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    if (st == INFERD_OK)
        st = inferd_buffer_add_meta_value(out, inferd_instance_name(self), "metadata/attribute",
                                          meta, err);
    else
        inferd_value_free(meta);
    if (st != INFERD_OK) {
        inferd_buffer_unref(out);
        return st;
    }
    return inferd_instance_push(self, 0, out, err);
}
