/* service/http.h: the HTTP server of `inferd serve` (libmicrohttpd).
 *
 * Owns the listening daemon and the route table. Handlers build a JSON value
 * and a status; the server serialises it. Errors always have the body
 * {"error": {"code": "...", "message": "..."}}.
 */
#ifndef INFERD_SERVICE_HTTP_H
#define INFERD_SERVICE_HTTP_H

#include <stdint.h>

#include "inferd/config.h"
#include "inferd/status.h"

typedef struct inferd_http inferd_http;

/* Parses "host:port", "[v6]:port" or ":port" (all interfaces). Port 0 picks
 * a free port (see inferd_http_port). */
inferd_status inferd_http_parse_listen(const char *text, char *host, size_t host_size,
                                       uint16_t *port, inferd_error *err);

/* Starts listening with the settings of cfg (listen, http.*). */
inferd_status inferd_http_start(const inferd_config *cfg, inferd_http **out, inferd_error *err);
/* The port actually bound (useful with port 0). */
uint16_t inferd_http_port(const inferd_http *http);
/* Stops accepting, lets in-flight requests finish for up to timeout_ms, then
 * closes everything and frees http. */
void inferd_http_stop(inferd_http *http, uint64_t timeout_ms);

#endif
