/* image_codec.c: JPEG (TurboJPEG) and PNG (libspng) sniffing, probing,
 * decoding and encoding.
 *
 * Decoding reads the header first and refuses an image above max_pixels
 * before any pixel memory is allocated, so that a small file claiming a huge
 * image (a decompression bomb) costs nothing.
 *
 * Ownership: the codec handles (tjhandle, spng_ctx) live only inside one call.
 * A decoded image belongs to the caller; an encoded buffer is malloc'd and
 * belongs to the caller (the codecs' own buffers are copied or come from
 * malloc already, see below).
 */
#include "inferd/image.h"
#include "core/pixel.h"

#include <limits.h>
#include <stdbool.h>
#include <spng.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

/* Ancillary PNG chunks (text, ICC profiles, ...) are held in memory by spng;
 * these bound that memory. IDAT (the pixels) is streamed and not subject to
 * them. An ICC profile is typically under 1 MiB. */
#define PNG_CHUNK_LIMIT ((size_t)4 << 20)
#define PNG_CACHE_LIMIT ((size_t)16 << 20)

static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
/* SOI followed by the first byte of the next marker. */
static const uint8_t jpeg_magic[3] = {0xff, 0xd8, 0xff};

inferd_image_codec inferd_image_sniff(const void *data, size_t len)
{
    if (!data)
        return INFERD_CODEC_UNKNOWN;
    if (len >= sizeof jpeg_magic && memcmp(data, jpeg_magic, sizeof jpeg_magic) == 0)
        return INFERD_CODEC_JPEG;
    if (len >= sizeof png_magic && memcmp(data, png_magic, sizeof png_magic) == 0)
        return INFERD_CODEC_PNG;
    return INFERD_CODEC_UNKNOWN;
}

const char *inferd_image_codec_mime(inferd_image_codec codec)
{
    switch (codec) {
    case INFERD_CODEC_JPEG: return "image/jpeg";
    case INFERD_CODEC_PNG: return "image/png";
    case INFERD_CODEC_UNKNOWN: break;
    }
    return NULL;
}

/* --- shared helpers --------------------------------------------------------- */

static inferd_status check_input(const void *data, size_t len, inferd_image_codec *codec,
                                 inferd_error *err)
{
    if (!data || len == 0)
        return inferd_error_set(err, INFERD_EINVAL, "image data is empty");
    *codec = inferd_image_sniff(data, len);
    if (*codec == INFERD_CODEC_UNKNOWN)
        return inferd_error_set(err, INFERD_EUNSUPPORTED, "not a JPEG or PNG image");
    return INFERD_OK;
}

static inferd_status check_size(const char *codec, uint32_t width, uint32_t height,
                                uint64_t max_pixels, inferd_error *err)
{
    if (width == 0 || height == 0 || width > INFERD_IMAGE_MAX_DIM || height > INFERD_IMAGE_MAX_DIM)
        return inferd_error_set(err, INFERD_ERANGE,
                                "%s image %ux%u: width and height must be in 1..%u", codec, width,
                                height, INFERD_IMAGE_MAX_DIM);
    uint64_t pixels = (uint64_t)width * height;
    if (pixels > max_pixels)
        return inferd_error_set(err, INFERD_ERANGE,
                                "%s image %ux%u (%llu pixels) exceeds the limit of %llu pixels",
                                codec, width, height, (unsigned long long)pixels,
                                (unsigned long long)max_pixels);
    return INFERD_OK;
}

/* RGB <-> BGR (and RGBA <-> BGRA): swaps the first and third byte of each
 * pixel of a packed row. */
static void swap_red_blue(uint8_t *row, uint32_t width, size_t channels)
{
    for (uint32_t x = 0; x < width; x++, row += channels) {
        uint8_t r = row[0];
        row[0] = row[2];
        row[2] = r;
    }
}

/* --- PNG -------------------------------------------------------------------- */

