/* test_image.c: pixel formats, images, and the JPEG/PNG codecs
 * (src/core/image.c, src/core/image_codec.c). Every encoded image is made
 * here, in memory. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inferd/image.h"

static void expect_error(inferd_status st, const inferd_error *err, inferd_status code,
                         const char *needle)
{
    assert_int_equal(st, code);
    assert_int_equal(err->code, code);
    if (!strstr(err->message, needle))
        fail_msg("message \"%s\" does not contain \"%s\"", err->message, needle);
}

static const inferd_pixel_format all_formats[] = {
    INFERD_PIXEL_GRAY8, INFERD_PIXEL_RGB8, INFERD_PIXEL_BGR8, INFERD_PIXEL_RGBA8,
    INFERD_PIXEL_BGRA8,
};
#define NFORMATS (sizeof all_formats / sizeof all_formats[0])

/* A new image of fmt whose every byte depends on (x, y, channel), so that a
 * swapped channel, a shifted row or a wrong stride shows. */
static inferd_image *make_pattern(inferd_pixel_format fmt, uint32_t w, uint32_t h)
{
    inferd_image *img = NULL;
    assert_int_equal(inferd_image_new(fmt, w, h, &img, NULL), INFERD_OK);
    size_t ch = inferd_pixel_channels(fmt);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
            for (size_t c = 0; c < ch; c++)
                img->data[y * img->stride + x * ch + c] = (uint8_t)(x * 7 + y * 13 + c * 61);
    return img;
}

/* A new image of fmt filled with one colour given as (r, g, b, a). */
static inferd_image *make_solid(inferd_pixel_format fmt, uint32_t w, uint32_t h, uint8_t r,
                                uint8_t g, uint8_t b, uint8_t a)
{
    inferd_image *img = NULL;
    assert_int_equal(inferd_image_new(fmt, w, h, &img, NULL), INFERD_OK);
    uint8_t px[4];
    size_t ch = inferd_pixel_channels(fmt);
    switch (fmt) {
    case INFERD_PIXEL_GRAY8: px[0] = r; break;
    case INFERD_PIXEL_RGB8: case INFERD_PIXEL_RGBA8:
        px[0] = r, px[1] = g, px[2] = b, px[3] = a;
        break;
    default:
        px[0] = b, px[1] = g, px[2] = r, px[3] = a;
        break;
    }
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
            memcpy(img->data + y * img->stride + x * ch, px, ch);
    return img;
}

/* Pseudo-random pixels: they do not compress, so that an encoded image is
 * large enough to be cut in the middle of its pixel data. */
static inferd_image *make_noise(inferd_pixel_format fmt, uint32_t w, uint32_t h)
{
    inferd_image *img = NULL;
    assert_int_equal(inferd_image_new(fmt, w, h, &img, NULL), INFERD_OK);
    uint32_t s = 12345;
    for (size_t i = 0; i < img->stride * h; i++) {
        s = s * 1103515245u + 12345u;
        img->data[i] = (uint8_t)(s >> 16);
    }
    return img;
}

static void encode(const inferd_image *img, inferd_image_codec codec, int quality, void **out,
                   size_t *len)
{
    inferd_error err;
    inferd_status st = inferd_image_encode(img, codec, quality, out, len, &err);
    if (st != INFERD_OK)
        fail_msg("encode: %s", err.message);
    assert_non_null(*out);
    assert_true(*len > 0);
}

static inferd_image *decode(const void *data, size_t len, inferd_pixel_format fmt)
{
    inferd_error err;
    inferd_image *img = NULL;
    inferd_status st = inferd_image_decode(data, len, fmt, 0, &img, &err);
    if (st != INFERD_OK)
        fail_msg("decode: %s", err.message);
    return img;
}

static void assert_same_pixels(const inferd_image *a, const inferd_image *b)
{
    assert_int_equal(a->format, b->format);
    assert_int_equal(a->width, b->width);
    assert_int_equal(a->height, b->height);
    size_t row = a->width * inferd_pixel_channels(a->format);
    for (uint32_t y = 0; y < a->height; y++)
        if (memcmp(a->data + y * a->stride, b->data + y * b->stride, row) != 0)
            fail_msg("row %u differs", y);
}

static void assert_pixel(const inferd_image *img, uint32_t x, uint32_t y, const uint8_t *want,
                         int tolerance)
{
    size_t ch = inferd_pixel_channels(img->format);
    const uint8_t *p = img->data + y * img->stride + x * ch;
    for (size_t c = 0; c < ch; c++)
        if (abs((int)p[c] - (int)want[c]) > tolerance)
            fail_msg("%s pixel (%u,%u) channel %zu is %u, want %u +- %d",
                     inferd_pixel_format_name(img->format), x, y, c, p[c], want[c], tolerance);
}

