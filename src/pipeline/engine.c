/* pipeline/engine.c: running a built pipeline.
 *
 * One worker thread per element pops (port, buffer) items from the element's
 * bounded queue. An async element (status 0) processes each buffer as it
 * comes; a sync element (status 1) waits until every input has a buffer of
 * the same frame. A buffer that carries an error is not processed: it goes
 * on to the sinks, so that the caller learns which element failed. The end
 * of the stream travels as an item without a buffer; an element ends when
 * all its inputs have ended, after passing the end on.
 */
#include "pipeline/internal.h"
#include "plugin/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "inferd/log.h"

#define LOG "pipeline"
/* How long a blocked producer waits before looking at the stop flag again. */
#define WAIT_SLICE_MS 100
/* A sync element keeps at most this many incomplete frames per queue slot. */
#define PENDING_PER_SLOT 4

static void drop_item(void *item)
{
    pl_item *it = item;
    inferd_buffer_unref(it->buf);
    free(it);
}

/* Puts an item on a queue, waiting for room in slices so that a stop without
 * drain is never stuck behind a full queue. Takes buf in every case; the
 * caller counts what it loses. */
static inferd_status enqueue(inferd_pipeline *p, inferd_queue *q, size_t port, inferd_buffer *buf,
                             int timeout_ms, inferd_error *err)
{
    pl_item *it = malloc(sizeof *it);
    if (!it) {
        inferd_buffer_unref(buf);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    it->port = port;
    it->buf = buf;
    int waited = 0;
    for (;;) {
        if (atomic_load(&p->discard)) {
            drop_item(it);
            return inferd_error_set(err, INFERD_ESTATE, "the pipeline is stopping");
        }
        int slice = timeout_ms < 0 || timeout_ms - waited > WAIT_SLICE_MS ? WAIT_SLICE_MS
                                                                          : timeout_ms - waited;
        inferd_status st = inferd_queue_push(q, it, slice);
        if (st == INFERD_OK)
            return INFERD_OK;
        waited += slice;
        if (st == INFERD_ESTATE || (timeout_ms >= 0 && waited >= timeout_ms)) {
            drop_item(it);
            return st == INFERD_ESTATE
                       ? inferd_error_set(err, INFERD_ESTATE, "the pipeline is stopping")
                       : inferd_error_set(err, INFERD_ETIMEOUT,
                                          "the pipeline stayed full for %d ms", timeout_ms);
        }
    }
}

/* Sends buf (taken) out of output port `port` of el: to the linked element,
 * or to the application's queue. */
static inferd_status send_out(pl_element *el, size_t port, inferd_buffer *buf, inferd_error *err)
{
    inferd_pipeline *p = el->pipeline;
    inferd_status st;
    if (port < el->n_out && el->out[port].to != NO_LINK) {
        pl_element *to = &p->elems[el->out[port].to];
        size_t in = el->out[port].port;
        /* Checked at hand-over, as the links were at load: what does not fit
         * the receiving port goes on as this frame's error, never as data. */
        const inferd_port_spec *spec = inferd__port_spec(to->comp->inputs, in);
        if (buf && !inferd_buffer_error(buf) && !inferd__port_takes(spec, buf)) {
            char want[256], got[128];
            inferd_error e;
            inferd_error_set(&e, INFERD_ETYPE, "element %s (%s): input %zu takes %s; element %s "
                             "gave %s", to->name, to->comp->name, in,
                             inferd__port_formats(spec, want, sizeof want), el->name,
                             inferd__buffer_formats(buf, got, sizeof got));
            inferd_buffer_set_error(buf, &e);
        }
        st = enqueue(p, to->in_queue, in, buf, -1, err);
        if (buf) {
            atomic_fetch_add(st == INFERD_OK ? &el->count_out : &el->count_dropped, 1);
            if (st != INFERD_OK)
                atomic_fetch_add(&p->dropped, 1);
        }
        return st;
    }
    if (el->app_queue) {
        bool failed = buf && inferd_buffer_error(buf);
        st = enqueue(p, el->app_queue, port, buf, -1, err);
        if (buf) {
            atomic_fetch_add(st == INFERD_OK ? &p->delivered : &p->dropped, 1);
            atomic_fetch_add(st == INFERD_OK ? &el->count_out : &el->count_dropped, 1);
        }
        if (st == INFERD_OK && failed)
            atomic_fetch_add(&p->errors, 1);
        return st;
    }
    inferd_buffer_unref(buf);
    return inferd_error_set(err, INFERD_ERANGE, "element %s: output port %zu is not linked",
                            el->name, port);
}

inferd_status inferd__pipeline_route(void *ctx, inferd_instance *from, size_t port,
                                     inferd_buffer *buf, inferd_error *err)
{
    pl_element *el = ctx;
    if (!buf)
        return inferd_error_set(err, INFERD_EINVAL, "element %s pushed no buffer", el->name);
    if (el->producer) { /* its frames are numbered here, as a source's are at push */
        inferd_buffer_set_frame(buf, atomic_fetch_add(&el->next_frame, 1),
                                inferd_buffer_stream_id(buf), inferd_buffer_timestamp(buf));
        atomic_fetch_add(&el->pipeline->pushed, 1);
    }
    return send_out(el, port, buf, err);
}

/* Passes a failed or errored frame on (taking buf), on output 0 or, for an
 * element without outputs, nowhere (it is counted as delivered with an error
 * when the element is the application's end). */
static void pass_error(pl_element *el, inferd_buffer *buf)
{
    if (el->n_out > 0 || el->app_queue) {
        inferd_error ignored;
        send_out(el, 0, buf, &ignored);
        return;
    }
    const inferd_error *e = inferd_buffer_error(buf);
    inferd_log_warn(LOG, "%s: frame %llu ends here with an error: %s", el->name,
                    (unsigned long long)inferd_buffer_frame_id(buf), e ? e->message : "?");
    atomic_fetch_add(&el->pipeline->errors, 1);
    inferd_buffer_unref(buf);
}

/* Runs process on a full set of inputs (borrowed); on failure the error goes
 * on with the first input. An input that carries an error goes on unseen,
 * unless the element takes errors (INFERD_COMPONENT_TAKES_ERRORS). */
static void run_process(pl_element *el, inferd_buffer **inputs)
{
    bool takes_errors = inferd_instance_component(el->inst)->flags & INFERD_COMPONENT_TAKES_ERRORS;
    for (size_t i = 0; !takes_errors && (i < el->n_in || (el->is_source && i == 0)); i++) {
        if (inputs[i] && inferd_buffer_error(inputs[i])) {
            pass_error(el, inferd_buffer_ref(inputs[i]));
            return;
        }
    }
    inferd_error err = {0};
    size_t n = el->is_source ? 1 : el->n_in;
    uint64_t t0 = inferd__now_us();
    inferd_status st = inferd_instance_process(el->inst, inputs, n, &err);
    uint64_t took = inferd__now_us() - t0;
    atomic_fetch_add(&el->process_us, took);
    atomic_fetch_add(&el->process_calls, 1);
    atomic_store(&el->last_process_us, took);
    if (st != INFERD_OK) {
        /* Failing because the pipeline is being discarded is no news: the
         * frame was counted as dropped where its push failed. */
        if (atomic_load(&el->pipeline->discard))
            return;
        atomic_fetch_add(&el->count_errors, 1);
        for (size_t i = 0; i < n; i++)
            if (inputs[i]) {
                inferd_buffer_set_error(inputs[i], &err);
                pass_error(el, inferd_buffer_ref(inputs[i]));
                break;
            }
    }
}

static void pending_free(pl_pending *pf, size_t n_in)
{
    for (size_t i = 0; i < n_in; i++)
        inferd_buffer_unref(pf->inputs[i]);
    free(pf->inputs);
    free(pf);
}

/* A sync element gives up on a frame that will never be complete: it goes
 * on with an error naming the inputs that never came. */
static void flush_incomplete(pl_element *el, pl_pending *pf)
{
    inferd_buffer *carrier = NULL;
    char missing[128] = "";
    size_t pos = 0;
    for (size_t i = 0; i < el->n_in; i++) {
        if (pf->inputs[i] && !carrier)
            carrier = inferd_buffer_ref(pf->inputs[i]);
        else if (!pf->inputs[i] && pos < sizeof missing)
            pos += (size_t)snprintf(missing + pos, sizeof missing - pos, "%s%zu", pos ? ", " : "",
                                    i);
    }
    if (carrier) {
        inferd_error e;
        inferd_error_set(&e, INFERD_ESTATE, "%s: frame %llu incomplete: input port(s) %s never "
                         "got it", el->name, (unsigned long long)pf->frame, missing);
        inferd_buffer_set_error(carrier, &e);
        pass_error(el, carrier);
    }
    pending_free(pf, el->n_in);
}

static void handle_sync(pl_element *el, size_t port, inferd_buffer *buf)
{
    uint64_t frame = inferd_buffer_frame_id(buf);
    pl_pending **pp = &el->pending, *pf = NULL;
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->frame == frame) {
            pf = *pp;
            break;
        }
    if (!pf) {
        pf = calloc(1, sizeof *pf);
        if (!pf || !(pf->inputs = calloc(el->n_in, sizeof *pf->inputs))) {
            free(pf);
            inferd_error e;
            inferd_error_set(&e, INFERD_ENOMEM, "%s: out of memory", el->name);
            inferd_buffer_set_error(buf, &e);
            pass_error(el, buf);
            return;
        }
        pf->frame = frame;
        *pp = pf; /* appended: the list stays oldest first */
        el->n_pending++;
    }
    if (pf->inputs[port]) { /* the same frame twice on one port: keep the newer */
        inferd_buffer_unref(pf->inputs[port]);
        pf->arrived--;
    }
    pf->inputs[port] = buf;
    if (++pf->arrived < el->n_in) {
        /* Bounded: the oldest incomplete frame gives way. */
        if (el->n_pending > el->pipeline->queue_capacity * PENDING_PER_SLOT) {
            pl_pending *oldest = el->pending;
            el->pending = oldest->next;
            el->n_pending--;
            flush_incomplete(el, oldest);
        }
        return;
    }
    for (pp = &el->pending; *pp != pf; pp = &(*pp)->next)
        ;
    *pp = pf->next;
    el->n_pending--;
    run_process(el, pf->inputs);
    pending_free(pf, el->n_in);
}

