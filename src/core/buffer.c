/* buffer.c: the reference-counted unit of data that flows through inferd.
 *
 * Ownership: the buffer owns its payload (value and its format string, image,
 * or the tensors and their array), every metadata entry (its producer and
 * format strings and its item) and its error. All of it is freed by the last
 * unref.
 *
 * Locking: the reference count is atomic. The metadata list and the error are
 * guarded by `lock`, since several elements may add and read them at once.
 * The payload and the frame fields are not: the creator sets them before it
 * shares the buffer (buffer.h), and publishing the buffer to another thread
 * (a queue, a ref) orders those writes before the other thread's reads.
 */
#include "inferd/buffer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* One metadata item: exactly one pointer is set. */
struct meta_item {
    inferd_value *value;
    inferd_tensor *tensor;
    inferd_image *image;
};

struct meta_entry {
    char *producer; /* owned */
    char *format;   /* owned */
    struct meta_item item;
};

/* An item replaced by a newer one for the same (producer, format). It is kept
 * until the buffer is freed because buffer.h promises that the pointers
 * inferd_buffer_find_meta handed out live as long as the buffer, and another
 * thread may still be reading the old item. */
struct retired {
    struct meta_item item;
    struct retired *next;
};

struct inferd_buffer {
    atomic_uint refs;
    inferd_buffer *parent;   /* owned reference, or NULL: see inferd_buffer_derive */

    uint64_t frame_id;
    uint32_t stream_id;
    int64_t timestamp_ns;

    inferd_payload_kind kind;
    char *value_format;      /* owned; INFERD_PAYLOAD_VALUE only */
    inferd_value *value;     /* owned */
    inferd_image *image;     /* owned */
    inferd_tensor **tensors; /* owned, with each tensor */
    size_t ntensors;

    pthread_mutex_t lock; /* guards everything below */
    struct meta_entry *meta;
    size_t nmeta, meta_cap;
    struct retired *retired;
    bool has_error;
    inferd_error error;
};

/* The lock is taken by readers too, which get a const buffer; the buffer
 * itself is never a const object (it comes from malloc), so this is sound. */
static void lock(const inferd_buffer *buf)
{
    pthread_mutex_lock((pthread_mutex_t *)&buf->lock);
}

static void unlock(const inferd_buffer *buf)
{
    pthread_mutex_unlock((pthread_mutex_t *)&buf->lock);
}

static void meta_item_free(struct meta_item item)
{
    inferd_value_free(item.value);
    inferd_tensor_free(item.tensor);
    inferd_image_free(item.image);
}

static void tensors_free(inferd_tensor **tensors, size_t n)
{
    for (size_t i = 0; tensors && i < n; i++)
        inferd_tensor_free(tensors[i]);
    free(tensors);
}

static void payload_clear(inferd_buffer *buf)
{
    free(buf->value_format);
    inferd_value_free(buf->value);
    inferd_image_free(buf->image);
    tensors_free(buf->tensors, buf->ntensors);
    buf->value_format = NULL;
    buf->value = NULL;
    buf->image = NULL;
    buf->tensors = NULL;
    buf->ntensors = 0;
    buf->kind = INFERD_PAYLOAD_NONE;
}

inferd_buffer *inferd_buffer_new(void)
{
    inferd_buffer *buf = calloc(1, sizeof *buf);
    if (!buf)
        return NULL;
    if (pthread_mutex_init(&buf->lock, NULL) != 0) {
        free(buf);
        return NULL;
    }
    atomic_init(&buf->refs, 1);
    return buf;
}

inferd_buffer *inferd_buffer_ref(inferd_buffer *buf)
{
    /* Relaxed: taking a reference needs no ordering, the caller already
     * holds one and so can see the buffer. */
    if (buf)
        atomic_fetch_add_explicit(&buf->refs, 1, memory_order_relaxed);
    return buf;
}

static void buffer_free(inferd_buffer *buf)
{
    payload_clear(buf);
    for (size_t i = 0; i < buf->nmeta; i++) {
        free(buf->meta[i].producer);
        free(buf->meta[i].format);
        meta_item_free(buf->meta[i].item);
    }
    free(buf->meta);
    for (struct retired *r = buf->retired, *next; r; r = next) {
        next = r->next;
        meta_item_free(r->item);
        free(r);
    }
    pthread_mutex_destroy(&buf->lock);
    inferd_buffer *parent = buf->parent;
    free(buf);
    inferd_buffer_unref(parent);
}