/* CRC-32 of a PNG chunk's type and data, to re-sign a patched chunk. */
static uint32_t crc32_png(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return c ^ 0xffffffffu;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* A PNG written by hand, independently of the encoder under test, so that a
 * mistake made symmetrically by the encoder and the decoder (both swapping
 * channels, say) cannot hide. raw holds the scanlines, each after a filter
 * byte of 0; the zlib stream uses one stored (uncompressed) block. */
struct png_builder {
    uint8_t data[1024];
    size_t len;
};

static void png_chunk(struct png_builder *b, const char *type, const uint8_t *data, size_t n)
{
    assert_true(b->len + 12 + n <= sizeof b->data);
    put_be32(b->data + b->len, (uint32_t)n);
    memcpy(b->data + b->len + 4, type, 4);
    if (n)
        memcpy(b->data + b->len + 8, data, n);
    put_be32(b->data + b->len + 8 + n, crc32_png(b->data + b->len + 4, 4 + n));
    b->len += 12 + n;
}

static void build_png(struct png_builder *b, uint32_t w, uint32_t h, uint8_t depth, uint8_t ctype,
                      const uint8_t *plte, size_t plte_len, const uint8_t *trns, size_t trns_len,
                      const uint8_t *raw, size_t raw_len)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memcpy(b->data, sig, 8);
    b->len = 8;
    uint8_t ihdr[13] = {0};
    put_be32(ihdr, w);
    put_be32(ihdr + 4, h);
    ihdr[8] = depth, ihdr[9] = ctype; /* compression, filter, interlace: 0 */
    png_chunk(b, "IHDR", ihdr, sizeof ihdr);
    if (plte_len)
        png_chunk(b, "PLTE", plte, plte_len);
    if (trns_len)
        png_chunk(b, "tRNS", trns, trns_len);
    uint8_t z[512];
    assert_true(raw_len + 11 <= sizeof z);
    z[0] = 0x78, z[1] = 0x01;      /* zlib header: deflate, 32K window */
    z[2] = 0x01;                   /* final block, stored */
    z[3] = (uint8_t)raw_len, z[4] = (uint8_t)(raw_len >> 8);
    z[5] = (uint8_t)~z[3], z[6] = (uint8_t)~z[4];
    memcpy(z + 7, raw, raw_len);
    uint32_t a = 1, bsum = 0;      /* Adler-32 of the raw data */
    for (size_t i = 0; i < raw_len; i++) {
        a = (a + raw[i]) % 65521;
        bsum = (bsum + a) % 65521;
    }
    put_be32(z + 7 + raw_len, bsum << 16 | a);
    png_chunk(b, "IDAT", z, raw_len + 11);
    png_chunk(b, "IEND", NULL, 0);
}

/* Rewrites the IHDR of a PNG to claim width x height, with a valid CRC. The
 * IHDR is always the first chunk: signature(8) length(4) "IHDR"(4) data(13) crc(4). */
static void patch_png_size(uint8_t *png, uint32_t width, uint32_t height)
{
    assert_memory_equal(png + 12, "IHDR", 4);
    put_be32(png + 16, width);
    put_be32(png + 20, height);
    put_be32(png + 29, crc32_png(png + 12, 4 + 13));
}

/* Rewrites the SOF0 frame header of a baseline JPEG to claim width x height.
 * SOF0: FF C0, length(2), precision(1), height(2), width(2). */
static void patch_jpeg_size(uint8_t *jpeg, size_t len, uint16_t width, uint16_t height)
{
    for (size_t i = 2; i + 9 < len; i++) {
        if (jpeg[i] == 0xff && jpeg[i + 1] == 0xc0) {
            jpeg[i + 5] = (uint8_t)(height >> 8), jpeg[i + 6] = (uint8_t)height;
            jpeg[i + 7] = (uint8_t)(width >> 8), jpeg[i + 8] = (uint8_t)width;
            return;
        }
    }
    fail_msg("no SOF0 marker in the JPEG");
}

/* --- pixel formats ------------------------------------------------------------ */

