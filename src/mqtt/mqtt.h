/* mqtt/mqtt.h: one MQTT connection (libmosquitto) that keeps itself up.
 * Not installed; used by the rules engine's MQTT source and action.
 *
 * A client connects in the background as soon as it is made, and again
 * after every loss, with back-off (reconnect_min_ms doubling to
 * reconnect_max_ms). Subscriptions are remembered and made again on every
 * connect. Publishing never blocks on the network: while disconnected, or
 * while the library has more than max_queued messages in flight, messages
 * wait in a bounded queue of the client's own; what does not fit is dropped
 * and counted (never silently lost). Everything here is thread-safe.
 */
#ifndef INFERD_MQTT_H
#define INFERD_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferd/config.h"
#include "inferd/status.h"

typedef struct mqtt_client mqtt_client;

typedef struct mqtt_options {
    const char *server;        /* "tcp://host:port" or "mqtt://host:port" (port 1883 if left
                                  out); "ssl://", "mqtts://" or "tls://" for TLS (port 8883).
                                  Other schemes (ws) are EINVAL. */
    /* TLS (an ssl:// server): the CA file that signs the broker's certificate
     * (NULL: the system's, /etc/ssl/certs), and a client certificate and its
     * key for a broker that asks for one (NULL: none). */
    const char *tls_ca, *tls_cert, *tls_key;
    const char *client_id;     /* NULL: "inferd-<pid>-<n>" */
    const char *username, *password; /* NULL: none */
    int protocol;              /* 5 (default when 0) or 4 (MQTT 3.1.1) */
    unsigned keepalive_s;      /* 0: 60 */
    unsigned reconnect_min_ms; /* 0: 200 */
    unsigned reconnect_max_ms; /* 0: 30000 */
    size_t max_queued;         /* 0: 1024 messages waiting to be sent or in flight (at
                                  most 65535: message ids have 16 bits) */
    bool keep_session;         /* false: a clean start every connect (the broker keeps nothing) */
    const char *name;          /* for log lines: "stream tfdemo", "rule r1 action 0" */
} mqtt_options;

/* Called on the client's network thread for every message on a subscribed
 * topic. payload is borrowed for the call. Keep it short (queue the work). */
typedef void (*mqtt_message_fn)(void *ctx, const char *topic, const void *payload, size_t len);

/* Checks the options (a bad server is EINVAL naming it), starts the network
 * thread and the first connection attempt; returns without waiting for it. */
inferd_status mqtt_client_new(const mqtt_options *opts, mqtt_client **out, inferd_error *err);
/* Disconnects (waiting at most ~1 s to flush what is queued), stops the
 * thread, frees. Callbacks are never called after this returns. Never call
 * it from the client's own message callback (it waits for that thread). */
void mqtt_client_free(mqtt_client *c);

/* Subscribes now if connected, and on every (re)connect. topic may be a
 * filter with + and #, or a shared subscription "$share/group/topic".
 * One callback per client (a second subscribe replaces fn/ctx). */
inferd_status mqtt_client_subscribe(mqtt_client *c, const char *topic, int qos,
                                    mqtt_message_fn fn, void *ctx, inferd_error *err);
/* Queues one message. INFERD_EBUSY when the queue is full: the message is
 * dropped and counted in `dropped`; the error says so. */
inferd_status mqtt_client_publish(mqtt_client *c, const char *topic, const void *payload,
                                  size_t len, int qos, bool retain, inferd_error *err);
/* Waits up to timeout_ms for the first connection; INFERD_ETIMEOUT with the
 * last connection error otherwise. For tests and start-up ordering only. */
inferd_status mqtt_client_wait_connected(mqtt_client *c, unsigned timeout_ms, inferd_error *err);

typedef struct mqtt_stats {
    bool connected;
    uint64_t connects;         /* successful connections so far */
    uint64_t disconnects;      /* connections lost (not counting mqtt_client_free) */
    uint64_t received;         /* messages handed to the callback */
    uint64_t published;        /* messages handed to the broker */
    uint64_t dropped;          /* messages dropped: the queue was full, or the broker or
                                  the library refused them (each also logged) */
    size_t queued;             /* messages waiting now, in flight included */
    size_t subscribed;         /* subscriptions the broker granted on this connection */
    char last_error[256];      /* "" or the last connection error, in words (kept after a
                                  reconnect; last_error_ms dates it) */
    int64_t last_error_ms;     /* wall clock (ms since the epoch) of last_error, 0 if none */
} mqtt_stats;
void mqtt_client_stats(mqtt_client *c, mqtt_stats *out);

/* The options of a connection profile of the configuration: conf_key NULL
 * or "default" is mqtt.server; another names mqtt.profiles.<key> (server,
 * username, password, clientId, protocolVersion). The strings are
 * borrowed from cfg. EINVAL for a profile that is not there or a server
 * that is not tcp:// or mqtt://. */
inferd_status mqtt_profile(const inferd_config *cfg, const char *conf_key,
                           mqtt_options *opts, inferd_error *err);
/* EINVAL unless server is tcp:// or mqtt:// (where names the setting). */
inferd_status mqtt_check_server(const char *server, const char *where, inferd_error *err);

/* The server string with defaults applied for messages ("tcp://127.0.0.1:1883"). */
const char *mqtt_client_server(const mqtt_client *c);

#endif
