/* pipeline/internal.h: what the pipeline's files share. Not installed.
 *
 * build.c turns a pipeline file into this graph (checking everything);
 * engine.c runs it. */
#ifndef INFERD_PIPELINE_INTERNAL_H
#define INFERD_PIPELINE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "core/queue.h"
#include "inferd/pipeline.h"

#define NO_LINK ((size_t)-1)

/* Where an output port goes: an element's input port, or nowhere. */
typedef struct pl_link {
    size_t to;      /* element index, or NO_LINK */
    size_t port;    /* input port of that element */
} pl_link;

/* A frame waiting in a sync element until every input has it. */
typedef struct pl_pending {
    struct pl_pending *next;
    uint64_t frame;
    inferd_buffer **inputs; /* n_in references, NULL where not arrived */
    size_t arrived;
} pl_pending;

typedef struct pl_element {
    char *name;                         /* owned */
    const inferd_component *comp;       /* borrowed from the registry */
    inferd_instance *inst;              /* owned */
    inferd_pipeline *pipeline;          /* back pointer */
    bool sync;                          /* status 1 */
    bool is_source;                     /* no input ports: fed by inferd_pipeline_push */
    bool producer;                      /* no input ports: makes its own data (filesrc) */
    size_t n_in, n_out;                 /* ports in use, static and dynamic */
    pl_link *out;                       /* n_out links, owned */
    inferd_queue *in_queue;             /* owned: (port, buffer) items */
    inferd_queue *app_queue;            /* owned, or NULL: results for inferd_pipeline_pull */
    pthread_t thread;
    bool thread_started;
    size_t eos_seen;                    /* worker thread only */
    pl_pending *pending;                /* worker thread only (sync elements) */
    size_t n_pending;
    atomic_uint_fast64_t next_frame;    /* sources: the next frame id */
    atomic_bool ended;                  /* sources: inferd_pipeline_end was called */
    /* Counters for inferd_pipeline_element_stats. */
    atomic_uint_fast64_t count_in, count_out, count_errors, count_dropped, process_us, process_calls,
        last_process_us;
} pl_element;

struct inferd_pipeline {
    char *name;                         /* the stream's name, owned */
    inferd_registry *reg;               /* borrowed */
    pl_element *elems;                  /* owned, in file order */
    size_t n;
    size_t queue_capacity;
    atomic_bool running, stopping, discard;
    atomic_uint_fast64_t pushed, delivered, errors, dropped;
    atomic_size_t finished;             /* element threads that have returned */
};

/* A queue item: a buffer arriving on an input port; buf NULL is the end of
 * the stream on that port. */
typedef struct pl_item {
    size_t port;
    inferd_buffer *buf;
} pl_item;

/* engine.c: the push function installed on every element instance. */
inferd_status inferd__pipeline_route(void *ctx, inferd_instance *from, size_t port,
                                     inferd_buffer *buf, inferd_error *err);

/* Aliases (aliases.c): the pipeline seed's element names. inferd's factory
 * for one of them, or NULL. */
const char *pl_alias_factory(const char *factory);
/* props of an element of an aliased factory with the seed's property names
 * turned into inferd's (*out, owned; NULL when nothing is aliased); a
 * property with no counterpart is EINVAL, all of them in one message, each
 * with what to do. */
inferd_status pl_alias_props(const char *factory, const char *element, const char *origin,
                             const inferd_value *props, inferd_value **out, inferd_error *err);

#endif