static void test_pixel_formats(void **state)
{
    (void)state;
    static const struct {
        inferd_pixel_format fmt;
        size_t channels;
        const char *name, *port;
    } want[] = {
        {INFERD_PIXEL_GRAY8, 1, "gray", "image/gray"}, {INFERD_PIXEL_RGB8, 3, "rgb", "image/rgb"},
        {INFERD_PIXEL_BGR8, 3, "bgr", "image/bgr"},    {INFERD_PIXEL_RGBA8, 4, "rgba", "image/rgba"},
        {INFERD_PIXEL_BGRA8, 4, "bgra", "image/bgra"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_int_equal(inferd_pixel_channels(want[i].fmt), want[i].channels);
        assert_string_equal(inferd_pixel_format_name(want[i].fmt), want[i].name);
        inferd_pixel_format f = INFERD_PIXEL_INVALID;
        assert_int_equal(inferd_pixel_format_parse(want[i].name, &f, NULL), INFERD_OK);
        assert_int_equal(f, want[i].fmt);
        f = INFERD_PIXEL_INVALID;
        assert_int_equal(inferd_pixel_format_parse(want[i].port, &f, NULL), INFERD_OK);
        assert_int_equal(f, want[i].fmt);
    }
    assert_int_equal(inferd_pixel_channels(INFERD_PIXEL_INVALID), 0);
    assert_int_equal(inferd_pixel_channels((inferd_pixel_format)42), 0);
    assert_string_equal(inferd_pixel_format_name(INFERD_PIXEL_INVALID), "invalid");
}

static void test_pixel_format_parse_bad(void **state)
{
    (void)state;
    inferd_error err;
    inferd_pixel_format f = INFERD_PIXEL_RGB8;
    expect_error(inferd_pixel_format_parse("RGB", &f, &err), &err, INFERD_EINVAL, "'RGB'");
    expect_error(inferd_pixel_format_parse("image/jpeg", &f, &err), &err, INFERD_EINVAL,
                 "'image/jpeg'");
    expect_error(inferd_pixel_format_parse("image/", &f, &err), &err, INFERD_EINVAL, "'image/'");
    expect_error(inferd_pixel_format_parse("", &f, &err), &err, INFERD_EINVAL, "unknown pixel");
    expect_error(inferd_pixel_format_parse(NULL, &f, &err), &err, INFERD_EINVAL, "NULL");
    assert_int_equal(f, INFERD_PIXEL_RGB8);
}

/* --- images ------------------------------------------------------------------- */

static void test_image_new(void **state)
{
    (void)state;
    for (size_t i = 0; i < NFORMATS; i++) {
        inferd_image *img = NULL;
        inferd_error err;
        assert_int_equal(inferd_image_new(all_formats[i], 5, 3, &img, &err), INFERD_OK);
        size_t ch = inferd_pixel_channels(all_formats[i]);
        assert_int_equal(img->format, all_formats[i]);
        assert_int_equal(img->width, 5);
        assert_int_equal(img->height, 3);
        assert_int_equal(img->stride, 5 * ch);
        assert_int_equal((uintptr_t)img->data % 64, 0);
        for (size_t b = 0; b < 5 * 3 * ch; b++)
            assert_int_equal(img->data[b], 0);
        memset(img->data, 0xab, 5 * 3 * ch); /* writable over its size (ASan) */
        inferd_image_free(img);
    }
    /* The largest dimension is allowed. */
    inferd_image *img = NULL;
    assert_int_equal(inferd_image_new(INFERD_PIXEL_GRAY8, INFERD_IMAGE_MAX_DIM, 1, &img, NULL),
                     INFERD_OK);
    inferd_image_free(img);
    assert_int_equal(inferd_image_new(INFERD_PIXEL_GRAY8, 1, INFERD_IMAGE_MAX_DIM, &img, NULL),
                     INFERD_OK);
    inferd_image_free(img);
    inferd_image_free(NULL);
}

static void test_image_new_bad(void **state)
{
    (void)state;
    inferd_error err;
    inferd_image sentinel;
    inferd_image *img = &sentinel;
    expect_error(inferd_image_new(INFERD_PIXEL_RGB8, 0, 10, &img, &err), &err, INFERD_ERANGE,
                 "image width 0 is out of range 1..65535");
    assert_null(img);
    expect_error(inferd_image_new(INFERD_PIXEL_RGB8, 10, 0, &img, &err), &err, INFERD_ERANGE,
                 "image height 0 is out of range 1..65535");
    expect_error(inferd_image_new(INFERD_PIXEL_RGB8, 65536, 10, &img, &err), &err, INFERD_ERANGE,
                 "image width 65536 is out of range");
    expect_error(inferd_image_new(INFERD_PIXEL_RGB8, 10, UINT32_MAX, &img, &err), &err,
                 INFERD_ERANGE, "image height 4294967295 is out of range");
    expect_error(inferd_image_new(INFERD_PIXEL_INVALID, 10, 10, &img, &err), &err, INFERD_EINVAL,
                 "pixel format");
    expect_error(inferd_image_new(INFERD_PIXEL_RGB8, 10, 10, NULL, &err), &err, INFERD_EINVAL,
                 "out");
    assert_null(img);
}

struct release_probe {
    int calls;
    void *data;
};

static void count_release(void *ctx, void *data)
{
    struct release_probe *p = ctx;
    p->calls++;
    p->data = data;
}

static void test_image_wrap(void **state)
{
    (void)state;
    inferd_error err;
    uint8_t pixels[4 * 20] = {0}; /* 4 rows of 20 bytes */
    struct release_probe probe = {0};
    inferd_image *img = NULL;

    /* stride 0 means packed */
    assert_int_equal(inferd_image_wrap(INFERD_PIXEL_RGB8, 6, 4, 0, pixels, count_release, &probe,
                                       &img, &err),
                     INFERD_OK);
    assert_int_equal(img->stride, 18);
    assert_ptr_equal(img->data, pixels);
    inferd_image_free(img);
    assert_int_equal(probe.calls, 1);
    assert_ptr_equal(probe.data, pixels);

    /* Padded rows. */
    assert_int_equal(inferd_image_wrap(INFERD_PIXEL_RGB8, 6, 4, 20, pixels, NULL, NULL, &img, &err),
                     INFERD_OK);
    assert_int_equal(img->stride, 20);
    inferd_image_free(img);
    /* stride exactly width * channels */
    assert_int_equal(inferd_image_wrap(INFERD_PIXEL_BGRA8, 5, 4, 20, pixels, NULL, NULL, &img,
                                       &err),
                     INFERD_OK);
    inferd_image_free(img);
    assert_int_equal(probe.calls, 1);
}

static void test_image_wrap_bad(void **state)
{
    (void)state;
    inferd_error err;
    uint8_t pixels[64] = {0};
    struct release_probe probe = {0};
    inferd_image sentinel;
    inferd_image *img = &sentinel;

    expect_error(inferd_image_wrap(INFERD_PIXEL_RGB8, 6, 2, 17, pixels, count_release, &probe, &img,
                                   &err),
                 &err, INFERD_EINVAL, "stride 17 is less than width 6 * 3 channels = 18");
    assert_null(img);
    expect_error(inferd_image_wrap(INFERD_PIXEL_RGB8, 0, 2, 0, pixels, count_release, &probe, &img,
                                   &err),
                 &err, INFERD_ERANGE, "image width 0");
    expect_error(inferd_image_wrap(INFERD_PIXEL_RGB8, 2, 70000, 0, pixels, count_release, &probe,
                                   &img, &err),
                 &err, INFERD_ERANGE, "image height 70000");
    expect_error(inferd_image_wrap(INFERD_PIXEL_RGB8, 2, 2, 0, NULL, count_release, &probe, &img,
                                   &err),
                 &err, INFERD_EINVAL, "data is NULL");
    expect_error(inferd_image_wrap(INFERD_PIXEL_INVALID, 2, 2, 0, pixels, count_release, &probe,
                                   &img, &err),
                 &err, INFERD_EINVAL, "pixel format");
    /* stride * height overflows size_t */
    expect_error(inferd_image_wrap(INFERD_PIXEL_GRAY8, 2, 3, SIZE_MAX / 2, pixels, count_release,
                                   &probe, &img, &err),
                 &err, INFERD_ERANGE, "too large");
    /* On failure the caller keeps ownership. */
    assert_int_equal(probe.calls, 0);
    assert_null(img);
}

/* --- sniff, mime, probe ----------------------------------------------------- */

static void test_sniff_and_mime(void **state)
{
    (void)state;
    static const uint8_t jpeg[] = {0xff, 0xd8, 0xff, 0xe0, 0, 0x10};
    static const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0};
    assert_int_equal(inferd_image_sniff(jpeg, sizeof jpeg), INFERD_CODEC_JPEG);
    assert_int_equal(inferd_image_sniff(png, sizeof png), INFERD_CODEC_PNG);
    assert_int_equal(inferd_image_sniff(png, 7), INFERD_CODEC_UNKNOWN); /* short magic */
    assert_int_equal(inferd_image_sniff(jpeg, 2), INFERD_CODEC_UNKNOWN);
    assert_int_equal(inferd_image_sniff("GIF89a", 6), INFERD_CODEC_UNKNOWN);
    assert_int_equal(inferd_image_sniff(NULL, 10), INFERD_CODEC_UNKNOWN);
    assert_int_equal(inferd_image_sniff(png, 0), INFERD_CODEC_UNKNOWN);
    assert_string_equal(inferd_image_codec_mime(INFERD_CODEC_JPEG), "image/jpeg");
    assert_string_equal(inferd_image_codec_mime(INFERD_CODEC_PNG), "image/png");
    assert_null(inferd_image_codec_mime(INFERD_CODEC_UNKNOWN));
}

