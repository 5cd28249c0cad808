/* portable/proto.c: frames, blobs and shared memory of the portable plugin
 * protocol (see proto.h and docs/portable-protocol.md). */
#include "portable/proto.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"

void proto_blobs_clear(proto_blobs *b)
{
    free(b->v);
    *b = (proto_blobs){0};
}

long proto_blobs_add(proto_blobs *b, const void *data, size_t size)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4;
        proto_blob *v = realloc(b->v, cap * sizeof *v);
        if (!v)
            return -1;
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n] = (proto_blob){data, size};
    return (long)b->n++;
}

static inferd_value *blob_ref(long i)
{
    inferd_value *o = inferd_value_object();
    if (o && inferd_value_object_set(o, "$blob", inferd_value_int(i), NULL) != INFERD_OK) {
        inferd_value_free(o);
        return NULL;
    }
    return o;
}

inferd_value *proto_encode_value(const inferd_value *v, proto_blobs *blobs)
{
    switch (inferd_value_type_of(v)) {
    case INFERD_VALUE_BYTES: {
        const void *data;
        size_t len;
        inferd_value_get_bytes(v, &data, &len, NULL);
        long i = proto_blobs_add(blobs, data, len);
        return i < 0 ? NULL : blob_ref(i);
    }
    case INFERD_VALUE_ARRAY: {
        inferd_value *a = inferd_value_array();
        for (size_t i = 0; a && i < inferd_value_array_len(v); i++) {
            inferd_value *item = proto_encode_value(inferd_value_array_get(v, i), blobs);
            if (!item || inferd_value_array_push(a, item, NULL) != INFERD_OK) {
                inferd_value_free(a);
                return NULL;
            }
        }
        return a;
    }
    case INFERD_VALUE_OBJECT: {
        inferd_value *o = inferd_value_object();
        const char *key;
        inferd_value *item;
        for (size_t i = 0; o && inferd_value_object_entry(v, i, &key, &item); i++) {
            inferd_value *enc = proto_encode_value(item, blobs);
            if (!enc || inferd_value_object_set(o, key, enc, NULL) != INFERD_OK) {
                inferd_value_free(o);
                return NULL;
            }
        }
        return o;
    }
    default:
        return inferd_value_copy(v);
    }
}

void proto_frame_clear(proto_frame *f)
{
    inferd_value_free(f->header);
    free(f->body);
    if (f->map)
        munmap(f->map, f->map_len);
    free(f->blobs);
    *f = (proto_frame){0};
}

inferd_status proto_decode_value(const inferd_value *v, const proto_frame *f, inferd_value **out,
                                 inferd_error *err)
{
    *out = NULL;
    inferd_value *res = NULL;
    switch (inferd_value_type_of(v)) {
    case INFERD_VALUE_ARRAY:
        res = inferd_value_array();
        for (size_t i = 0; res && i < inferd_value_array_len(v); i++) {
            inferd_value *item;
            inferd_status st = proto_decode_value(inferd_value_array_get(v, i), f, &item, err);
            if (st == INFERD_OK)
                st = inferd_value_array_push(res, item, err);
            if (st != INFERD_OK) {
                inferd_value_free(res);
                return st;
            }
        }
        break;
    case INFERD_VALUE_OBJECT: {
        const inferd_value *ref = inferd_value_object_get(v, "$blob");
        if (ref && inferd_value_object_len(v) == 1) {
            int64_t i = -1;
            if (inferd_value_get_int(ref, &i, NULL) != INFERD_OK || i < 0 ||
                (uint64_t)i >= f->n_blobs)
                return inferd_error_set(err, INFERD_EINVAL,
                                        "protocol: {\"$blob\": ...} names no blob of the frame "
                                        "(it has %zu)", f->n_blobs);
            res = inferd_value_bytes(f->blobs[i].data, f->blobs[i].size);
            break;
        }
        res = inferd_value_object();
        const char *key;
        inferd_value *item;
        for (size_t i = 0; res && inferd_value_object_entry(v, i, &key, &item); i++) {
            inferd_value *dec;
            inferd_status st = proto_decode_value(item, f, &dec, err);
            if (st == INFERD_OK)
                st = inferd_value_object_set(res, key, dec, err);
            if (st != INFERD_OK) {
                inferd_value_free(res);
                return st;
            }
        }
        break;
    }
    default:
        res = inferd_value_copy(v);
    }
    if (!res)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    *out = res;
    return INFERD_OK;
}