static inferd_status png_fail(int ret, inferd_error *err)
{
    switch (ret) {
    case SPNG_EMEM:
        return inferd_error_set(err, INFERD_ENOMEM, "PNG: %s", spng_strerror(ret));
    case SPNG_EUSER_WIDTH:
    case SPNG_EUSER_HEIGHT:
        return inferd_error_set(err, INFERD_ERANGE, "PNG: %s (at most %u)", spng_strerror(ret),
                                INFERD_IMAGE_MAX_DIM);
    case SPNG_IO_EOF: /* spng says only "end of stream" */
        return inferd_error_set(err, INFERD_EINVAL, "PNG: truncated data (%s)", spng_strerror(ret));
    case SPNG_ECHUNK_LIMITS:
        return inferd_error_set(err, INFERD_ERANGE, "PNG: %s", spng_strerror(ret));
    default:
        return inferd_error_set(err, INFERD_EINVAL, "PNG: %s", spng_strerror(ret));
    }
}

/* A decoder context over data with its limits set and the header read.
 * On success the caller owns *out and frees it with spng_ctx_free. */
static inferd_status png_open(const void *data, size_t len, spng_ctx **out,
                              struct spng_ihdr *ihdr, inferd_error *err)
{
    spng_ctx *ctx = spng_ctx_new(0);
    if (!ctx)
        return inferd_error_set(err, INFERD_ENOMEM, "PNG: cannot create a decoder");
    int ret = spng_set_image_limits(ctx, INFERD_IMAGE_MAX_DIM, INFERD_IMAGE_MAX_DIM);
    if (!ret)
        ret = spng_set_chunk_limits(ctx, PNG_CHUNK_LIMIT, PNG_CACHE_LIMIT);
    if (!ret)
        ret = spng_set_png_buffer(ctx, data, len);
    if (!ret)
        ret = spng_get_ihdr(ctx, ihdr);
    if (ret) {
        spng_ctx_free(ctx);
        return png_fail(ret, err);
    }
    *out = ctx;
    return INFERD_OK;
}

static inferd_status png_probe(const void *data, size_t len, uint32_t *width, uint32_t *height,
                               inferd_error *err)
{
    spng_ctx *ctx;
    struct spng_ihdr ihdr;
    inferd_status st = png_open(data, len, &ctx, &ihdr, err);
    if (st != INFERD_OK)
        return st;
    spng_ctx_free(ctx);
    *width = ihdr.width;
    *height = ihdr.height;
    return INFERD_OK;
}

/* Decodes into a packed buffer of spng_fmt (RGB8 or RGBA8) of exactly size
 * bytes; spng converts every PNG colour type and bit depth to those. */
static inferd_status png_decode_into(spng_ctx *ctx, int spng_fmt, void *dst, size_t size,
                                     inferd_error *err)
{
    size_t need;
    int ret = spng_decoded_image_size(ctx, spng_fmt, &need);
    if (!ret && need != size)
        return inferd_error_set(err, INFERD_EINTERNAL, "PNG: decoded size %zu, expected %zu",
                                need, size);
    /* tRNS becomes alpha only where there is an alpha channel to hold it. */
    if (!ret)
        ret = spng_decode_image(ctx, dst, size, spng_fmt,
                                spng_fmt == SPNG_FMT_RGBA8 ? SPNG_DECODE_TRNS : 0);
    /* spng stops after the last row; reading on to IEND makes a file cut
     * after its pixels (a broken transfer) an error, as it is for JPEG.
     * (A missing CRC of IEND itself still passes: spng does not read it.) */
    if (!ret)
        ret = spng_decode_chunks(ctx);
    return ret ? png_fail(ret, err) : INFERD_OK;
}