static void test_probe(void **state)
{
    (void)state;
    inferd_image *img = make_pattern(INFERD_PIXEL_RGB8, 37, 21);
    inferd_image_codec codecs[] = {INFERD_CODEC_PNG, INFERD_CODEC_JPEG};
    for (size_t i = 0; i < 2; i++) {
        void *enc;
        size_t len;
        encode(img, codecs[i], 90, &enc, &len);
        assert_int_equal(inferd_image_sniff(enc, len), codecs[i]);
        uint32_t w = 0, h = 0;
        inferd_error err;
        assert_int_equal(inferd_image_probe(enc, len, &w, &h, &err), INFERD_OK);
        assert_int_equal(w, 37);
        assert_int_equal(h, 21);
        /* The header alone is enough: probe never needs the pixel data. */
        size_t header = codecs[i] == INFERD_CODEC_PNG ? 33 : len / 2;
        assert_int_equal(inferd_image_probe(enc, header, &w, &h, &err), INFERD_OK);
        /* width and height are optional */
        assert_int_equal(inferd_image_probe(enc, len, NULL, NULL, &err), INFERD_OK);
        free(enc);
    }
    inferd_image_free(img);
}

static void test_probe_bad(void **state)
{
    (void)state;
    inferd_error err;
    uint32_t w = 7, h = 7;
    expect_error(inferd_image_probe("GIF89a....", 10, &w, &h, &err), &err, INFERD_EUNSUPPORTED,
                 "not a JPEG or PNG image");
    expect_error(inferd_image_probe("", 0, &w, &h, &err), &err, INFERD_EINVAL, "empty");
    expect_error(inferd_image_probe(NULL, 5, &w, &h, &err), &err, INFERD_EINVAL, "empty");
    static const uint8_t png_sig_only[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0};
    expect_error(inferd_image_probe(png_sig_only, sizeof png_sig_only, &w, &h, &err), &err,
                 INFERD_EINVAL, "PNG: ");
    static const uint8_t jpeg_soi_only[] = {0xff, 0xd8, 0xff, 0xe0, 0x00};
    expect_error(inferd_image_probe(jpeg_soi_only, sizeof jpeg_soi_only, &w, &h, &err), &err,
                 INFERD_EINVAL, "JPEG: ");
    assert_int_equal(w, 7);
    assert_int_equal(h, 7);
}

/* --- round trips ------------------------------------------------------------- */

static void test_png_round_trip_exact(void **state)
{
    (void)state;
    for (size_t i = 0; i < NFORMATS; i++) {
        inferd_image *img = make_pattern(all_formats[i], 33, 17);
        void *png;
        size_t len;
        encode(img, INFERD_CODEC_PNG, 0, &png, &len);
        assert_int_equal(inferd_image_sniff(png, len), INFERD_CODEC_PNG);
        /* A finished PNG ends with IEND and its CRC. */
        assert_true(len > 12);
        assert_memory_equal((uint8_t *)png + len - 8, "IEND", 4);
        inferd_image *back = decode(png, len, all_formats[i]);
        assert_int_equal(back->stride, back->width * inferd_pixel_channels(back->format));
        assert_same_pixels(img, back);
        inferd_image_free(back);
        free(png);
        inferd_image_free(img);
    }
}

