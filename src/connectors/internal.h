/* connectors/internal.h: what the connector elements share. */
#ifndef INFERD_CONNECTORS_INTERNAL_H
#define INFERD_CONNECTORS_INTERNAL_H

#include "inferd/config.h"
#include "inferd/plugin.h"

/* The process's configuration (connectors_register). */
const inferd_config *connectors_config(void);

extern const inferd_component connectors_mqtt_source, connectors_mqtt_sink,
    connectors_http_sink;

/* A sink's body for a frame: an encoded picture's bytes (with its format),
 * a value as JSON text, or an errored frame as {"frame", "error": {"code",
 * "message"}} (application/json). *body is malloc'd. EINVAL for a payload
 * that is neither (an image, tensors): the message says what to put before
 * the sink. */
inferd_status connectors_body(const inferd_buffer *buf, const char *element, char **body,
                              size_t *len, const char **content_type, inferd_error *err);

#endif