static inferd_status png_decode(const void *data, size_t len, inferd_pixel_format fmt,
                                uint64_t max_pixels, inferd_image **out, inferd_error *err)
{
    spng_ctx *ctx;
    struct spng_ihdr ihdr;
    inferd_status st = png_open(data, len, &ctx, &ihdr, err);
    if (st != INFERD_OK)
        return st;
    inferd_image *img = NULL;
    uint8_t *rgb = NULL; /* scratch for GRAY8, which spng cannot produce from colour */
    st = check_size("PNG", ihdr.width, ihdr.height, max_pixels, err);
    if (st == INFERD_OK)
        st = inferd_image_new(fmt, ihdr.width, ihdr.height, &img, err);
    if (st != INFERD_OK)
        goto done;

    size_t channels = inferd_pixel_channels(fmt);
    size_t npixels = (size_t)img->width * img->height; /* packed: stride == width * channels */
    if (fmt == INFERD_PIXEL_GRAY8) {
        if (!(rgb = malloc(npixels * 3))) {
            st = inferd_error_set(err, INFERD_ENOMEM, "PNG: out of memory");
            goto done;
        }
        st = png_decode_into(ctx, SPNG_FMT_RGB8, rgb, npixels * 3, err);
        for (size_t i = 0; st == INFERD_OK && i < npixels; i++)
            img->data[i] = inferd__luma(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]);
    } else {
        int spng_fmt = channels == 4 ? SPNG_FMT_RGBA8 : SPNG_FMT_RGB8;
        st = png_decode_into(ctx, spng_fmt, img->data, npixels * channels, err);
        if (st == INFERD_OK && (fmt == INFERD_PIXEL_BGR8 || fmt == INFERD_PIXEL_BGRA8))
            for (uint32_t y = 0; y < img->height; y++)
                swap_red_blue(img->data + y * img->stride, img->width, channels);
    }
done:
    free(rgb);
    spng_ctx_free(ctx);
    if (st != INFERD_OK) {
        inferd_image_free(img);
        return st;
    }
    *out = img;
    return INFERD_OK;
}

static inferd_status png_encode(const inferd_image *img, void **out, size_t *out_len,
                                inferd_error *err)
{
    size_t channels = inferd_pixel_channels(img->format);
    struct spng_ihdr ihdr = {
        .width = img->width,
        .height = img->height,
        .bit_depth = 8,
        .color_type = channels == 1   ? SPNG_COLOR_TYPE_GRAYSCALE
                      : channels == 3 ? SPNG_COLOR_TYPE_TRUECOLOR
                                      : SPNG_COLOR_TYPE_TRUECOLOR_ALPHA,
    };
    bool bgr = img->format == INFERD_PIXEL_BGR8 || img->format == INFERD_PIXEL_BGRA8;
    size_t row_len = (size_t)img->width * channels;
    uint8_t *row = NULL; /* scratch for the BGR -> RGB conversion of one row */
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    if (!ctx || (bgr && !(row = malloc(row_len)))) {
        spng_ctx_free(ctx);
        return inferd_error_set(err, INFERD_ENOMEM, "PNG: out of memory");
    }

    /* Row by row, so that the image's stride needs no packed copy. */
    int ret = spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
    if (!ret)
        ret = spng_set_ihdr(ctx, &ihdr);
    if (!ret)
        ret = spng_encode_image(ctx, NULL, 0, SPNG_FMT_PNG,
                                SPNG_ENCODE_PROGRESSIVE | SPNG_ENCODE_FINALIZE);
    for (uint32_t y = 0; !ret && y < img->height; y++) {
        const uint8_t *src = img->data + y * img->stride;
        if (bgr) {
            memcpy(row, src, row_len);
            swap_red_blue(row, img->width, channels);
            src = row;
        }
        ret = spng_encode_row(ctx, src, row_len);
        if (ret == SPNG_EOI && y + 1 == img->height)
            ret = 0; /* the last row ends the image */
    }
    void *png = NULL;
    size_t len = 0;
    if (!ret)
        png = spng_get_png_buffer(ctx, &len, &ret); /* malloc'd, now ours */
    free(row);
    spng_ctx_free(ctx);
    if (!png)
        return png_fail(ret, err);
    *out = png;
    *out_len = len;
    return INFERD_OK;
}

/* --- JPEG ------------------------------------------------------------------- */

static int tj_pixel_format(inferd_pixel_format fmt)
{
    switch (fmt) {
    case INFERD_PIXEL_GRAY8: return TJPF_GRAY;
    case INFERD_PIXEL_RGB8: return TJPF_RGB;
    case INFERD_PIXEL_BGR8: return TJPF_BGR;
    case INFERD_PIXEL_RGBA8: return TJPF_RGBA;
    case INFERD_PIXEL_BGRA8: return TJPF_BGRA;
    case INFERD_PIXEL_INVALID: break;
    }
    return TJPF_UNKNOWN;
}

static inferd_status jpeg_fail(tjhandle tj, inferd_error *err)
{
    return inferd_error_set(err, INFERD_EINVAL, "JPEG: %s", tjGetErrorStr2(tj));
}