/* Encoding reads the image through its stride: the padding bytes are not
 * pixels and must not leak into the output. */
static void test_png_encode_with_stride(void **state)
{
    (void)state;
    const uint32_t w = 9, h = 5;
    const size_t stride = w * 3 + 7;
    uint8_t *pixels = malloc(stride * h);
    assert_non_null(pixels);
    memset(pixels, 0xee, stride * h);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w * 3; x++)
            pixels[y * stride + x] = (uint8_t)(x + 40 * y);
    inferd_image *img = NULL;
    assert_int_equal(inferd_image_wrap(INFERD_PIXEL_RGB8, w, h, stride, pixels, NULL, NULL, &img,
                                       NULL),
                     INFERD_OK);
    void *png;
    size_t len;
    encode(img, INFERD_CODEC_PNG, 0, &png, &len);
    inferd_image *back = decode(png, len, INFERD_PIXEL_RGB8);
    assert_same_pixels(img, back);
    /* and the same image encoded as JPEG decodes close to it */
    void *jpeg;
    size_t jlen;
    encode(img, INFERD_CODEC_JPEG, 100, &jpeg, &jlen);
    inferd_image *jback = decode(jpeg, jlen, INFERD_PIXEL_RGB8);
    assert_int_equal(jback->width, w);
    uint8_t want[3] = {0, 1, 2};
    assert_pixel(jback, 0, 0, want, 16);
    inferd_image_free(jback);
    free(jpeg);
    inferd_image_free(back);
    free(png);
    inferd_image_free(img);
    free(pixels);
}

static void test_jpeg_round_trip_tolerance(void **state)
{
    (void)state;
    /* A smooth image: JPEG keeps it close at a high quality. */
    const uint32_t w = 64, h = 48;
    inferd_image *img = NULL;
    assert_int_equal(inferd_image_new(INFERD_PIXEL_RGB8, w, h, &img, NULL), INFERD_OK);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            uint8_t *p = img->data + y * img->stride + x * 3;
            p[0] = (uint8_t)(x * 4), p[1] = (uint8_t)(y * 5), p[2] = (uint8_t)(128 + x - y);
        }
    void *jpeg;
    size_t len;
    encode(img, INFERD_CODEC_JPEG, 95, &jpeg, &len);
    assert_int_equal(inferd_image_sniff(jpeg, len), INFERD_CODEC_JPEG);
    inferd_image *back = decode(jpeg, len, INFERD_PIXEL_RGB8);
    assert_int_equal(back->width, w);
    assert_int_equal(back->height, h);
    long sum = 0;
    int worst = 0;
    for (size_t i = 0; i < (size_t)w * h * 3; i++) {
        int d = abs((int)img->data[i] - (int)back->data[i]);
        sum += d;
        worst = d > worst ? d : worst;
    }
    double mean = (double)sum / (w * h * 3);
    if (mean > 2.0 || worst > 24)
        fail_msg("JPEG round trip: mean error %.2f, worst %d", mean, worst);
    inferd_image_free(back);

    /* A lower quality gives a smaller file. */
    void *small;
    size_t small_len;
    encode(img, INFERD_CODEC_JPEG, 10, &small, &small_len);
    assert_true(small_len < len);
    free(small);
    free(jpeg);
    inferd_image_free(img);

    /* Gray encodes as a one-component JPEG and comes back gray. */
    inferd_image *gray = make_solid(INFERD_PIXEL_GRAY8, 16, 16, 200, 0, 0, 0);
    encode(gray, INFERD_CODEC_JPEG, 90, &jpeg, &len);
    back = decode(jpeg, len, INFERD_PIXEL_GRAY8);
    uint8_t want = 200;
    assert_pixel(back, 7, 7, &want, 2);
    inferd_image_free(back);
    /* and as RGB it is the same value in all three channels */
    back = decode(jpeg, len, INFERD_PIXEL_RGB8);
    uint8_t want3[3] = {200, 200, 200};
    assert_pixel(back, 3, 9, want3, 2);
    inferd_image_free(back);
    free(jpeg);
    inferd_image_free(gray);
}

/* Known colours through every output order: red must land in R, not B. */
static void check_red_decodes(const void *enc, size_t len, int tol)
{
    static const struct {
        inferd_pixel_format fmt;
        uint8_t px[4];
    } want[] = {
        {INFERD_PIXEL_RGB8, {255, 0, 0}},
        {INFERD_PIXEL_BGR8, {0, 0, 255}},
        {INFERD_PIXEL_RGBA8, {255, 0, 0, 255}},
        {INFERD_PIXEL_BGRA8, {0, 0, 255, 255}},
        {INFERD_PIXEL_GRAY8, {76}}, /* BT.601 luma of pure red: 0.299 * 255 */
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        inferd_image *img = decode(enc, len, want[i].fmt);
        assert_int_equal(img->format, want[i].fmt);
        assert_pixel(img, 0, 0, want[i].px, tol);
        assert_pixel(img, img->width - 1, img->height - 1, want[i].px, tol);
        inferd_image_free(img);
    }
}

