/* inferd/pipeline.h: pipelines of elements, built from a JSON pipeline file.
 *
 * A pipeline file names one stream and its elements (factory, props, next
 * links with ":port" suffixes); see docs/pipelines.md. Building a pipeline
 * checks it completely (factories, properties, links, ports, formats, cycles)
 * and creates every element; nothing runs until inferd_pipeline_start.
 *
 * Data goes in through `appsrc` elements and comes out of `appsink` elements
 * (the application's end of the pipeline), or through elements that read and
 * write files. Every element runs on its own thread behind a bounded queue:
 * a full queue makes its producer wait (back-pressure), all the way back to
 * inferd_pipeline_push.
 */
#ifndef INFERD_PIPELINE_H
#define INFERD_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferd/buffer.h"
#include "inferd/registry.h"
#include "inferd/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct inferd_pipeline inferd_pipeline;

/* Default capacity of each element's input queue, in buffers. */
#define INFERD_PIPELINE_QUEUE_DEFAULT 8

/* Builds a pipeline from JSON text. origin names the text in errors (a file
 * name). Errors name the element and, for links, both ends and ports. */
INFERD_API inferd_status inferd_pipeline_new(inferd_registry *reg, const char *json, size_t len,
                                             const char *origin, inferd_pipeline **out,
                                             inferd_error *err);
/* The same, reading a file. */
INFERD_API inferd_status inferd_pipeline_load(inferd_registry *reg, const char *path,
                                              inferd_pipeline **out, inferd_error *err);
/* Stops (discarding what is in flight) if running, then frees everything. */
INFERD_API void inferd_pipeline_free(inferd_pipeline *p);

INFERD_API const char *inferd_pipeline_name(const inferd_pipeline *p);
/* The names of its appsrc and appsink elements, in file order. */
INFERD_API size_t inferd_pipeline_source_count(const inferd_pipeline *p);
INFERD_API const char *inferd_pipeline_source_name(const inferd_pipeline *p, size_t i);
INFERD_API size_t inferd_pipeline_sink_count(const inferd_pipeline *p);
INFERD_API const char *inferd_pipeline_sink_name(const inferd_pipeline *p, size_t i);

/* Starts one thread per element. */
INFERD_API inferd_status inferd_pipeline_start(inferd_pipeline *p, inferd_error *err);

/* Pushes a buffer into an appsrc (source NULL: the only one). Takes buf,
 * also on failure. Assigns the next frame id of that source to the buffer
 * and returns it in *frame_id (optional). Waits while the pipeline is full,
 * up to timeout_ms (-1: forever): INFERD_ETIMEOUT then. */
INFERD_API inferd_status inferd_pipeline_push(inferd_pipeline *p, const char *source,
                                              inferd_buffer *buf, uint64_t *frame_id,
                                              int timeout_ms, inferd_error *err);
/* Says that a source will push nothing more; when every source has, the
 * pipeline drains and its sinks end. source NULL: every source. */
INFERD_API void inferd_pipeline_end(inferd_pipeline *p, const char *source);

/* Takes the next result from an appsink (sink NULL: the only one). *out is a
 * buffer reference the caller owns, or NULL at the end of the stream (after
 * inferd_pipeline_end and the drain). A buffer may carry an error
 * (inferd_buffer_error): the element that failed and why.
 * INFERD_ETIMEOUT when nothing came within timeout_ms. */
INFERD_API inferd_status inferd_pipeline_pull(inferd_pipeline *p, const char *sink, int timeout_ms,
                                              inferd_buffer **out, inferd_error *err);

/* Stops the pipeline: its producers are asked to end (a camera's stream, a
 * file not read to its end); drain true: ends every source and waits for
 * what is in flight to reach the sinks (results stay pullable); false:
 * discards it. Then joins the threads. Idempotent. */
INFERD_API void inferd_pipeline_stop(inferd_pipeline *p, bool drain);

/* Waits for the pipeline to end on its own: its producers (filesrc, a
 * video file) at the end of their input, its appsrc sources after
 * inferd_pipeline_end; then joins the threads. A producer of a live stream
 * never ends: stop that pipeline instead (its producers are asked to end,
 * inferd_instance_stopping). */
INFERD_API void inferd_pipeline_wait(inferd_pipeline *p);
/* True once a started pipeline has ended on its own: every element's work
 * is done (its producers reached the end of their input, its sources were
 * ended), and nothing more will come out. */
INFERD_API bool inferd_pipeline_ended(inferd_pipeline *p);

/* Counters for status and metrics. */
typedef struct inferd_pipeline_stats {
    uint64_t pushed;    /* buffers accepted by sources */
    uint64_t delivered; /* buffers that reached sinks (errors included) */
    uint64_t errors;    /* buffers that reached sinks carrying an error */
    uint64_t dropped;   /* buffers discarded by a stop without drain */
} inferd_pipeline_stats;
INFERD_API void inferd_pipeline_get_stats(inferd_pipeline *p, inferd_pipeline_stats *out);

/* Each element's counters, in file order. in: buffers it received; out:
 * buffers it handed on (to an element or the application); errors: frames
 * its processing failed; dropped: buffers lost at it by a stop without
 * drain; the time its process calls took (total and the last one). */
typedef struct inferd_pipeline_element_stats {
    const char *name;    /* borrowed from the pipeline */
    const char *factory; /* borrowed */
    uint64_t in, out, errors, dropped;
    size_t queue_depth, queue_capacity; /* its input queue now */
    uint64_t process_calls, process_us, last_process_us;
} inferd_pipeline_element_stats;
INFERD_API size_t inferd_pipeline_element_count(const inferd_pipeline *p);
/* false when i is out of range. */
INFERD_API bool inferd_pipeline_element_stats_at(inferd_pipeline *p, size_t i,
                                                 inferd_pipeline_element_stats *out);
/* The element's own counters (inferd_instance_count: a sink's retries, a
 * camera's reconnects): fn(ctx, name, value) for each. */
INFERD_API void inferd_pipeline_element_counters(inferd_pipeline *p, size_t i,
                                                 void (*fn)(void *ctx, const char *name,
                                                            int64_t value),
                                                 void *ctx);

#ifdef __cplusplus
}
#endif
#endif /* INFERD_PIPELINE_H */
