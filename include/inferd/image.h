/* inferd/image.h: decoded images, and JPEG/PNG decoding and encoding.
 *
 * An image is 8 bits per channel, interleaved, rows `stride` bytes apart
 * (stride >= width * channels). Like a tensor, its pixels are owned by the
 * image or by someone else through a release callback.
 *
 * Decoding checks the header before it allocates anything: an image larger
 * than max_pixels (a decompression bomb) is refused without decoding it.
 */
#ifndef INFERD_IMAGE_H
#define INFERD_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "inferd/status.h"
#include "inferd/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum inferd_pixel_format {
    INFERD_PIXEL_INVALID = 0,
    INFERD_PIXEL_GRAY8, /* 1 channel */
    INFERD_PIXEL_RGB8,  /* 3 channels */
    INFERD_PIXEL_BGR8,
    INFERD_PIXEL_RGBA8, /* 4 channels */
    INFERD_PIXEL_BGRA8
} inferd_pixel_format;

/* Largest width or height accepted anywhere (a sanity bound, not a policy). */
#define INFERD_IMAGE_MAX_DIM 65535u
/* Default pixel limit for decoding: 64 Mpx (8192 x 8192). */
#define INFERD_IMAGE_DEFAULT_MAX_PIXELS (64u * 1024u * 1024u)

INFERD_API size_t inferd_pixel_channels(inferd_pixel_format fmt); /* 0 for INVALID */
/* "gray", "rgb", "bgr", "rgba", "bgra"; and the port formats "image/rgb", ... */
INFERD_API const char *inferd_pixel_format_name(inferd_pixel_format fmt);
INFERD_API inferd_status inferd_pixel_format_parse(const char *name, inferd_pixel_format *out,
                                                   inferd_error *err);

typedef struct inferd_image {
    inferd_pixel_format format;
    uint32_t width, height;
    size_t stride;    /* bytes between rows */
    uint8_t *data;
    /* private: who frees data */
    inferd_release_fn release;
    void *release_ctx;
} inferd_image;

/* A new image with owned, zeroed pixels and stride = width * channels.
 * A zero width or height, or one above INFERD_IMAGE_MAX_DIM, is INFERD_ERANGE. */
INFERD_API inferd_status inferd_image_new(inferd_pixel_format fmt, uint32_t width, uint32_t height,
                                          inferd_image **out, inferd_error *err);
/* An image over pixels owned elsewhere (see inferd_tensor_wrap for release).
 * stride 0 means width * channels. */
INFERD_API inferd_status inferd_image_wrap(inferd_pixel_format fmt, uint32_t width, uint32_t height,
                                           size_t stride, uint8_t *data, inferd_release_fn release,
                                           void *release_ctx, inferd_image **out,
                                           inferd_error *err);
INFERD_API void inferd_image_free(inferd_image *img);

/* Encoded formats. */
typedef enum inferd_image_codec {
    INFERD_CODEC_UNKNOWN = 0,
    INFERD_CODEC_JPEG,
    INFERD_CODEC_PNG
} inferd_image_codec;

/* Sniffs the magic bytes; INFERD_CODEC_UNKNOWN if neither. */
INFERD_API inferd_image_codec inferd_image_sniff(const void *data, size_t len);
/* "image/jpeg", "image/png", or NULL. */
INFERD_API const char *inferd_image_codec_mime(inferd_image_codec codec);

/* Reads width and height from the header without decoding. */
INFERD_API inferd_status inferd_image_probe(const void *data, size_t len, uint32_t *width,
                                            uint32_t *height, inferd_error *err);
/* Decodes JPEG or PNG into fmt (GRAY8, RGB8, BGR8, RGBA8 or BGRA8).
 * max_pixels 0 means INFERD_IMAGE_DEFAULT_MAX_PIXELS. */
INFERD_API inferd_status inferd_image_decode(const void *data, size_t len, inferd_pixel_format fmt,
                                             uint64_t max_pixels, inferd_image **out,
                                             inferd_error *err);
/* Encodes to PNG (lossless) or JPEG (quality 1..100, ignored for PNG).
 * *out is malloc'd; free with free(). */
INFERD_API inferd_status inferd_image_encode(const inferd_image *img, inferd_image_codec codec,
                                             int quality, void **out, size_t *out_len,
                                             inferd_error *err);

#ifdef __cplusplus
}
#endif
#endif /* INFERD_IMAGE_H */