/* ---- sending --------------------------------------------------------------- */

/* Waits until fd takes more; ETIMEDOUT past deadline_us. */
static int wait_writable(int fd, uint64_t deadline_us)
{
    for (;;) {
        int ms = -1;
        if (deadline_us) {
            uint64_t now = inferd__now_us();
            if (now >= deadline_us) {
                errno = ETIMEDOUT;
                return -1;
            }
            ms = (int)((deadline_us - now + 999) / 1000);
        }
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int r = poll(&p, 1, ms);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

/* Writes all of data; the first write carries shm_fd (>= 0) as SCM_RIGHTS. */
static int send_all(int fd, const void *data, size_t len, int shm_fd, uint64_t deadline_us)
{
    const uint8_t *p = data;
    while (len > 0) {
        struct iovec iov = {.iov_base = (void *)p, .iov_len = len};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } ctl;
        if (shm_fd >= 0) {
            memset(&ctl, 0, sizeof ctl);
            msg.msg_control = ctl.buf;
            msg.msg_controllen = sizeof ctl.buf;
            struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(c), &shm_fd, sizeof(int));
        }
        ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if ((errno == EAGAIN || errno == EWOULDBLOCK) && wait_writable(fd, deadline_us) == 0)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
        shm_fd = -1; /* sent with the first byte */
    }
    return 0;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A memfd holding the blobs back to back; -1 with errno. Written with
 * pwrite, not through a mapping: the kernel fills whole pages as it
 * allocates them (no page fault per page, no zeroing of what is
 * overwritten at once), which halves the cost of a large blob. */
static int make_shm(const proto_blob *blobs, size_t n, int reuse)
{
    int fd = reuse >= 0 ? reuse : memfd_create("inferd-blob", MFD_CLOEXEC);
    off_t off = 0;
    for (size_t i = 0; fd >= 0 && i < n; i++) {
        const uint8_t *p = blobs[i].data;
        size_t left = blobs[i].size;
        while (left > 0) {
            ssize_t w = pwrite(fd, p, left, off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                int saved = w < 0 ? errno : EIO;
                if (fd != reuse)
                    close(fd);
                errno = saved;
                return -1;
            }
            p += w, left -= (size_t)w, off += w;
        }
    }
    return fd;
}

size_t proto_blobs_total(const proto_blob *blobs, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += blobs[i].size;
    return total;
}

inferd_status proto_send(int fd, const inferd_value *header, const proto_blob *blobs, size_t n,
                         int reuse_fd, uint64_t deadline_us, inferd_error *err)
{
    size_t total = proto_blobs_total(blobs, n);
    if (total > PROTO_MAX_BODY)
        return inferd_error_set(err, INFERD_ERANGE,
                                "protocol: %zu bytes of blobs in one frame (at most %u)", total,
                                PROTO_MAX_BODY);
    bool shm = total >= PROTO_SHM_MIN;

    inferd_value *h = inferd_value_copy(header);
    inferd_value *table = inferd_value_array();
    for (size_t i = 0; h && table && i < n; i++) {
        inferd_value *b = inferd_value_object();
        if (!b || inferd_value_object_set(b, "size", inferd_value_int((int64_t)blobs[i].size),
                                          NULL) ||
            inferd_value_array_push(table, b, NULL)) {
            inferd_value_free(b);
            inferd_value_free(table);
            table = NULL;
        }
    }
    char *text = NULL;
    size_t text_len = 0;
    inferd_status st = h && table ? INFERD_OK : INFERD_ENOMEM;
    if (st == INFERD_OK && n > 0) {
        st = inferd_value_object_set(h, "blobs", table, err);
        table = NULL;
        if (st == INFERD_OK && shm)
            st = inferd_value_object_set(h, "shm", inferd_value_bool(true), err);
    }
    inferd_value_free(table);
    if (st == INFERD_OK)
        st = inferd_value_to_json(h, 0, &text, &text_len, err);
    inferd_value_free(h);
    if (st != INFERD_OK) {
        free(text);
        return st == INFERD_ENOMEM ? inferd_error_set(err, st, "out of memory") : st;
    }
    if (text_len > PROTO_MAX_HEADER) {
        free(text);
        return inferd_error_set(err, INFERD_ERANGE,
                                "protocol: a %zu-byte header (at most %u)", text_len,
                                PROTO_MAX_HEADER);
    }

    int shm_fd = -1;
    if (shm && (shm_fd = make_shm(blobs, n, reuse_fd)) < 0) {
        free(text);
        return inferd_error_set(err, INFERD_EIO, "shared memory for %zu bytes: %s", total,
                                strerror(errno));
    }
    /* One buffer for lengths + header (+ small body): one write in the
     * common case. */
    size_t body = shm ? 0 : total;
    size_t len = 8 + text_len + body;
    uint8_t *buf = malloc(len);
    if (!buf) {
        free(text);
        if (shm_fd >= 0 && shm_fd != reuse_fd)
            close(shm_fd);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    put_u32(buf, (uint32_t)text_len);
    put_u32(buf + 4, (uint32_t)body);
    memcpy(buf + 8, text, text_len);
    free(text);
    size_t off = 8 + text_len;
    for (size_t i = 0; !shm && i < n; i++) {
        memcpy(buf + off, blobs[i].data, blobs[i].size);
        off += blobs[i].size;
    }
    int rc = send_all(fd, buf, len, shm_fd, deadline_us);
    int saved = errno;
    free(buf);
    if (shm_fd >= 0 && shm_fd != reuse_fd)
        close(shm_fd);
    if (rc != 0)
        return inferd_error_set(err, INFERD_EIO, "sending to the plugin: %s",
                                saved == ETIMEDOUT ? "it does not read (timed out)"
                                                   : strerror(saved));
    return INFERD_OK;
}

/* ---- receiving ------------------------------------------------------------- */

void proto_reader_init(proto_reader *r) { *r = (proto_reader){0}; }

void proto_reader_clear(proto_reader *r)
{
    free(r->buf);
    for (size_t i = 0; i < r->n_fds; i++)
        close(r->fds[i]);
    *r = (proto_reader){0};
}

long proto_reader_fill(proto_reader *r, int fd)
{
    if (r->cap - r->len < 65536) {
        size_t cap = r->cap ? r->cap * 2 : 131072;
        while (cap - r->len < 65536)
            cap *= 2;
        uint8_t *b = realloc(r->buf, cap);
        if (!b) {
            errno = ENOMEM;
            return -1;
        }
        r->buf = b;
        r->cap = cap;
    }
    struct iovec iov = {.iov_base = r->buf + r->len, .iov_len = r->cap - r->len};
    r->last_room = iov.iov_len;
    union {
        char buf[CMSG_SPACE(sizeof(int) * 16)];
        struct cmsghdr align;
    } ctl;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                         .msg_controllen = sizeof ctl.buf};
    ssize_t n;
    do
        n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int got;
            memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
            if (r->n_fds < sizeof r->fds / sizeof r->fds[0])
                r->fds[r->n_fds++] = got;
            else
                close(got); /* more than any frame could take: the peer misbehaves */
        }
    }
    if (msg.msg_flags & MSG_CTRUNC) {
        errno = EPROTO;
        return -1;
    }
    r->len += (size_t)n;
    return n;
}

