/* connectors/connectors.c: the "connectors" plugin's descriptor and what its
 * elements share. */
#include "connectors/connectors.h"
#include "connectors/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/build_value.h"

static const inferd_config *config;

const inferd_config *connectors_config(void) { return config; }

inferd_status connectors_body(const inferd_buffer *buf, const char *element, char **body,
                              size_t *len, const char **content_type, inferd_error *err)
{
    const inferd_error *e = inferd_buffer_error(buf);
    const inferd_value *v = inferd_buffer_value(buf);
    const void *bytes;
    size_t n;
    if (!e && inferd_value_get_bytes(v, &bytes, &n, NULL) == INFERD_OK) {
        if (!(*body = malloc(n ? n : 1)))
            return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        memcpy(*body, bytes, n);
        *len = n;
        *content_type = inferd_buffer_format(buf) ? inferd_buffer_format(buf)
                                                  : "application/octet-stream";
        return INFERD_OK;
    }
    inferd_value *errobj = NULL;
    if (e) {
        bool ok = true;
        errobj = inferd_value_object();
        inferd_value *ev = inferd_value_object();
        inferd__put(errobj, "frame", inferd_value_int((int64_t)inferd_buffer_frame_id(buf)), &ok);
        inferd__put_str(ev, "code", inferd_status_name(e->code), &ok);
        inferd__put_str(ev, "message", e->message, &ok);
        inferd__put(errobj, "error", ev, &ok);
        if (!ok) {
            inferd_value_free(errobj);
            return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        }
        v = errobj;
    } else if (!v) {
        return inferd_error_set(err, INFERD_EINVAL, "element %s sends values and encoded "
                                "pictures; this frame carries %s: put json_serialize or "
                                "image_encoder before it", element,
                                inferd_buffer_format(buf) ? inferd_buffer_format(buf)
                                                          : "no payload");
    }
    inferd_status st = inferd_value_to_json(v, INFERD_JSON_COMPACT, body, len, err);
    inferd_value_free(errobj);
    *content_type = "application/json";
    return st;
}

static const inferd_component *const all[] = {&connectors_mqtt_source, &connectors_mqtt_sink,
                                              &connectors_http_sink};

inferd_status connectors_register(inferd_registry *reg, const inferd_config *cfg,
                                  inferd_error *err)
{
    static inferd_component components[sizeof all / sizeof all[0]];
    static const inferd_plugin descriptor = {
        INFERD_PLUGIN_MAGIC, INFERD_ABI_MAJOR, INFERD_ABI_MINOR, sizeof(inferd_plugin),
        "connectors", "1.0.0", "pipeline elements that use the daemon's MQTT and HTTP clients",
        components, sizeof components / sizeof components[0]};
    config = cfg;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        components[i] = *all[i];
    /* Shipped with inferd: listed as built in, like the host's own families. */
    char origin[8192];
    snprintf(origin, sizeof origin, "%s/(inferd)", inferd_builtin_dir());
    return inferd_registry_add(reg, &descriptor, origin, err);
}