static void handle(pl_element *el, size_t port, inferd_buffer *buf)
{
    atomic_fetch_add(&el->count_in, 1);
    if (atomic_load(&el->pipeline->discard)) {
        atomic_fetch_add(&el->pipeline->dropped, 1);
        atomic_fetch_add(&el->count_dropped, 1);
        inferd_buffer_unref(buf);
        return;
    }
    if (el->sync && el->n_in > 1) {
        handle_sync(el, port, buf);
        return;
    }
    size_t n = el->n_in > 0 ? el->n_in : 1;
    inferd_buffer *stack[8], **inputs = n <= 8 ? stack : calloc(n, sizeof *inputs);
    if (!inputs) {
        inferd_buffer_unref(buf);
        return;
    }
    memset(inputs, 0, n * sizeof *inputs);
    inputs[port < n ? port : 0] = buf;
    run_process(el, inputs);
    inferd_buffer_unref(buf);
    if (inputs != stack)
        free(inputs);
}

/* A producer's whole life: one process call that pushes everything, then
 * the end of its stream. A failure reaches the sinks as an errored frame. */
static void produce(pl_element *el)
{
    inferd_error err = {0};
    if (inferd_instance_process(el->inst, NULL, 0, &err) != INFERD_OK &&
        !atomic_load(&el->pipeline->discard)) {
        inferd_buffer *b = inferd_buffer_new();
        if (b) {
            inferd_buffer_set_frame(b, atomic_fetch_add(&el->next_frame, 1), 0, 0);
            inferd_buffer_set_error(b, &err);
            pass_error(el, b);
        }
    }
}

