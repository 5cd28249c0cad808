/* net/address.h: the one parser of "HOST[:PORT]" that the daemon's
 * addresses go through (the listen address, MQTT brokers, the Host header
 * of a request). Internal to the daemon. */
#ifndef INFERD_NET_ADDRESS_H
#define INFERD_NET_ADDRESS_H

#include <stddef.h>

typedef enum net_address_fault {
    NET_ADDRESS_OK = 0,
    NET_ADDRESS_BAD_V6,    /* '[' without ']', or what is inside is too long */
    NET_ADDRESS_BAD_PORT,  /* not a number in range, or empty after ':' */
    NET_ADDRESS_NO_PORT,   /* a port is required and there is none */
    NET_ADDRESS_TRAILING,  /* something after the host that is not :PORT */
    NET_ADDRESS_TOO_LONG   /* the host does not fit host_size */
} net_address_fault;

/* Splits text (len bytes) into host (without an IPv6 address's brackets,
 * NUL-terminated in host_size; "" when there is none, which the caller
 * judges) and *port. A port is a decimal number in
 * [port_min, 65535]; without one, *port = port_default, or NET_ADDRESS_NO_PORT
 * when port_default is negative. *rest points at what made it
 * NET_ADDRESS_TRAILING or NET_ADDRESS_BAD_PORT (the text after the host or
 * the ':'). */
net_address_fault net_split_hostport(const char *text, size_t len, int port_min,
                                     int port_default, char *host, size_t host_size, int *port,
                                     const char **rest);

#endif
