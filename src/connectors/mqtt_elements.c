/* connectors/mqtt_elements.c: mqtt_source and mqtt_sink, pipeline elements
 * on the daemon's MQTT client (src/mqtt: reconnects with back-off, bounded
 * publishing) with the connection profiles of the rules (`confKey`:
 * mqtt.server, or mqtt.profiles.<key>).
 *
 * mqtt_source is a producer: its one process call subscribes and pushes a
 * frame per message until the pipeline stops. Messages arrive on the
 * client's network thread and wait in a ring of `queueFrames`; when the
 * pipeline is behind, the oldest waiting message is dropped (a camera's
 * stale frame is worth less than the newest) and counted (`dropped`).
 *
 * mqtt_sink publishes each frame: an encoded picture's bytes as they are, a
 * value as JSON, a frame that carries an error as {"frame", "error"}; what
 * the client cannot queue is counted as `dropped` and fails that frame.
 */
#include "connectors/internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "mqtt/mqtt.h"

/* ---- the connection ------------------------------------------------------------ */

/* A client for an element: the profile's options, its own client id
 * ("<profile clientId>-<element>" or "inferd-<pid>-<element>-<n>": a broker
 * drops one of two connections with the same id). */
static inferd_status connect(inferd_instance *self, const inferd_props *p, mqtt_client **out,
                             inferd_error *err)
{
    mqtt_options o;
    inferd_status st = mqtt_profile(connectors_config(), inferd_props_string(p, "confKey"), &o,
                                    err);
    if (st != INFERD_OK)
        return st;
    static _Atomic unsigned seq;
    char id[160], name[160];
    if (o.client_id)
        snprintf(id, sizeof id, "%s-%s", o.client_id, inferd_instance_name(self));
    else
        snprintf(id, sizeof id, "inferd-%d-%s-%u", (int)getpid(), inferd_instance_name(self),
                 atomic_fetch_add(&seq, 1));
    snprintf(name, sizeof name, "element %s", inferd_instance_name(self));
    o.client_id = id;
    o.name = name;
    return mqtt_client_new(&o, out, err);
}

static const char *const payloads[] = {"image", "json", "bytes", NULL};

/* ---- mqtt_source ------------------------------------------------------------------ */

static const inferd_prop_spec source_props[] = {
    INFERD_PROP_STRING("topic", "the topic (or filter, with + and #) to subscribe to", NULL),
    INFERD_PROP_INT("qos", "the subscription's QoS", 0, 0, 2),
    INFERD_PROP_STRING("confKey", "the connection: \"default\" (mqtt.server) or a name of "
                       "mqtt.profiles", "default"),
    INFERD_PROP_ENUM("payload", "what a message is: image (JPEG or PNG bytes), json (a JSON "
                     "document), bytes (anything)", "image", payloads),
    INFERD_PROP_INT("queueFrames", "messages waiting for the pipeline; when it is behind the "
                    "oldest is dropped", 16, 1, 4096),
    INFERD_PROP_END,
};

typedef struct message {
    char *topic;
    void *data;
    size_t len;
} message;

typedef struct source {
    inferd_instance *self;
    mqtt_client *client;
    char *topic;
    int qos;
    int payload;                /* index into payloads */
    pthread_mutex_t lock;       /* guards the ring */
    pthread_cond_t arrived;
    message *ring;              /* cap slots, [head, head + n) in use */
    size_t cap, head, n;
    uint64_t index;             /* messages taken (the producer's thread) */
} source;

static void message_free(message *m)
{
    free(m->topic);
    free(m->data);
    *m = (message){0};
}

/* The client's network thread: keep it short. */
static void on_message(void *ctx, const char *topic, const void *payload, size_t len)
{
    source *s = ctx;
    message m = {strdup(topic), malloc(len ? len : 1), len};
    if (!m.topic || !m.data) {
        message_free(&m);
        inferd_instance_count(s->self, "dropped", 1);
        return;
    }
    memcpy(m.data, payload, len);
    pthread_mutex_lock(&s->lock);
    if (s->n == s->cap) { /* behind: the oldest goes */
        message_free(&s->ring[s->head]);
        s->head = (s->head + 1) % s->cap;
        s->n--;
        inferd_instance_count(s->self, "dropped", 1);
    }
    s->ring[(s->head + s->n) % s->cap] = m;
    s->n++;
    inferd_instance_count(s->self, "received", 1);
    pthread_cond_signal(&s->arrived);
    pthread_mutex_unlock(&s->lock);
}