static void test_channel_order(void **state)
{
    (void)state;
    /* The same red, given in each input order; 16x16 is one 4:2:0 MCU, so
     * the JPEG has no chroma edge to blur. */
    for (size_t i = 1; i < NFORMATS; i++) {
        inferd_image *red = make_solid(all_formats[i], 16, 16, 255, 0, 0, 255);
        void *enc;
        size_t len;
        encode(red, INFERD_CODEC_PNG, 0, &enc, &len);
        check_red_decodes(enc, len, 0);
        free(enc);
        encode(red, INFERD_CODEC_JPEG, 95, &enc, &len);
        check_red_decodes(enc, len, 8);
        free(enc);
        inferd_image_free(red);
    }

    /* Alpha survives PNG in both orders; decoding without alpha drops it. */
    inferd_image *half = make_solid(INFERD_PIXEL_BGRA8, 4, 4, 10, 20, 30, 128);
    void *png;
    size_t len;
    encode(half, INFERD_CODEC_PNG, 0, &png, &len);
    inferd_image *back = decode(png, len, INFERD_PIXEL_RGBA8);
    const uint8_t rgba[4] = {10, 20, 30, 128};
    assert_pixel(back, 2, 2, rgba, 0);
    inferd_image_free(back);
    back = decode(png, len, INFERD_PIXEL_BGR8);
    const uint8_t bgr[3] = {30, 20, 10};
    assert_pixel(back, 2, 2, bgr, 0);
    inferd_image_free(back);
    free(png);
    inferd_image_free(half);

    /* A gray PNG decodes to R = G = B and opaque alpha. */
    inferd_image *gray = make_solid(INFERD_PIXEL_GRAY8, 3, 3, 77, 0, 0, 0);
    encode(gray, INFERD_CODEC_PNG, 0, &png, &len);
    back = decode(png, len, INFERD_PIXEL_BGRA8);
    const uint8_t g4[4] = {77, 77, 77, 255};
    assert_pixel(back, 1, 1, g4, 0);
    inferd_image_free(back);
    free(png);
    inferd_image_free(gray);
}

static void test_encode_bad(void **state)
{
    (void)state;
    inferd_error err;
    inferd_image *img = make_pattern(INFERD_PIXEL_RGB8, 8, 8);
    static char sentinel;
    void *out = &sentinel; /* must be reset to NULL on failure */
    size_t len = 99;
    expect_error(inferd_image_encode(img, INFERD_CODEC_JPEG, 0, &out, &len, &err), &err,
                 INFERD_ERANGE, "JPEG quality 0 is out of range 1..100");
    assert_null(out);
    assert_int_equal(len, 0);
    expect_error(inferd_image_encode(img, INFERD_CODEC_JPEG, 101, &out, &len, &err), &err,
                 INFERD_ERANGE, "quality 101");
    expect_error(inferd_image_encode(img, INFERD_CODEC_UNKNOWN, 90, &out, &len, &err), &err,
                 INFERD_EUNSUPPORTED, "codec");
    expect_error(inferd_image_encode(NULL, INFERD_CODEC_PNG, 90, &out, &len, &err), &err,
                 INFERD_EINVAL, "image is NULL");
    expect_error(inferd_image_encode(img, INFERD_CODEC_PNG, 90, NULL, &len, &err), &err,
                 INFERD_EINVAL, "out");
    /* Quality is ignored for PNG. */
    assert_int_equal(inferd_image_encode(img, INFERD_CODEC_PNG, -5, &out, &len, &err), INFERD_OK);
    free(out);

    /* Images built by hand are checked as well. */
    inferd_image bad = *img;
    bad.stride = 8 * 3 - 1;
    expect_error(inferd_image_encode(&bad, INFERD_CODEC_PNG, 90, &out, &len, &err), &err,
                 INFERD_EINVAL, "stride 23");
    bad = *img;
    bad.width = 0;
    expect_error(inferd_image_encode(&bad, INFERD_CODEC_JPEG, 90, &out, &len, &err), &err,
                 INFERD_ERANGE, "0x8");
    bad = *img;
    bad.format = INFERD_PIXEL_INVALID;
    expect_error(inferd_image_encode(&bad, INFERD_CODEC_PNG, 90, &out, &len, &err), &err,
                 INFERD_EINVAL, "pixel format");
    inferd_image_free(img);
}

/* --- bad input to decode -------------------------------------------------------- */

static void test_decode_garbage(void **state)
{
    (void)state;
    inferd_error err;
    inferd_image sentinel;
    inferd_image *img = &sentinel;
    const char text[] = "this is not an image at all";
    expect_error(inferd_image_decode(text, sizeof text, INFERD_PIXEL_RGB8, 0, &img, &err), &err,
                 INFERD_EUNSUPPORTED, "not a JPEG or PNG image");
    assert_null(img);
    expect_error(inferd_image_decode(text, 0, INFERD_PIXEL_RGB8, 0, &img, &err), &err,
                 INFERD_EINVAL, "empty");
    /* The right magic followed by garbage. */
    uint8_t fake_png[64] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memset(fake_png + 8, 0x5a, sizeof fake_png - 8);
    expect_error(inferd_image_decode(fake_png, sizeof fake_png, INFERD_PIXEL_RGB8, 0, &img, &err),
                 &err, INFERD_EINVAL, "PNG: ");
    uint8_t fake_jpeg[64] = {0xff, 0xd8, 0xff};
    memset(fake_jpeg + 3, 0x5a, sizeof fake_jpeg - 3);
    expect_error(inferd_image_decode(fake_jpeg, sizeof fake_jpeg, INFERD_PIXEL_RGB8, 0, &img, &err),
                 &err, INFERD_EINVAL, "JPEG: ");
    assert_null(img);
}