/* Builds f's blob table from its header and body or memfd. */
static inferd_status take_blobs(proto_reader *r, proto_frame *f, inferd_error *err)
{
    const inferd_value *table = inferd_value_object_get(f->header, "blobs");
    bool shm = inferd_value_bool_or(inferd_value_object_get(f->header, "shm"), false);
    size_t n = inferd_value_array_len(table);
    if (table && !inferd_value_is(table, INFERD_VALUE_ARRAY))
        return inferd_error_set(err, INFERD_EINVAL, "protocol: \"blobs\" is not an array");
    const uint8_t *base = f->body; /* NULL when the body is empty */
    if (shm) {
        if (r->n_fds == 0)
            return inferd_error_set(err, INFERD_EINVAL,
                                    "protocol: a frame says \"shm\" but came without a "
                                    "descriptor");
        int fd = r->fds[0];
        memmove(r->fds, r->fds + 1, --r->n_fds * sizeof(int));
        struct stat sb;
        if (fstat(fd, &sb) != 0 || sb.st_size < 0) {
            close(fd);
            return inferd_error_set(err, INFERD_EIO, "protocol: shared memory: %s",
                                    strerror(errno));
        }
        size_t avail = (size_t)sb.st_size;
        if (avail > 0) {
            void *map = mmap(NULL, avail, PROT_READ, MAP_SHARED, fd, 0);
            if (map == MAP_FAILED) {
                close(fd);
                return inferd_error_set(err, INFERD_EIO, "protocol: mapping shared memory: %s",
                                        strerror(errno));
            }
            f->map = map;
            f->map_len = avail;
            base = map;
        }
        close(fd);
    }
    if (n == 0)
        return INFERD_OK;
    f->blobs = calloc(n, sizeof *f->blobs);
    if (!f->blobs)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t size = inferd_value_int_or(
            inferd_value_object_get(inferd_value_array_get(table, i), "size"), -1);
        if (size < 0)
            return inferd_error_set(err, INFERD_EINVAL, "protocol: blobs[%zu] has no size", i);
        f->blobs[i] = (proto_blob){base ? base + off : NULL, (size_t)size};
        off += (size_t)size;
    }
    f->n_blobs = n;
    return INFERD_OK;
}