inferd_buffer *inferd_buffer_derive(inferd_buffer *parent)
{
    if (!parent)
        return NULL;
    inferd_buffer *buf = inferd_buffer_new();
    if (!buf)
        return NULL;
    buf->parent = inferd_buffer_ref(parent);
    buf->frame_id = parent->frame_id;
    buf->stream_id = parent->stream_id;
    buf->timestamp_ns = parent->timestamp_ns;
    inferd_buffer_set_error(buf, inferd_buffer_error(parent));
    return buf;
}

const inferd_buffer *inferd_buffer_parent(const inferd_buffer *buf)
{
    return buf ? buf->parent : NULL;
}

void inferd_buffer_unref(inferd_buffer *buf)
{
    if (!buf)
        return;
    /* Release on every drop and acquire before freeing, so that all writes
     * made through other references happen before the free. */
    if (atomic_fetch_sub_explicit(&buf->refs, 1, memory_order_release) == 1) {
        atomic_thread_fence(memory_order_acquire);
        buffer_free(buf);
    }
}

unsigned inferd_buffer_refcount(const inferd_buffer *buf)
{
    return buf ? atomic_load_explicit(&buf->refs, memory_order_relaxed) : 0;
}

/* --- frame ------------------------------------------------------------------ */

void inferd_buffer_set_frame(inferd_buffer *buf, uint64_t frame_id, uint32_t stream_id,
                             int64_t timestamp_ns)
{
    if (!buf)
        return;
    buf->frame_id = frame_id;
    buf->stream_id = stream_id;
    buf->timestamp_ns = timestamp_ns;
}

uint64_t inferd_buffer_frame_id(const inferd_buffer *buf)
{
    return buf ? buf->frame_id : 0;
}

uint32_t inferd_buffer_stream_id(const inferd_buffer *buf)
{
    return buf ? buf->stream_id : 0;
}

int64_t inferd_buffer_timestamp(const inferd_buffer *buf)
{
    return buf ? buf->timestamp_ns : 0;
}

/* --- payload ---------------------------------------------------------------- */

inferd_status inferd_buffer_set_value(inferd_buffer *buf, const char *format, inferd_value *value,
                                      inferd_error *err)
{
    /* Ownership of value is taken also on failure: each exit frees it. */
    if (!buf || !value) {
        inferd_value_free(value);
        return inferd_error_set(err, INFERD_EINVAL, "buffer or value is NULL");
    }
    if (!format || !*format) {
        inferd_value_free(value);
        return inferd_error_set(err, INFERD_EINVAL, "payload format is empty");
    }
    char *copy = strdup(format);
    if (!copy) {
        inferd_value_free(value);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory copying a payload format");
    }
    payload_clear(buf);
    buf->kind = INFERD_PAYLOAD_VALUE;
    buf->value_format = copy;
    buf->value = value;
    return INFERD_OK;
}

inferd_status inferd_buffer_set_image(inferd_buffer *buf, inferd_image *image, inferd_error *err)
{
    if (!buf || !image) {
        inferd_image_free(image);
        return inferd_error_set(err, INFERD_EINVAL, "buffer or image is NULL");
    }
    payload_clear(buf);
    buf->kind = INFERD_PAYLOAD_IMAGE;
    buf->image = image;
    return INFERD_OK;
}

inferd_status inferd_buffer_set_tensors(inferd_buffer *buf, inferd_tensor **tensors, size_t n,
                                        inferd_error *err)
{
    /* Ownership of the tensors and the array is taken also on failure. */
    if (!buf || !tensors) {
        tensors_free(tensors, n);
        return inferd_error_set(err, INFERD_EINVAL, "buffer or tensor array is NULL");
    }
    if (n == 0) {
        free(tensors);
        return inferd_error_set(err, INFERD_EINVAL, "tensor payload is empty (0 tensors)");
    }
    for (size_t i = 0; i < n; i++) {
        if (!tensors[i]) {
            tensors_free(tensors, n); /* skips the NULL ones */
            return inferd_error_set(err, INFERD_EINVAL, "tensor %zu of %zu is NULL", i, n);
        }
    }
    payload_clear(buf);
    buf->kind = INFERD_PAYLOAD_TENSORS;
    buf->tensors = tensors;
    buf->ntensors = n;
    return INFERD_OK;
}