/* Every input ended: flush what a sync element still holds, then pass the
 * end on. */
static void end_stream(pl_element *el)
{
    while (el->pending) {
        pl_pending *pf = el->pending;
        el->pending = pf->next;
        el->n_pending--;
        flush_incomplete(el, pf);
    }
    inferd_error ignored;
    for (size_t o = 0; o < el->n_out; o++)
        if (el->out[o].to != NO_LINK)
            send_out(el, o, NULL, &ignored);
    if (el->app_queue)
        enqueue(el->pipeline, el->app_queue, 0, NULL, -1, &ignored);
}

static void *work(pl_element *el);

static void *worker(void *arg)
{
    pl_element *el = arg;
    work(el);
    atomic_fetch_add(&el->pipeline->finished, 1);
    return NULL;
}

static void *work(pl_element *el)
{
    if (el->producer) {
        produce(el);
        end_stream(el);
        return NULL;
    }
    size_t inputs = el->is_source ? 1 : el->n_in;
    for (;;) {
        void *item = NULL;
        if (inferd_queue_pop(el->in_queue, &item, -1) != INFERD_OK)
            break; /* closed and empty: a stop without drain */
        pl_item *it = item;
        if (it->buf) {
            handle(el, it->port, it->buf);
            free(it);
            continue;
        }
        free(it);
        if (++el->eos_seen == inputs) {
            end_stream(el);
            break;
        }
    }
    return NULL;
}

