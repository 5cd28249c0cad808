/* net/address.c: "HOST[:PORT]" and "[IPV6][:PORT]" (address.h). */
#include "net/address.h"

#include <string.h>

net_address_fault net_split_hostport(const char *text, size_t len, int port_min,
                                     int port_default, char *host, size_t host_size, int *port,
                                     const char **rest)
{
    const char *end = text + len, *h = text, *h_end, *after;
    *rest = end;
    if (len > 0 && text[0] == '[') {
        const char *close = memchr(text, ']', len);
        if (!close)
            return NET_ADDRESS_BAD_V6;
        h = text + 1;
        h_end = close;
        after = close + 1;
    } else {
        /* The last ':' separates the port (a bare IPv6 address needs brackets). */
        const char *colon = NULL;
        for (const char *p = text; p < end; p++)
            if (*p == ':')
                colon = p;
            else if (*p == '/' && !colon)
                break;
        h_end = colon ? colon : text + strcspn(text, "/");
        if (h_end > end)
            h_end = end;
        after = h_end;
    }
    if ((size_t)(h_end - h) >= host_size)
        return NET_ADDRESS_TOO_LONG;
    memcpy(host, h, (size_t)(h_end - h));
    host[h_end - h] = '\0';
    if (after == end) {
        *port = port_default;
        return port_default < 0 ? NET_ADDRESS_NO_PORT : NET_ADDRESS_OK;
    }
    if (*after != ':') {
        *rest = after;
        return NET_ADDRESS_TRAILING;
    }
    *rest = after + 1;
    long p = 0;
    const char *d = after + 1;
    if (d == end)
        return NET_ADDRESS_BAD_PORT;
    for (; d < end; d++) {
        if (*d < '0' || *d > '9' || p > 65535)
            return *d == '/' && d > after + 1 ? (*rest = d, NET_ADDRESS_TRAILING)
                                              : NET_ADDRESS_BAD_PORT;
        p = p * 10 + (*d - '0');
    }
    if (p < port_min || p > 65535)
        return NET_ADDRESS_BAD_PORT;
    *port = (int)p;
    return NET_ADDRESS_OK;
}