static void test_decode_bad_args(void **state)
{
    (void)state;
    inferd_error err;
    inferd_image *img = make_pattern(INFERD_PIXEL_RGB8, 4, 4);
    void *png;
    size_t len;
    encode(img, INFERD_CODEC_PNG, 0, &png, &len);
    inferd_image *out = NULL;
    expect_error(inferd_image_decode(png, len, INFERD_PIXEL_INVALID, 0, &out, &err), &err,
                 INFERD_EINVAL, "pixel format");
    expect_error(inferd_image_decode(png, len, INFERD_PIXEL_RGB8, 0, NULL, &err), &err,
                 INFERD_EINVAL, "out");
    assert_null(out);
    free(png);
    inferd_image_free(img);
}

static void test_decode_truncated(void **state)
{
    (void)state;
    inferd_error err;
    inferd_image *img = make_noise(INFERD_PIXEL_RGB8, 64, 64);
    inferd_image_codec codecs[] = {INFERD_CODEC_PNG, INFERD_CODEC_JPEG};
    const char *prefix[] = {"PNG: truncated", "JPEG: "};
    for (size_t i = 0; i < 2; i++) {
        void *enc;
        size_t len;
        encode(img, codecs[i], 90, &enc, &len);
        assert_true(len > 2000);
        /* Cut in the pixel data, inside the header, and after the pixel
         * data: for PNG inside the last IDAT's CRC and inside the IEND
         * chunk's type (only IEND's own CRC may be missing: libspng does not
         * read it), for JPEG inside and before the EOI marker. */
        bool png = codecs[i] == INFERD_CODEC_PNG;
        size_t cuts[] = {len / 2, 20, png ? len - 13 : len - 1, png ? len - 6 : len - 2};
        for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
            inferd_image *out = NULL;
            inferd_status st =
                inferd_image_decode(enc, cuts[c], INFERD_PIXEL_RGB8, 0, &out, &err);
            if (st != INFERD_EINVAL)
                fail_msg("%s cut at %zu of %zu: status %s (%s)", prefix[i], cuts[c], len,
                         inferd_status_name(st), err.message);
            expect_error(st, &err, INFERD_EINVAL, prefix[i]);
            assert_null(out);
        }
        /* A flipped byte in the pixel data: the PNG chunk CRC catches it.
         * (JPEG has no checksum: a flipped byte may just decode to other
         * pixels, so there is nothing to assert for it.) */
        if (codecs[i] == INFERD_CODEC_PNG) {
            uint8_t *bytes = enc;
            bytes[len / 2] ^= 0xff;
            inferd_image *out = NULL;
            expect_error(inferd_image_decode(enc, len, INFERD_PIXEL_RGB8, 0, &out, &err), &err,
                         INFERD_EINVAL, "PNG: invalid chunk checksum");
            assert_null(out);
        }
        free(enc);
    }
    inferd_image_free(img);
}

/* Decoding PNGs the encoder never writes: known RGB pixels in every output
 * order, 16-bit gray, and a palette with transparency. */
static void test_decode_handmade_png(void **state)
{
    (void)state;
    struct png_builder b;
    /* 2x1 truecolour: red, blue */
    static const uint8_t rgb_raw[] = {0, 255, 0, 0, 0, 0, 255};
    build_png(&b, 2, 1, 8, 2, NULL, 0, NULL, 0, rgb_raw, sizeof rgb_raw);
    static const struct {
        inferd_pixel_format fmt;
        uint8_t px0[4], px1[4];
    } want[] = {
        {INFERD_PIXEL_RGB8, {255, 0, 0}, {0, 0, 255}},
        {INFERD_PIXEL_BGR8, {0, 0, 255}, {255, 0, 0}},
        {INFERD_PIXEL_RGBA8, {255, 0, 0, 255}, {0, 0, 255, 255}},
        {INFERD_PIXEL_BGRA8, {0, 0, 255, 255}, {255, 0, 0, 255}},
        {INFERD_PIXEL_GRAY8, {76}, {29}}, /* BT.601: 0.299 * 255, 0.114 * 255 */
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        inferd_image *img = decode(b.data, b.len, want[i].fmt);
        assert_int_equal(img->width, 2);
        assert_pixel(img, 0, 0, want[i].px0, 0);
        assert_pixel(img, 1, 0, want[i].px1, 0);
        inferd_image_free(img);
    }

    /* 1x2 16-bit gray: scaled to 8 bits */
    static const uint8_t g16_raw[] = {0, 0xab, 0xcd, 0, 0xff, 0xff};
    build_png(&b, 1, 2, 16, 0, NULL, 0, NULL, 0, g16_raw, sizeof g16_raw);
    inferd_image *img = decode(b.data, b.len, INFERD_PIXEL_RGB8);
    const uint8_t ab[3] = {0xab, 0xab, 0xab}, ff[3] = {255, 255, 255};
    assert_pixel(img, 0, 0, ab, 1);
    assert_pixel(img, 0, 1, ff, 0);
    inferd_image_free(img);

    /* 2x1 palette: index 0 green (opaque), index 1 white with alpha 0 (tRNS) */
    static const uint8_t plte[] = {0, 255, 0, 255, 255, 255};
    static const uint8_t trns[] = {255, 0};
    static const uint8_t pal_raw[] = {0, 0, 1};
    build_png(&b, 2, 1, 8, 3, plte, sizeof plte, trns, sizeof trns, pal_raw, sizeof pal_raw);
    img = decode(b.data, b.len, INFERD_PIXEL_BGRA8);
    const uint8_t green[4] = {0, 255, 0, 255}, clear[4] = {255, 255, 255, 0};
    assert_pixel(img, 0, 0, green, 0);
    assert_pixel(img, 1, 0, clear, 0);
    inferd_image_free(img);
    img = decode(b.data, b.len, INFERD_PIXEL_RGB8); /* no alpha channel: colour only */
    assert_pixel(img, 1, 0, clear, 0);
    inferd_image_free(img);
}