static void source_deinit(inferd_instance *self)
{
    source *s = inferd_instance_state(self);
    if (!s)
        return;
    mqtt_client_free(s->client); /* no callback after this */
    for (size_t i = 0; i < s->n; i++)
        message_free(&s->ring[(s->head + i) % s->cap]);
    pthread_cond_destroy(&s->arrived);
    pthread_mutex_destroy(&s->lock);
    free(s->ring);
    free(s->topic);
    free(s);
}

static inferd_status source_init(inferd_instance *self, const inferd_props *p, inferd_error *err)
{
    source *s = calloc(1, sizeof *s);
    size_t cap = (size_t)inferd_props_int(p, "queueFrames");
    if (!s || !(s->ring = calloc(cap, sizeof *s->ring)) ||
        !(s->topic = strdup(inferd_props_string(p, "topic")))) {
        if (s)
            free(s->ring);
        free(s);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    s->self = self;
    s->cap = cap;
    s->qos = (int)inferd_props_int(p, "qos");
    const char *kind = inferd_props_string(p, "payload");
    while (payloads[s->payload] && strcmp(payloads[s->payload], kind) != 0)
        s->payload++;
    pthread_mutex_init(&s->lock, NULL);
    inferd__cond_init(&s->arrived);
    inferd_instance_set_state(self, s);
    /* Connected now, subscribed when the pipeline runs (process). */
    inferd_status st = connect(self, p, &s->client, err);
    if (st != INFERD_OK) { /* the host never calls deinit after a failed init */
        source_deinit(self);
        inferd_instance_set_state(self, NULL);
    }
    return st;
}

/* A message as a frame: its payload as the `payload` setting says, or an
 * error naming the topic when it is not that. */
static inferd_buffer *frame_of(source *s, message *m)
{
    inferd_buffer *b = inferd_buffer_new();
    if (!b)
        return NULL;
    inferd_value *meta = inferd_value_object();
    inferd_value_object_set(meta, "topic", inferd_value_string(m->topic), NULL);
    inferd_value_object_set(meta, "index", inferd_value_int((int64_t)s->index++), NULL);
    inferd_buffer_add_meta_value(b, inferd_instance_name(s->self), "metadata/attribute", meta,
                                 NULL);
    inferd_error e = {0};
    const char *mime = NULL;
    inferd_value *v = NULL;
    switch (s->payload) {
    case 0: /* image */
        mime = inferd_image_codec_mime(inferd_image_sniff(m->data, m->len));
        if (!mime)
            inferd_error_set(&e, INFERD_EUNSUPPORTED, "the message on %s is neither JPEG nor PNG "
                             "(%zu bytes): send pictures, or set payload to json or bytes",
                             m->topic, m->len);
        break;
    case 1: /* json */
        if (inferd_value_from_json(m->data, m->len, 64, &v, &e) != INFERD_OK)
            inferd_error_prefix(&e, "the message on %s is not JSON", m->topic);
        mime = "application/json";
        break;
    default:
        mime = "application/octet-stream";
        break;
    }
    if (e.code == INFERD_OK && !v) {
        v = inferd_value_bytes_take(m->data, m->len);
        m->data = NULL; /* the value's now */
    }
    if (e.code == INFERD_OK) /* takes v, also on failure */
        inferd_buffer_set_value(b, mime, v, &e);
    if (e.code != INFERD_OK)
        inferd_buffer_set_error(b, &e);
    return b;
}

static inferd_status source_process(inferd_instance *self, inferd_buffer *const *in, size_t n,
                                    inferd_error *err)
{
    (void)in, (void)n;
    source *s = inferd_instance_state(self);
    inferd_status st = mqtt_client_subscribe(s->client, s->topic, s->qos, on_message, s, err);
    while (st == INFERD_OK && !inferd_instance_stopping(self)) {
        pthread_mutex_lock(&s->lock);
        if (s->n == 0) {
            /* Woken by a message, or after a while to look at stopping. */
            struct timespec until = inferd__abs_us(inferd__now_us() + 100000);
            pthread_cond_timedwait(&s->arrived, &s->lock, &until);
        }
        message m = {0};
        if (s->n > 0) {
            m = s->ring[s->head];
            s->ring[s->head] = (message){0};
            s->head = (s->head + 1) % s->cap;
            s->n--;
        }
        pthread_mutex_unlock(&s->lock);
        if (!m.topic)
            continue;
        inferd_buffer *b = frame_of(s, &m);
        message_free(&m);
        st = b ? inferd_instance_push(self, 0, b, err)
               : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    return inferd_instance_stopping(self) ? INFERD_OK : st;
}

static const inferd_port_spec source_out[] = {
    INFERD_PORT_STATIC("image/jpeg", "image/png", "application/json", "application/octet-stream"),
    INFERD_PORT_END};

const inferd_component connectors_mqtt_source = INFERD_COMPONENT(
    INFERD_KIND_ELEMENT, .name = "mqtt_source",
    .description = "a frame per message of an MQTT topic (a producer): pictures, JSON or bytes",
    .props = source_props, .outputs = source_out, .flags = INFERD_COMPONENT_PRODUCER,
    .ops = INFERD_ELEMENT_OPS(source_init, source_process, source_deinit));

/* ---- mqtt_sink --------------------------------------------------------------------- */

static const inferd_prop_spec sink_props[] = {
    INFERD_PROP_STRING("topic", "the topic to publish each frame's result to", NULL),
    INFERD_PROP_INT("qos", "the messages' QoS", 0, 0, 2),
    INFERD_PROP_BOOL("retain", "publish with the retain flag", false),
    INFERD_PROP_STRING("confKey", "the connection: \"default\" (mqtt.server) or a name of "
                       "mqtt.profiles", "default"),
    INFERD_PROP_END,
};

typedef struct sink {
    mqtt_client *client;
    char *topic;
    int qos;
    bool retain;
} sink;

static void sink_deinit(inferd_instance *self)
{
    sink *k = inferd_instance_state(self);
    if (!k)
        return;
    mqtt_client_free(k->client); /* flushes what is queued, ~1 s at most */
    free(k->topic);
    free(k);
}

static inferd_status sink_init(inferd_instance *self, const inferd_props *p, inferd_error *err)
{
    sink *k = calloc(1, sizeof *k);
    if (!k || !(k->topic = strdup(inferd_props_string(p, "topic")))) {
        free(k);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    if (strpbrk(k->topic, "+#")) {
        inferd_status st = inferd_error_set(err, INFERD_EINVAL, "topic \"%s\": a topic to publish "
                                            "to has no wildcards (+, #)", k->topic);
        free(k->topic);
        free(k);
        return st;
    }
    k->qos = (int)inferd_props_int(p, "qos");
    k->retain = inferd_props_bool(p, "retain");
    inferd_instance_set_state(self, k);
    inferd_status st = connect(self, p, &k->client, err);
    if (st != INFERD_OK) { /* the host never calls deinit after a failed init */
        sink_deinit(self);
        inferd_instance_set_state(self, NULL);
    }
    return st;
}

static inferd_status sink_process(inferd_instance *self, inferd_buffer *const *in, size_t n,
                                  inferd_error *err)
{
    sink *k = inferd_instance_state(self);
    if (n < 1 || !in[0])
        return inferd_error_set(err, INFERD_EINVAL, "no input buffer");
    char *body = NULL;
    size_t len = 0;
    const char *type;
    inferd_status st = connectors_body(in[0], inferd_instance_name(self), &body, &len, &type, err);
    if (st == INFERD_OK)
        st = mqtt_client_publish(k->client, k->topic, body, len, k->qos, k->retain, err);
    free(body);
    inferd_instance_count(self, st == INFERD_OK   ? "published"
                                : st == INFERD_EBUSY ? "dropped"
                                                     : "failed",
                          1);
    return st;
}

static const inferd_port_spec any_in[] = {INFERD_PORT_STATIC("ANY"), INFERD_PORT_END};

const inferd_component connectors_mqtt_sink = INFERD_COMPONENT(
    INFERD_KIND_ELEMENT, .name = "mqtt_sink",
    .description = "publishes each frame's result (JSON, or an encoded picture) to an MQTT topic",
    .props = sink_props, .inputs = any_in, .flags = INFERD_COMPONENT_TAKES_ERRORS,
    .ops = INFERD_ELEMENT_OPS(sink_init, sink_process, sink_deinit));