inferd_payload_kind inferd_buffer_payload_kind(const inferd_buffer *buf)
{
    return buf ? buf->kind : INFERD_PAYLOAD_NONE;
}

/* The port format of decoded pixels; static strings, as buffer.h returns
 * them without an owner. */
static const char *image_port_format(inferd_pixel_format fmt)
{
    switch (fmt) {
    case INFERD_PIXEL_GRAY8: return "image/gray";
    case INFERD_PIXEL_RGB8: return "image/rgb";
    case INFERD_PIXEL_BGR8: return "image/bgr";
    case INFERD_PIXEL_RGBA8: return "image/rgba";
    case INFERD_PIXEL_BGRA8: return "image/bgra";
    case INFERD_PIXEL_INVALID: break;
    }
    return NULL;
}

const char *inferd_buffer_format(const inferd_buffer *buf)
{
    if (!buf)
        return NULL;
    switch (buf->kind) {
    case INFERD_PAYLOAD_VALUE: return buf->value_format;
    case INFERD_PAYLOAD_IMAGE: return image_port_format(buf->image->format);
    case INFERD_PAYLOAD_TENSORS: return "metadata/tensor";
    case INFERD_PAYLOAD_NONE: break;
    }
    return NULL;
}

const inferd_value *inferd_buffer_value(const inferd_buffer *buf)
{
    return buf ? buf->value : NULL;
}

const inferd_image *inferd_buffer_image(const inferd_buffer *buf)
{
    return buf ? buf->image : NULL;
}

size_t inferd_buffer_tensor_count(const inferd_buffer *buf)
{
    return buf ? buf->ntensors : 0;
}

const inferd_tensor *inferd_buffer_tensor(const inferd_buffer *buf, size_t i)
{
    return buf && i < buf->ntensors ? buf->tensors[i] : NULL;
}

/* --- metadata --------------------------------------------------------------- */

/* The entry for (producer, format), or for producer's first entry when format
 * is NULL. Called with the lock held. */
static struct meta_entry *meta_lookup(const inferd_buffer *buf, const char *producer,
                                      const char *format)
{
    for (size_t i = 0; i < buf->nmeta; i++) {
        struct meta_entry *e = &buf->meta[i];
        if (strcmp(e->producer, producer) == 0 && (!format || strcmp(e->format, format) == 0))
            return e;
    }
    return NULL;
}

/* Replaces the item of an existing entry; the old item is retired, not freed
 * (see struct retired). Called with the lock held. */
static inferd_status meta_replace(inferd_buffer *buf, struct meta_entry *e, struct meta_item item,
                                  inferd_error *err)
{
    struct retired *r = malloc(sizeof *r);
    if (!r)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory replacing metadata");
    r->item = e->item;
    r->next = buf->retired;
    buf->retired = r;
    e->item = item;
    return INFERD_OK;
}

/* Appends a new entry. Called with the lock held. */
static inferd_status meta_append(inferd_buffer *buf, const char *producer, const char *format,
                                 struct meta_item item, inferd_error *err)
{
    if (buf->nmeta == buf->meta_cap) {
        size_t cap = buf->meta_cap ? buf->meta_cap * 2 : 4;
        struct meta_entry *grown = realloc(buf->meta, cap * sizeof *grown);
        if (!grown)
            return inferd_error_set(err, INFERD_ENOMEM, "out of memory adding metadata");
        buf->meta = grown;
        buf->meta_cap = cap;
    }
    char *p = strdup(producer), *f = strdup(format);
    if (!p || !f) {
        free(p);
        free(f);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory adding metadata");
    }
    buf->meta[buf->nmeta++] = (struct meta_entry){.producer = p, .format = f, .item = item};
    return INFERD_OK;
}

