/* service/http.h: the HTTP server of `inferd serve` (libmicrohttpd).
 *
 * Owns the listening daemon, the connections' request state and the router.
 * Reads every body whole (refusing one over http.max_body_bytes with 413),
 * routes it (the built-in routes of service.h, then background components'
 * routes), checks the management token, calls the handler, and sends its
 * reply when it comes: at once, or later from another thread while the
 * connection is suspended. Records every finished request in the metrics and
 * publishes it as a monitoring_event.
 */
#ifndef INFERD_SERVICE_HTTP_H
#define INFERD_SERVICE_HTTP_H

#include <stdbool.h>
#include <stdint.h>

#include "inferd/config.h"
#include "inferd/status.h"

typedef struct inferd_http inferd_http;
struct svc;

/* Parses "host:port", "[v6]:port" or ":port" (all interfaces). Port 0 picks
 * a free port (see inferd_http_port). */
inferd_status inferd_http_parse_listen(const char *text, char *host, size_t host_size,
                                       uint16_t *port, inferd_error *err);

/* Starts listening with the settings of the service's config (listen,
 * http.*), serving s. */
inferd_status inferd_http_start(struct svc *s, inferd_http **out, inferd_error *err);
/* The port actually bound (useful with port 0). */
uint16_t inferd_http_port(const inferd_http *http);
/* Whether it serves HTTPS (http.tls_cert). */
bool inferd_http_is_tls(const inferd_http *http);
/* Stops accepting and lets in-flight requests finish for up to timeout_ms. */
void inferd_http_drain(inferd_http *http, uint64_t timeout_ms);
/* Closes every connection and frees http. Suspended requests must have been
 * replied to first (the service fails what is still queued before this). */
void inferd_http_stop(inferd_http *http);

#endif