inferd_status inferd_pipeline_start(inferd_pipeline *p, inferd_error *err)
{
    if (atomic_load(&p->running) || atomic_load(&p->stopping))
        return inferd_error_set(err, INFERD_ESTATE, "pipeline %s was started already", p->name);
    for (size_t e = 0; e < p->n; e++) {
        if (pthread_create(&p->elems[e].thread, NULL, worker, &p->elems[e]) != 0) {
            inferd_pipeline_stop(p, false);
            return inferd_error_set(err, INFERD_ENOMEM, "pipeline %s: cannot start a thread for "
                                    "element %s", p->name, p->elems[e].name);
        }
        p->elems[e].thread_started = true;
    }
    atomic_store(&p->running, true);
    inferd_log_debug(LOG, "pipeline %s started (%zu threads)", p->name, p->n);
    return INFERD_OK;
}

/* Finds an element by name among those that match (sources or sinks); with
 * name NULL, the only one. */
static pl_element *endpoint(inferd_pipeline *p, const char *name, bool source, inferd_error *err)
{
    pl_element *found = NULL;
    size_t count = 0;
    for (size_t e = 0; e < p->n; e++) {
        pl_element *el = &p->elems[e];
        bool match = source ? el->is_source : el->app_queue != NULL;
        if (name && strcmp(el->name, name) == 0) {
            if (!match) {
                inferd_error_set(err, INFERD_EINVAL, "element %s of pipeline %s is not %s",
                                 name, p->name, source ? "a source (appsrc)" : "a sink (appsink)");
                return NULL;
            }
            return el;
        }
        if (!name && match) {
            found = el;
            count++;
        }
    }
    if (name)
        inferd_error_set(err, INFERD_ENOTFOUND, "pipeline %s has no element %s", p->name, name);
    else if (count != 1)
        inferd_error_set(err, INFERD_EINVAL, "pipeline %s has %zu %s: name the one to use",
                         p->name, count, source ? "sources" : "sinks");
    return name || count != 1 ? NULL : found;
}

inferd_status inferd_pipeline_push(inferd_pipeline *p, const char *source, inferd_buffer *buf,
                                   uint64_t *frame_id, int timeout_ms, inferd_error *err)
{
    pl_element *el = endpoint(p, source, true, err);
    inferd_status st = INFERD_OK;
    if (!el)
        st = err ? err->code : INFERD_EINVAL;
    else if (!buf)
        st = inferd_error_set(err, INFERD_EINVAL, "no buffer to push");
    else if (!atomic_load(&p->running) || atomic_load(&p->stopping) || atomic_load(&el->ended))
        st = inferd_error_set(err, INFERD_ESTATE, "pipeline %s: source %s is not accepting input "
                              "(not started, ended or stopping)", p->name, el->name);
    if (st != INFERD_OK) {
        inferd_buffer_unref(buf);
        return st;
    }
    uint64_t id = atomic_fetch_add(&el->next_frame, 1);
    inferd_buffer_set_frame(buf, id, inferd_buffer_stream_id(buf), inferd_buffer_timestamp(buf));
    if ((st = enqueue(p, el->in_queue, 0, buf, timeout_ms, err)) != INFERD_OK)
        return st;
    atomic_fetch_add(&p->pushed, 1);
    if (frame_id)
        *frame_id = id;
    return INFERD_OK;
}

void inferd_pipeline_end(inferd_pipeline *p, const char *source)
{
    for (size_t e = 0; e < p->n; e++) {
        pl_element *el = &p->elems[e];
        if (!el->is_source || (source && strcmp(el->name, source) != 0))
            continue;
        if (!atomic_exchange(&el->ended, true)) {
            inferd_error ignored;
            enqueue(p, el->in_queue, 0, NULL, -1, &ignored);
        }
    }
}