/* Adds or replaces; takes ownership of item, also on failure. */
static inferd_status meta_add(inferd_buffer *buf, const char *producer, const char *format,
                              struct meta_item item, inferd_error *err)
{
    inferd_status st;
    if (!buf || (!item.value && !item.tensor && !item.image)) {
        st = inferd_error_set(err, INFERD_EINVAL, "buffer or metadata item is NULL");
    } else if (!producer || !*producer) {
        st = inferd_error_set(err, INFERD_EINVAL, "metadata producer is empty");
    } else if (!format || !*format) {
        st = inferd_error_set(err, INFERD_EINVAL, "metadata format of '%s' is empty", producer);
    } else {
        lock(buf);
        struct meta_entry *e = meta_lookup(buf, producer, format);
        st = e ? meta_replace(buf, e, item, err) : meta_append(buf, producer, format, item, err);
        unlock(buf);
    }
    if (st != INFERD_OK)
        meta_item_free(item);
    return st;
}

inferd_status inferd_buffer_add_meta_value(inferd_buffer *buf, const char *producer,
                                           const char *format, inferd_value *value,
                                           inferd_error *err)
{
    return meta_add(buf, producer, format, (struct meta_item){.value = value}, err);
}

inferd_status inferd_buffer_add_meta_tensor(inferd_buffer *buf, const char *producer,
                                            const char *format, inferd_tensor *tensor,
                                            inferd_error *err)
{
    return meta_add(buf, producer, format, (struct meta_item){.tensor = tensor}, err);
}

inferd_status inferd_buffer_add_meta_image(inferd_buffer *buf, const char *producer,
                                           const char *format, inferd_image *image,
                                           inferd_error *err)
{
    return meta_add(buf, producer, format, (struct meta_item){.image = image}, err);
}

static void meta_view(const struct meta_entry *e, inferd_meta *out)
{
    *out = (inferd_meta){
        .producer = e->producer,
        .format = e->format,
        .value = e->item.value,
        .tensor = e->item.tensor,
        .image = e->item.image,
    };
}

bool inferd_buffer_find_meta(const inferd_buffer *buf, const char *producer, const char *format,
                             inferd_meta *out)
{
    if (!buf || !producer)
        return false;
    lock(buf);
    const struct meta_entry *e = meta_lookup(buf, producer, format);
    if (e && out)
        meta_view(e, out);
    unlock(buf);
    /* Not here: the frame's earlier stages may have it. */
    return e != NULL || inferd_buffer_find_meta(buf->parent, producer, format, out);
}

size_t inferd_buffer_meta_count(const inferd_buffer *buf)
{
    if (!buf)
        return 0;
    lock(buf);
    size_t n = buf->nmeta;
    unlock(buf);
    return inferd_buffer_meta_count(buf->parent) + n;
}

bool inferd_buffer_meta_at(const inferd_buffer *buf, size_t i, inferd_meta *out)
{
    if (!buf)
        return false;
    /* Ancestors' entries first: the order they were added along the frame's way. */
    size_t inherited = inferd_buffer_meta_count(buf->parent);
    if (i < inherited)
        return inferd_buffer_meta_at(buf->parent, i, out);
    i -= inherited;
    lock(buf);
    bool found = i < buf->nmeta;
    if (found && out)
        meta_view(&buf->meta[i], out);
    unlock(buf);
    return found;
}

/* --- error ------------------------------------------------------------------ */

void inferd_buffer_set_error(inferd_buffer *buf, const inferd_error *err)
{
    /* An INFERD_OK "error" is no error: ignoring it keeps the slot for a real cause. */
    if (!buf || !err || err->code == INFERD_OK)
        return;
    lock(buf);
    if (!buf->has_error) {
        buf->error = *err;
        /* A hand-built error may lack its NUL; ours always has one. */
        buf->error.message[sizeof buf->error.message - 1] = '\0';
        buf->has_error = true;
    }
    unlock(buf);
}

const inferd_error *inferd_buffer_error(const inferd_buffer *buf)
{
    if (!buf)
        return NULL;
    /* Once set the error never changes, so the pointer stays valid unlocked. */
    lock(buf);
    const inferd_error *e = buf->has_error ? &buf->error : NULL;
    unlock(buf);
    return e;
}
