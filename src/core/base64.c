/* base64.c: RFC 4648 base64, standard alphabet, with padding. The buffers it
 * returns belong to the caller (free with free()); it keeps nothing. */
#include "inferd/value.h"

#include <stdint.h>
#include <stdlib.h>

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The 6-bit value of a base64 digit, or -1. Spelled out rather than a
 * 256-entry table so that it is obviously right. */
static int b64_digit(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

static int b64_is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

char *inferd_base64_encode(const void *data, size_t len, size_t *out_len)
{
    if (!data && len)
        return NULL;
    size_t quads = len / 3 + (len % 3 != 0);
    if (quads > (SIZE_MAX - 1) / 4)
        return NULL;
    char *out = malloc(quads * 4 + 1);
    if (!out)
        return NULL;

    const unsigned char *p = data;
    size_t i = 0, o = 0;
    for (; len - i >= 3; i += 3) {
        uint32_t x = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64_alphabet[x >> 18];
        out[o++] = b64_alphabet[(x >> 12) & 63];
        out[o++] = b64_alphabet[(x >> 6) & 63];
        out[o++] = b64_alphabet[x & 63];
    }
    if (i < len) { /* one or two bytes left: pad to a full quantum */
        int two = len - i == 2;
        uint32_t x = (uint32_t)p[i] << 16 | (two ? (uint32_t)p[i + 1] << 8 : 0);
        out[o++] = b64_alphabet[x >> 18];
        out[o++] = b64_alphabet[(x >> 12) & 63];
        out[o++] = two ? b64_alphabet[(x >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    return out;
}

inferd_status inferd_base64_decode(const char *text, size_t len, void **out, size_t *out_len,
                                   inferd_error *err)
{
    if (out)
        *out = NULL;
    if (out_len)
        *out_len = 0;
    if (!out || (!text && len))
        return inferd_error_set(err, INFERD_EINVAL, "base64 decode: NULL argument");

    /* Every 4 digits give at most 3 bytes; +1 so that malloc(0) never happens. */
    unsigned char *buf = malloc(len / 4 * 3 + 1);
    if (!buf)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory decoding base64");

    const unsigned char *p = (const unsigned char *)text;
    uint32_t acc = 0;
    int n = 0;    /* digits in the current quantum */
    int pad = 0;  /* '=' seen in the current quantum */
    int done = 0; /* a padded quantum ended the data */
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        if (b64_is_space(c))
            continue;
        if (done || (pad && c != '=')) { /* only '=' may follow '=' */
            free(buf);
            return inferd_error_set(err, INFERD_EINVAL, "base64 data after padding at offset %zu",
                                    i);
        }
        int d = 0;
        if (c == '=') {
            if (n < 2) { /* '=' can only be the 3rd or 4th digit of a quantum */
                free(buf);
                return inferd_error_set(err, INFERD_EINVAL,
                                        "misplaced base64 padding '=' at offset %zu", i);
            }
            pad++;
        } else if ((d = b64_digit(c)) < 0) {
            free(buf);
            if (c > 0x20 && c < 0x7f)
                return inferd_error_set(err, INFERD_EINVAL,
                                        "invalid base64 character '%c' at offset %zu", c, i);
            return inferd_error_set(err, INFERD_EINVAL,
                                    "invalid base64 character 0x%02x at offset %zu", c, i);
        }
        acc = acc << 6 | (uint32_t)d;
        if (++n == 4) {
            buf[o++] = (unsigned char)(acc >> 16);
            if (pad < 2)
                buf[o++] = (unsigned char)(acc >> 8);
            if (pad < 1)
                buf[o++] = (unsigned char)acc;
            acc = 0;
            n = 0;
            done = pad > 0;
        }
    }
    if (n) {
        free(buf);
        return inferd_error_set(err, INFERD_EINVAL,
                                "truncated base64 at offset %zu: %d digit%s left over "
                                "(length not a multiple of 4; missing padding?)",
                                len, n, n == 1 ? "" : "s");
    }
    *out = buf;
    if (out_len)
        *out_len = o;
    return INFERD_OK;

}
