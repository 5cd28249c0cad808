/* image.c: pixel formats and decoded images (the codecs are in image_codec.c).
 *
 * Ownership: an image owns its struct; its pixels are released through
 * img->release, which is owned_release (free) for inferd_image_new and the
 * caller's callback (or nothing) for inferd_image_wrap.
 */
#include "inferd/image.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Same alignment as owned tensor data, so that preprocessing can use the
 * same vector loads on both. */
#define IMAGE_ALIGN 64u

static const struct {
    inferd_pixel_format fmt;
    size_t channels;
    const char *name;
    const char *port; /* the port data format naming the same pixels */
} formats[] = {
    {INFERD_PIXEL_GRAY8, 1, "gray", "image/gray"},
    {INFERD_PIXEL_RGB8, 3, "rgb", "image/rgb"},
    {INFERD_PIXEL_BGR8, 3, "bgr", "image/bgr"},
    {INFERD_PIXEL_RGBA8, 4, "rgba", "image/rgba"},
    {INFERD_PIXEL_BGRA8, 4, "bgra", "image/bgra"},
};
#define NFORMATS (sizeof formats / sizeof formats[0])

size_t inferd_pixel_channels(inferd_pixel_format fmt)
{
    for (size_t i = 0; i < NFORMATS; i++)
        if (formats[i].fmt == fmt)
            return formats[i].channels;
    return 0;
}

const char *inferd_pixel_format_name(inferd_pixel_format fmt)
{
    for (size_t i = 0; i < NFORMATS; i++)
        if (formats[i].fmt == fmt)
            return formats[i].name;
    return "invalid"; /* never NULL, so that it can be printed unconditionally */
}

inferd_status inferd_pixel_format_parse(const char *name, inferd_pixel_format *out,
                                        inferd_error *err)
{
    if (!name || !out)
        return inferd_error_set(err, INFERD_EINVAL, "pixel format name is NULL");
    for (size_t i = 0; i < NFORMATS; i++) {
        if (strcmp(name, formats[i].name) == 0 || strcmp(name, formats[i].port) == 0) {
            *out = formats[i].fmt;
            return INFERD_OK;
        }
    }
    return inferd_error_set(err, INFERD_EINVAL,
                            "unknown pixel format '%s' (expected gray, rgb, bgr, rgba or bgra)",
                            name);
}

static inferd_status check_dim(const char *what, uint32_t v, inferd_error *err)
{
    if (v == 0 || v > INFERD_IMAGE_MAX_DIM)
        return inferd_error_set(err, INFERD_ERANGE, "image %s %u is out of range 1..%u", what, v,
                                INFERD_IMAGE_MAX_DIM);
    return INFERD_OK;
}

/* Checks format and dimensions, resolves stride 0 to the packed row size, and
 * returns the byte size of the pixels (the last row need not be padded). */
static inferd_status image_layout(inferd_pixel_format fmt, uint32_t width, uint32_t height,
                                  size_t *stride, size_t *nbytes, inferd_error *err)
{
    size_t channels = inferd_pixel_channels(fmt);
    if (channels == 0)
        return inferd_error_set(err, INFERD_EINVAL, "invalid pixel format %d", (int)fmt);
    inferd_status st = check_dim("width", width, err);
    if (st == INFERD_OK)
        st = check_dim("height", height, err);
    if (st != INFERD_OK)
        return st;
    /* width * channels fits (65535 * 4), the products with height may not
     * on a 32-bit size_t. */
    size_t row = (size_t)width * channels;
    if (*stride == 0)
        *stride = row;
    if (*stride < row)
        return inferd_error_set(err, INFERD_EINVAL,
                                "image stride %zu is less than width %u * %zu channels = %zu",
                                *stride, width, channels, row);
    if (height - 1 > (SIZE_MAX - row) / *stride)
        return inferd_error_set(err, INFERD_ERANGE, "image %ux%u with stride %zu is too large",
                                width, height, *stride);
    *nbytes = *stride * (height - 1) + row;
    return INFERD_OK;
}

static void owned_release(void *ctx, void *data)
{
    (void)ctx;
    free(data);
}

static inferd_image *image_alloc(inferd_pixel_format fmt, uint32_t width, uint32_t height,
                                 size_t stride)
{
    inferd_image *img = calloc(1, sizeof *img);
    if (!img)
        return NULL;
    img->format = fmt;
    img->width = width;
    img->height = height;
    img->stride = stride;
    return img;
}

inferd_status inferd_image_new(inferd_pixel_format fmt, uint32_t width, uint32_t height,
                               inferd_image **out, inferd_error *err)
{
    if (!out)
        return inferd_error_set(err, INFERD_EINVAL, "out is NULL");
    *out = NULL;
    size_t stride = 0, nbytes;
    inferd_status st = image_layout(fmt, width, height, &stride, &nbytes, err);
    if (st != INFERD_OK)
        return st;
    /* aligned_alloc wants a multiple of the alignment. */
    if (nbytes > SIZE_MAX - (IMAGE_ALIGN - 1))
        return inferd_error_set(err, INFERD_ERANGE, "image %ux%u is too large", width, height);
    size_t alloc = (nbytes + IMAGE_ALIGN - 1) / IMAGE_ALIGN * IMAGE_ALIGN;

    inferd_image *img = image_alloc(fmt, width, height, stride);
    uint8_t *data = img ? aligned_alloc(IMAGE_ALIGN, alloc) : NULL;
    if (!data) {
        free(img);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory allocating a %ux%u %s image",
                                width, height, inferd_pixel_format_name(fmt));
    }
    memset(data, 0, alloc);
    img->data = data;
    img->release = owned_release;
    *out = img;
    return INFERD_OK;
}

inferd_status inferd_image_wrap(inferd_pixel_format fmt, uint32_t width, uint32_t height,
                                size_t stride, uint8_t *data, inferd_release_fn release,
                                void *release_ctx, inferd_image **out, inferd_error *err)
{
    if (!out)
        return inferd_error_set(err, INFERD_EINVAL, "out is NULL");
    *out = NULL;
    size_t nbytes;
    inferd_status st = image_layout(fmt, width, height, &stride, &nbytes, err);
    if (st != INFERD_OK)
        return st;
    if (!data)
        return inferd_error_set(err, INFERD_EINVAL, "image data is NULL");
    inferd_image *img = image_alloc(fmt, width, height, stride);
    if (!img)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory allocating an image");
    img->data = data;
    img->release = release;
    img->release_ctx = release_ctx;
    *out = img;
    return INFERD_OK;
}

void inferd_image_free(inferd_image *img)
{
    if (!img)
        return;
    if (img->release)
        img->release(img->release_ctx, img->data);
    free(img);
}