/* Reads the header of data into width, height and colorspace. */
static inferd_status jpeg_header(tjhandle tj, const void *data, size_t len, uint32_t *width,
                                 uint32_t *height, int *colorspace, inferd_error *err)
{
    int w = 0, h = 0, subsamp = -1;
    if (tjDecompressHeader3(tj, data, (unsigned long)len, &w, &h, &subsamp, colorspace) != 0)
        return jpeg_fail(tj, err);
    /* On data that ends before the frame header, TurboJPEG 2.1 reports
     * success (a "tables-only" stream) and leaves the outputs unset. */
    if (w <= 0 || h <= 0)
        return inferd_error_set(err, INFERD_EINVAL, "JPEG: no frame header (truncated data?)");
    *width = (uint32_t)w;
    *height = (uint32_t)h;
    return INFERD_OK;
}

static inferd_status jpeg_probe(const void *data, size_t len, uint32_t *width, uint32_t *height,
                                inferd_error *err)
{
    tjhandle tj = tjInitDecompress();
    if (!tj)
        return inferd_error_set(err, INFERD_ENOMEM, "JPEG: cannot create a decompressor: %s",
                                tjGetErrorStr2(NULL));
    int colorspace;
    inferd_status st = jpeg_header(tj, data, len, width, height, &colorspace, err);
    tjDestroy(tj);
    return st;
}

static inferd_status jpeg_decode(const void *data, size_t len, inferd_pixel_format fmt,
                                 uint64_t max_pixels, inferd_image **out, inferd_error *err)
{
    tjhandle tj = tjInitDecompress();
    if (!tj)
        return inferd_error_set(err, INFERD_ENOMEM, "JPEG: cannot create a decompressor: %s",
                                tjGetErrorStr2(NULL));
    uint32_t width, height;
    int colorspace;
    inferd_image *img = NULL;
    inferd_status st = jpeg_header(tj, data, len, &width, &height, &colorspace, err);
    if (st == INFERD_OK)
        st = check_size("JPEG", width, height, max_pixels, err);
    /* libjpeg-turbo has no CMYK -> RGB conversion; say so before decoding. */
    if (st == INFERD_OK && (colorspace == TJCS_CMYK || colorspace == TJCS_YCCK))
        st = inferd_error_set(err, INFERD_EUNSUPPORTED, "JPEG: CMYK images are not supported");
    if (st == INFERD_OK)
        st = inferd_image_new(fmt, width, height, &img, err);
    /* A truncated or corrupt JPEG is only a warning to libjpeg (it fills the
     * rest with gray); TurboJPEG turns warnings into a failure, which we keep:
     * an inference result on half a picture is worse than an error.
     * STOPONWARNING stops at the first instead of decoding the rest for
     * nothing. LIMITSCANS refuses progressive JPEGs with absurd scan counts
     * (a CPU-time bomb). */
    if (st == INFERD_OK &&
        tjDecompress2(tj, data, (unsigned long)len, img->data, (int)width, (int)img->stride,
                      (int)height, tj_pixel_format(fmt),
                      TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS) != 0)
        st = jpeg_fail(tj, err);
    tjDestroy(tj);
    if (st != INFERD_OK) {
        inferd_image_free(img);
        return st;
    }
    *out = img;
    return INFERD_OK;
}

