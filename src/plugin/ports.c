/* plugin/ports.c: what a component's port declarations say about a buffer:
 * the spec of a port index, its formats as text, and whether a buffer
 * carries a format the port takes. One place for the pipeline builder's
 * link checks, the engine's hand-over checks and filters. */
#include "plugin/internal.h"

#include <stdio.h>
#include <string.h>

const inferd_port_spec *inferd__port_spec(const inferd_port_spec *ports, size_t i)
{
    size_t n = 0;
    while (ports && ports[n].formats)
        n++;
    if (i < n)
        return &ports[i];
    if (n > 0 && ports[n - 1].dynamic)
        return &ports[n - 1];
    return NULL;
}

char *inferd__port_formats(const inferd_port_spec *port, char *buf, size_t size)
{
    size_t pos = 0;
    buf[0] = '\0';
    for (size_t i = 0; port && port->formats && port->formats[i] && pos < size; i++)
        pos += (size_t)snprintf(buf + pos, size - pos, "%s%s", i ? ", " : "", port->formats[i]);
    return buf;
}

/* Whether format is one of port's (or the port takes ANY). */
static bool takes(const inferd_port_spec *port, const char *format)
{
    for (size_t i = 0; port->formats[i]; i++)
        if (strcmp(port->formats[i], "ANY") == 0 || (format && strcmp(port->formats[i], format) == 0))
            return true;
    return false;
}

bool inferd__port_takes(const inferd_port_spec *port, const inferd_buffer *buf)
{
    if (!port || !port->formats || takes(port, inferd_buffer_format(buf)))
        return true;
    inferd_meta m;
    for (size_t i = 0; inferd_buffer_meta_at(buf, i, &m); i++)
        if (takes(port, m.format))
            return true;
    return false;
}

const char *inferd__buffer_formats(const inferd_buffer *buf, char *out, size_t size)
{
    const char *payload = inferd_buffer_format(buf);
    snprintf(out, size, "%s", payload ? payload : "no payload");
    return out;
}