inferd_status inferd_pipeline_pull(inferd_pipeline *p, const char *sink, int timeout_ms,
                                   inferd_buffer **out, inferd_error *err)
{
    *out = NULL;
    pl_element *el = endpoint(p, sink, false, err);
    if (!el)
        return err ? err->code : INFERD_EINVAL;
    void *item = NULL;
    inferd_status st = inferd_queue_pop(el->app_queue, &item, timeout_ms);
    if (st == INFERD_ETIMEOUT)
        return inferd_error_set(err, INFERD_ETIMEOUT, "no result from %s within %d ms", el->name,
                                timeout_ms);
    if (st != INFERD_OK)
        return INFERD_OK; /* closed and drained: the end */
    pl_item *it = item;
    *out = it->buf;
    free(it);
    if (!*out) /* the end: keep saying so to later pulls */
        inferd_queue_close(el->app_queue);
    return INFERD_OK;
}

void inferd_pipeline_stop(inferd_pipeline *p, bool drain)
{
    if (atomic_exchange(&p->stopping, true))
        return;
    if (drain) {
        inferd_pipeline_end(p, NULL);
    } else {
        atomic_store(&p->discard, true);
        for (size_t e = 0; e < p->n; e++)
            if (p->elems[e].in_queue)
                inferd_queue_close(p->elems[e].in_queue);
    }
    for (size_t e = 0; e < p->n; e++)
        if (p->elems[e].thread_started) {
            pthread_join(p->elems[e].thread, NULL);
            p->elems[e].thread_started = false;
        }
    atomic_store(&p->running, false);
}

bool inferd_pipeline_ended(inferd_pipeline *p)
{
    return atomic_load(&p->running) && atomic_load(&p->finished) == p->n;
}

void inferd_pipeline_wait(inferd_pipeline *p)
{
    for (size_t e = 0; e < p->n; e++)
        if (p->elems[e].thread_started) {
            pthread_join(p->elems[e].thread, NULL);
            p->elems[e].thread_started = false;
        }
    atomic_store(&p->running, false);
}

void inferd_pipeline_free(inferd_pipeline *p)
{
    if (!p)
        return;
    inferd_pipeline_stop(p, false);
    for (size_t e = 0; e < p->n; e++) {
        pl_element *el = &p->elems[e];
        while (el->pending) {
            pl_pending *pf = el->pending;
            el->pending = pf->next;
            pending_free(pf, el->n_in);
        }
        inferd_instance_destroy(el->inst);
        inferd_queue_free(el->in_queue, drop_item);
        inferd_queue_free(el->app_queue, drop_item);
        free(el->out);
        free(el->name);
    }
    free(p->elems);
    free(p->name);
    free(p);
}

void inferd_pipeline_get_stats(inferd_pipeline *p, inferd_pipeline_stats *out)
{
    out->pushed = atomic_load(&p->pushed);
    out->delivered = atomic_load(&p->delivered);
    out->errors = atomic_load(&p->errors);
    out->dropped = atomic_load(&p->dropped);
}

size_t inferd_pipeline_element_count(const inferd_pipeline *p) { return p->n; }

bool inferd_pipeline_element_stats_at(inferd_pipeline *p, size_t i,
                                      inferd_pipeline_element_stats *out)
{
    if (i >= p->n)
        return false;
    pl_element *el = &p->elems[i];
    *out = (inferd_pipeline_element_stats){
        .name = el->name,
        .factory = el->comp->name,
        .in = atomic_load(&el->count_in),
        .out = atomic_load(&el->count_out),
        .errors = atomic_load(&el->count_errors),
        .dropped = atomic_load(&el->count_dropped),
        .queue_depth = el->in_queue ? inferd_queue_length(el->in_queue) : 0,
        .queue_capacity = el->in_queue ? inferd_queue_capacity(el->in_queue) : 0,
        .process_calls = atomic_load(&el->process_calls),
        .process_us = atomic_load(&el->process_us),
        .last_process_us = atomic_load(&el->last_process_us),
    };
    return true;
}

void inferd_pipeline_element_counters(inferd_pipeline *p, size_t i,
                                      void (*fn)(void *ctx, const char *name, int64_t value),
                                      void *ctx)
{
    if (i < p->n)
        inferd__instance_counters(p->elems[i].inst, fn, ctx);
}
