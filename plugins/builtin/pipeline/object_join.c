/* object_join.c: the object_join element of the built-in pipeline plugin:
 * the join of object_crop's fan-out. The parts of a frame (each with
 * object_crop's metadata/fanout {"index", "count", "object"}) arrive one by
 * one after the per-object elements; when all `count` are in, one buffer
 * goes on for the frame, with metadata/object under the join's name:
 * {"count": n, "objects": [the object, plus under `resultSource`'s name its
 * result (that element's value entry on the part), or "error": {"code",
 * "message"} for a part that failed]}, in the objects' order.
 *
 * The join is called with failed parts too (INFERD_COMPONENT_TAKES_ERRORS):
 * a part that failed still counts, so a frame always completes. Its output
 * is derived from the newest part that carries no error up its chain (its
 * metadata stays visible, its payload does not), with the error cleared;
 * json_serialize with dataSource set to the join prints only the joined
 * objects. Frames are held until complete (interleaved frames are fine).
 */
#include "inferd/plugin.h"

#include <stdlib.h>
#include <string.h>

#include "pipeline_elements.h"

typedef struct frame_parts {
    uint64_t frame;
    size_t count, got;
    inferd_value **slots;      /* owned: count of them, NULL until their part comes */
    inferd_buffer *carrier;    /* a reference: what the output derives from */
    struct frame_parts *next;
} frame_parts;

typedef struct joiner {
    char *result_source;
    frame_parts *frames;
} joiner;

const inferd_prop_spec pipeline_join_props[] = {
    INFERD_PROP_STRING("resultSource", "the element whose value entry on each part is that "
                       "object's result (e.g. a ctc_decode, a classify_topk)", NULL),
    INFERD_PROP_END,
};