/* A real image above max_pixels is refused with its size and the limit; at
 * exactly the limit it decodes. */
static void test_decode_max_pixels(void **state)
{
    (void)state;
    inferd_error err;
    inferd_image *img = make_pattern(INFERD_PIXEL_RGB8, 100, 80);
    inferd_image_codec codecs[] = {INFERD_CODEC_PNG, INFERD_CODEC_JPEG};
    const char *want[] = {"PNG image 100x80 (8000 pixels) exceeds the limit of 7999 pixels",
                          "JPEG image 100x80 (8000 pixels) exceeds the limit of 7999 pixels"};
    for (size_t i = 0; i < 2; i++) {
        void *enc;
        size_t len;
        encode(img, codecs[i], 90, &enc, &len);
        inferd_image *out = NULL;
        expect_error(inferd_image_decode(enc, len, INFERD_PIXEL_RGB8, 7999, &out, &err), &err,
                     INFERD_ERANGE, want[i]);
        assert_null(out);
        assert_int_equal(inferd_image_decode(enc, len, INFERD_PIXEL_RGB8, 8000, &out, &err),
                         INFERD_OK);
        inferd_image_free(out);
        free(enc);
    }
    inferd_image_free(img);
}

/* A small file whose header claims a huge image (a decompression bomb) is
 * refused from the header, before any allocation: were the pixels allocated
 * first, 60000 x 60000 x 3 bytes would fail (and abort under ASan). */
static void test_decode_bomb_png(void **state)
{
    (void)state;
    inferd_error err;
    inferd_image *img = make_pattern(INFERD_PIXEL_RGB8, 8, 8);
    void *png;
    size_t len;
    encode(img, INFERD_CODEC_PNG, 0, &png, &len);
    patch_png_size(png, 60000, 60000);

    uint32_t w = 0, h = 0;
    assert_int_equal(inferd_image_probe(png, len, &w, &h, &err), INFERD_OK);
    assert_int_equal(w, 60000);
    assert_int_equal(h, 60000);
    inferd_image *out = NULL;
    expect_error(inferd_image_decode(png, len, INFERD_PIXEL_RGB8, 0, &out, &err), &err,
                 INFERD_ERANGE,
                 "PNG image 60000x60000 (3600000000 pixels) exceeds the limit of 67108864 pixels");
    assert_null(out);

    /* Past INFERD_IMAGE_MAX_DIM, libspng's own limit refuses it. */
    patch_png_size(png, 70000, 10);
    expect_error(inferd_image_decode(png, len, INFERD_PIXEL_RGB8, 0, &out, &err), &err,
                 INFERD_ERANGE, "65535");
    expect_error(inferd_image_probe(png, len, &w, &h, &err), &err, INFERD_ERANGE, "65535");
    patch_png_size(png, 10, 70000);
    expect_error(inferd_image_decode(png, len, INFERD_PIXEL_RGB8, 0, &out, &err), &err,
                 INFERD_ERANGE, "65535");
    assert_null(out);
    free(png);
    inferd_image_free(img);
}

static void test_decode_bomb_jpeg(void **state)
{
    (void)state;
    inferd_error err;
    inferd_image *img = make_pattern(INFERD_PIXEL_RGB8, 8, 8);
    void *jpeg;
    size_t len;
    encode(img, INFERD_CODEC_JPEG, 90, &jpeg, &len);
    patch_jpeg_size(jpeg, len, 60000, 60000);
    uint32_t w = 0, h = 0;
    assert_int_equal(inferd_image_probe(jpeg, len, &w, &h, &err), INFERD_OK);
    assert_int_equal(w, 60000);
    inferd_image *out = NULL;
    expect_error(inferd_image_decode(jpeg, len, INFERD_PIXEL_BGR8, 0, &out, &err), &err,
                 INFERD_ERANGE,
                 "JPEG image 60000x60000 (3600000000 pixels) exceeds the limit of 67108864 pixels");
    assert_null(out);
    free(jpeg);
    inferd_image_free(img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pixel_formats),
        cmocka_unit_test(test_pixel_format_parse_bad),
        cmocka_unit_test(test_image_new),
        cmocka_unit_test(test_image_new_bad),
        cmocka_unit_test(test_image_wrap),
        cmocka_unit_test(test_image_wrap_bad),
        cmocka_unit_test(test_sniff_and_mime),
        cmocka_unit_test(test_probe),
        cmocka_unit_test(test_probe_bad),
        cmocka_unit_test(test_png_round_trip_exact),
        cmocka_unit_test(test_png_encode_with_stride),
        cmocka_unit_test(test_jpeg_round_trip_tolerance),
        cmocka_unit_test(test_channel_order),
        cmocka_unit_test(test_encode_bad),
        cmocka_unit_test(test_decode_garbage),
        cmocka_unit_test(test_decode_bad_args),
        cmocka_unit_test(test_decode_truncated),
        cmocka_unit_test(test_decode_handmade_png),
        cmocka_unit_test(test_decode_max_pixels),
        cmocka_unit_test(test_decode_bomb_png),
        cmocka_unit_test(test_decode_bomb_jpeg),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