static inferd_status jpeg_encode(const inferd_image *img, int quality, void **out, size_t *out_len,
                                 inferd_error *err)
{
    if (quality < 1 || quality > 100)
        return inferd_error_set(err, INFERD_ERANGE, "JPEG quality %d is out of range 1..100",
                                quality);
    if (img->stride > INT_MAX)
        return inferd_error_set(err, INFERD_ERANGE, "JPEG: image stride %zu is too large",
                                img->stride);
    tjhandle tj = tjInitCompress();
    if (!tj)
        return inferd_error_set(err, INFERD_ENOMEM, "JPEG: cannot create a compressor: %s",
                                tjGetErrorStr2(NULL));
    /* 4:2:0 is what cameras and browsers produce; gray has no chroma. */
    int subsamp = img->format == INFERD_PIXEL_GRAY8 ? TJSAMP_GRAY : TJSAMP_420;
    unsigned char *jpeg = NULL; /* tjAlloc'd: must go back through tjFree */
    unsigned long jpeg_len = 0;
    inferd_status st = INFERD_OK;
    if (tjCompress2(tj, img->data, (int)img->width, (int)img->stride, (int)img->height,
                    tj_pixel_format(img->format), &jpeg, &jpeg_len, subsamp, quality, 0) != 0) {
        st = inferd_error_set(err, INFERD_EINVAL, "JPEG: %s", tjGetErrorStr2(tj));
    } else {
        /* Copied so that the caller can free() it as the API promises. */
        void *copy = malloc(jpeg_len);
        if (copy) {
            memcpy(copy, jpeg, jpeg_len);
            *out = copy;
            *out_len = jpeg_len;
        } else {
            st = inferd_error_set(err, INFERD_ENOMEM, "JPEG: out of memory");
        }
    }
    tjFree(jpeg);
    tjDestroy(tj);
    return st;
}

/* --- API -------------------------------------------------------------------- */

inferd_status inferd_image_probe(const void *data, size_t len, uint32_t *width, uint32_t *height,
                                 inferd_error *err)
{
    inferd_image_codec codec;
    inferd_status st = check_input(data, len, &codec, err);
    if (st != INFERD_OK)
        return st;
    uint32_t w, h;
    st = codec == INFERD_CODEC_JPEG ? jpeg_probe(data, len, &w, &h, err)
                                    : png_probe(data, len, &w, &h, err);
    if (st != INFERD_OK)
        return st;
    if (width)
        *width = w;
    if (height)
        *height = h;
    return INFERD_OK;
}

inferd_status inferd_image_decode(const void *data, size_t len, inferd_pixel_format fmt,
                                  uint64_t max_pixels, inferd_image **out, inferd_error *err)
{
    if (!out)
        return inferd_error_set(err, INFERD_EINVAL, "out is NULL");
    *out = NULL;
    if (inferd_pixel_channels(fmt) == 0)
        return inferd_error_set(err, INFERD_EINVAL, "invalid pixel format %d", (int)fmt);
    inferd_image_codec codec;
    inferd_status st = check_input(data, len, &codec, err);
    if (st != INFERD_OK)
        return st;
    if (max_pixels == 0)
        max_pixels = INFERD_IMAGE_DEFAULT_MAX_PIXELS;
    return codec == INFERD_CODEC_JPEG ? jpeg_decode(data, len, fmt, max_pixels, out, err)
                                      : png_decode(data, len, fmt, max_pixels, out, err);
}

inferd_status inferd_image_encode(const inferd_image *img, inferd_image_codec codec, int quality,
                                  void **out, size_t *out_len, inferd_error *err)
{
    if (!out || !out_len)
        return inferd_error_set(err, INFERD_EINVAL, "out is NULL");
    *out = NULL;
    *out_len = 0;
    if (!img || !img->data)
        return inferd_error_set(err, INFERD_EINVAL, "image is NULL");
    size_t channels = inferd_pixel_channels(img->format);
    if (channels == 0)
        return inferd_error_set(err, INFERD_EINVAL, "invalid pixel format %d", (int)img->format);
    /* The image may have been built by hand rather than by new/wrap. */
    if (img->width == 0 || img->height == 0 || img->width > INFERD_IMAGE_MAX_DIM ||
        img->height > INFERD_IMAGE_MAX_DIM)
        return inferd_error_set(err, INFERD_ERANGE, "image %ux%u: width and height must be in 1..%u",
                                img->width, img->height, INFERD_IMAGE_MAX_DIM);
    if (img->stride < (size_t)img->width * channels)
        return inferd_error_set(err, INFERD_EINVAL,
                                "image stride %zu is less than width %u * %zu channels", img->stride,
                                img->width, channels);
    switch (codec) {
    case INFERD_CODEC_PNG: return png_encode(img, out, out_len, err);
    case INFERD_CODEC_JPEG: return jpeg_encode(img, quality, out, out_len, err);
    case INFERD_CODEC_UNKNOWN: break;
    }
    return inferd_error_set(err, INFERD_EUNSUPPORTED, "cannot encode to codec %d", (int)codec);
}
