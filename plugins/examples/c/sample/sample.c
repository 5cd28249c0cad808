/* sample: the counterpart of the pipeline seed's MxpiSamplePlugin.
 *
 * An element, mxpi_sampleplugin, that takes an image, and attaches a
 * metadata/attribute entry {"message", "width", "height", "frame"} to it under
 * its own name, then passes the buffer on. A downstream element (or the JSON
 * serializer) reads the entry by this element's name (its dataSource).
 *
 * Build it out of the tree with nothing but the installed headers:
 *   cc -std=c17 -O2 -fPIC -shared $(pkg-config --cflags inferd-plugin) \
 *      sample.c -o sample.so
 * then put sample.so in the plugin folder and activate it:
 *   INFERD_ACTIVE_PLUGINS=sample inferd plugin inspect mxpi_sampleplugin
 */
#include <inferd/plugin.h>

#include <stdlib.h>
#include <string.h>

static const inferd_prop_spec props[] = {
    INFERD_PROP_STRING("descriptionMessage", "a message attached to every image", "hello"),
    INFERD_PROP_INT("minHeight", "images lower than this are refused", 6, 1, 4096),
    INFERD_PROP_END,
};
static const inferd_port_spec in[] = {INFERD_PORT_STATIC("image/rgb", "image/bgr"),
                                      INFERD_PORT_END};
static const inferd_port_spec out[] = {INFERD_PORT_STATIC("image/rgb", "image/bgr"),
                                       INFERD_PORT_END};

typedef struct sample {
    char *message;
    int64_t min_height;
} sample;

static inferd_status sample_init(inferd_instance *self, const inferd_props *p, inferd_error *err)
{
    const char *message = inferd_props_string(p, "descriptionMessage");
    size_t len = strlen(message);
    sample *s = calloc(1, sizeof *s);
    if (!s || !(s->message = malloc(len + 1))) {
        free(s);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    memcpy(s->message, message, len + 1);
    s->min_height = inferd_props_int(p, "minHeight");
    inferd_instance_set_state(self, s);
    inferd_instance_log(self, INFERD_LOG_DEBUG, "message \"%s\", minHeight %lld", s->message,
                        (long long)s->min_height);
    return INFERD_OK;
}

/* A filter (INFERD_FILTER_PROCESS): the host checks that one buffer came
 * and that it is an image/rgb or image/bgr one, and pushes it on after. */
static inferd_status sample_transform(inferd_instance *self, inferd_buffer *buf,
                                      inferd_error *err)
{
    sample *s = inferd_instance_state(self);
    const inferd_image *img = inferd_buffer_image(buf);
    if (img->height < s->min_height)
        return inferd_error_set(err, INFERD_ERANGE, "image height %u is below minHeight %lld",
                                img->height, (long long)s->min_height);
    inferd_value *meta = inferd_value_object();
    inferd_value_object_set(meta, "message", inferd_value_string(s->message), NULL);
    inferd_value_object_set(meta, "width", inferd_value_int(img->width), NULL);
    inferd_value_object_set(meta, "height", inferd_value_int(img->height), NULL);
    inferd_value_object_set(meta, "frame", inferd_value_int((int64_t)inferd_buffer_frame_id(buf)),
                            NULL);
    return inferd_buffer_add_meta_value(buf, inferd_instance_name(self), "metadata/attribute",
                                        meta, err);
}

INFERD_FILTER_PROCESS(sample_process, sample_transform)

static void sample_deinit(inferd_instance *self)
{
    sample *s = inferd_instance_state(self);
    free(s->message);
    free(s);
}

INFERD_PLUGIN("sample", "1.0.0",
              INFERD_ELEMENT("mxpi_sampleplugin", props, in, out, sample_init, sample_process,
                             sample_deinit))