inferd_status proto_reader_next(proto_reader *r, proto_frame *f, int *got, inferd_error *err)
{
    *got = 0;
    *f = (proto_frame){0};
    if (r->len < 8)
        return INFERD_OK;
    uint32_t hlen = get_u32(r->buf), blen = get_u32(r->buf + 4);
    if (hlen == 0 || hlen > PROTO_MAX_HEADER || blen > PROTO_MAX_BODY)
        return inferd_error_set(err, INFERD_EINVAL,
                                "protocol: a frame with a %u-byte header and a %u-byte body "
                                "(header 1..%u, body at most %u)", hlen, blen, PROTO_MAX_HEADER,
                                PROTO_MAX_BODY);
    size_t need = 8 + (size_t)hlen + blen;
    if (r->len < need)
        return INFERD_OK;
    inferd_status st = inferd_value_from_json((const char *)r->buf + 8, hlen, 64, &f->header, err);
    if (st == INFERD_OK && !inferd_value_is(f->header, INFERD_VALUE_OBJECT))
        st = inferd_error_set(err, INFERD_EINVAL, "protocol: a frame header is not a JSON object");
    if (st == INFERD_OK &&
        !inferd_value_is(inferd_value_object_get(f->header, "type"), INFERD_VALUE_STRING))
        st = inferd_error_set(err, INFERD_EINVAL, "protocol: a frame header has no \"type\"");
    if (st == INFERD_OK && blen > 0) {
        f->body = malloc(blen);
        if (!f->body)
            st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        else
            memcpy(f->body, r->buf + 8 + hlen, blen);
    }
    if (st == INFERD_OK)
        st = take_blobs(r, f, err);
    if (st == INFERD_OK) {
        /* The blob table must add up to what the frame carries. */
        size_t sum = 0;
        for (size_t i = 0; i < f->n_blobs; i++)
            sum += f->blobs[i].size;
        size_t have = f->map ? f->map_len : blen;
        bool shm = f->map != NULL || inferd_value_bool_or(
                                         inferd_value_object_get(f->header, "shm"), false);
        if (shm ? sum > have : sum != have)
            st = inferd_error_set(err, INFERD_EINVAL,
                                  "protocol: the blobs add up to %zu bytes, the frame carries "
                                  "%zu", sum, have);
    }
    memmove(r->buf, r->buf + need, r->len - need);
    r->len -= need;
    if (st != INFERD_OK) {
        proto_frame_clear(f);
        return st;
    }
    *got = 1;
    return INFERD_OK;
}
