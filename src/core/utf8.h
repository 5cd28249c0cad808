/* core/utf8.h: checking UTF-8 (internal, header-only). JSON text and the
 * Prometheus exposition must be valid UTF-8; what clients send (a path, a
 * method, a header) need not be. */
#ifndef INFERD_CORE_UTF8_H
#define INFERD_CORE_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the well-formed UTF-8 sequence at s (n bytes available), or 0
 * (overlong forms, surrogates and code points past U+10FFFF are refused). */
static inline size_t inferd__utf8_seq_len(const unsigned char *s, size_t n)
{
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    size_t len;
    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xE0) == 0xC0)
        len = 2;
    else if ((s[0] & 0xF0) == 0xE0)
        len = 3;
    else if ((s[0] & 0xF8) == 0xF0)
        len = 4;
    else
        return 0;
    uint32_t cp = s[0] & (0x7F >> len); /* the lead byte's payload bits */
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* Replaces, in place, every byte of s that is not part of a well-formed
 * sequence with '?'. Returns s. */
static inline char *inferd__utf8_scrub(char *s)
{
    unsigned char *p = (unsigned char *)s;
    size_t n = 0;
    while (p[n])
        n++;
    for (size_t i = 0; i < n;) {
        size_t k = inferd__utf8_seq_len(p + i, n - i);
        if (k == 0) {
            p[i++] = '?';
        } else {
            i += k;
        }
    }
    return s;
}

#endif