inferd_status pipeline_join_init(inferd_instance *self, const inferd_props *p, inferd_error *err)
{
    joiner *j = calloc(1, sizeof *j);
    const char *src = inferd_props_string(p, "resultSource");
    if (!j || !(j->result_source = malloc(strlen(src) + 1))) {
        free(j);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    memcpy(j->result_source, src, strlen(src) + 1);
    inferd_instance_set_state(self, j);
    return INFERD_OK;
}

static void parts_free(frame_parts *f)
{
    for (size_t k = 0; f->slots && k < f->count; k++)
        inferd_value_free(f->slots[k]);
    free(f->slots);
    inferd_buffer_unref(f->carrier);
    free(f);
}

void pipeline_join_deinit(inferd_instance *self)
{
    joiner *j = inferd_instance_state(self);
    if (!j)
        return;
    for (frame_parts *f = j->frames, *next; f; f = next) {
        next = f->next;
        parts_free(f);
    }
    free(j->result_source);
    free(j);
}

/* The newest metadata/fanout entry of the part. */
static bool fanout_of(const inferd_buffer *b, inferd_meta *out)
{
    bool found = false;
    inferd_meta m;
    for (size_t i = 0; inferd_buffer_meta_at(b, i, &m); i++)
        if (m.value && strcmp(m.format, "metadata/fanout") == 0) {
            *out = m;
            found = true;
        }
    return found;
}

/* The object of a part with its result (or its error) added. */
static inferd_value *joined_object(const joiner *j, const inferd_buffer *b,
                                   const inferd_value *object)
{
    inferd_value *o = inferd_value_is(object, INFERD_VALUE_OBJECT) ? inferd_value_copy(object)
                                                                   : inferd_value_object();
    if (!o)
        return NULL;
    const inferd_error *e = inferd_buffer_error(b);
    inferd_meta m;
    if (e) {
        inferd_value *ev = inferd_value_object();
        inferd_value_object_set(ev, "code", inferd_value_string(inferd_status_name(e->code)),
                                NULL);
        inferd_value_object_set(ev, "message", inferd_value_string(e->message), NULL);
        inferd_value_object_set(o, "error", ev, NULL);
    } else if (inferd_buffer_find_meta(b, j->result_source, NULL, &m) && m.value) {
        inferd_value_object_set(o, j->result_source, inferd_value_copy(m.value), NULL);
    }
    return o;
}

/* The buffer the frame's output derives from: the part itself, or the
 * nearest ancestor without an error. The part's reference keeps its chain
 * alive; deriving adds one of its own. */
static inferd_buffer *clean_carrier(inferd_buffer *b)
{
    const inferd_buffer *c = b;
    while (c && inferd_buffer_error(c))
        c = inferd_buffer_parent(c);
    return (inferd_buffer *)(c ? c : b); /* derive only reads it and takes a reference */
}

static inferd_status emit(inferd_instance *self, frame_parts *f, inferd_error *err)
{
    inferd_buffer *out = inferd_buffer_derive(f->carrier); /* the carrier has no error */
    inferd_value *meta = inferd_value_object(), *objects = inferd_value_array();
    inferd_status st = out && meta && objects
                           ? INFERD_OK
                           : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    for (size_t k = 0; st == INFERD_OK && k < f->count; k++) {
        st = inferd_value_array_push(objects, f->slots[k], err);
        f->slots[k] = NULL; /* taken */
    }
    if (st == INFERD_OK &&
        !(st = inferd_value_object_set(meta, "count", inferd_value_int((int64_t)f->count), err))) {
        st = inferd_value_object_set(meta, "objects", objects, err);
        objects = NULL; /* taken */
    }
    inferd_value_free(objects);
    if (st == INFERD_OK) {
        st = inferd_buffer_add_meta_value(out, inferd_instance_name(self), "metadata/object", meta,
                                          err);
        meta = NULL; /* taken */
    }
    inferd_value_free(meta);
    if (st != INFERD_OK) {
        inferd_buffer_unref(out);
        return st;
    }
    return inferd_instance_push(self, 0, out, err);
}

inferd_status pipeline_join_process(inferd_instance *self, inferd_buffer *const *in, size_t n,
                                    inferd_error *err)
{
    joiner *j = inferd_instance_state(self);
    if (n < 1 || !in[0])
        return inferd_error_set(err, INFERD_EINVAL, "expected one input");
    inferd_buffer *b = in[0];
    inferd_meta fo = {0};
    if (!fanout_of(b, &fo))
        return inferd_error_set(err, INFERD_EINVAL, "a buffer without metadata/fanout: "
                                "object_join gathers what an object_crop fanned out");
    int64_t index = inferd_value_int_or(inferd_value_object_get(fo.value, "index"), -1);
    int64_t count = inferd_value_int_or(inferd_value_object_get(fo.value, "count"), -1);
    uint64_t frame = inferd_buffer_frame_id(b);
    frame_parts **at = &j->frames, *f = NULL;
    for (; *at; at = &(*at)->next)
        if ((*at)->frame == frame) {
            f = *at;
            break;
        }
    if (!f) {
        if (count < 0 || index < 0 || (count > 0 && index >= count))
            return inferd_error_set(err, INFERD_EINVAL, "metadata/fanout of frame %llu: index "
                                    "%lld of count %lld", (unsigned long long)frame,
                                    (long long)index, (long long)count);
        if (!(f = calloc(1, sizeof *f)) ||
            !(f->slots = calloc(count > 0 ? (size_t)count : 1, sizeof *f->slots))) {
            free(f);
            return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        }
        f->frame = frame;
        f->count = (size_t)count;
        *at = f; /* appended */
    }
    if (f->count > 0) {
        if (index < 0 || (size_t)index >= f->count)
            return inferd_error_set(err, INFERD_EINVAL, "metadata/fanout of frame %llu: index "
                                    "%lld of count %zu", (unsigned long long)frame,
                                    (long long)index, f->count);
        inferd_value *o = joined_object(j, b, inferd_value_object_get(fo.value, "object"));
        if (!o)
            return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        if (!f->slots[index])
            f->got++;
        inferd_value_free(f->slots[index]); /* a part twice: the last wins */
        f->slots[index] = o;
    }
    inferd_buffer *carrier = clean_carrier(b);
    if (!f->carrier || !inferd_buffer_error(carrier)) {
        inferd_buffer_unref(f->carrier);
        f->carrier = inferd_buffer_ref(carrier);
    }
    if (f->got < f->count)
        return INFERD_OK;
    /* Complete: unlink and send. */
    for (at = &j->frames; *at != f; at = &(*at)->next)
        ;
    *at = f->next;
    inferd_status st = emit(self, f, err);
    parts_free(f);
    return st;
}
