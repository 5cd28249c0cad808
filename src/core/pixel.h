/* core/pixel.h: pixel arithmetic shared by the image codecs and input
 * contracts. Internal. */
#ifndef INFERD_CORE_PIXEL_H
#define INFERD_CORE_PIXEL_H

#include <stdint.h>

/* ITU-R BT.601 luma in 16-bit fixed point, the weights libjpeg uses, so that
 * a gray PNG, a gray JPEG and a gray tensor of the same picture agree. The
 * weights sum to exactly 65536, so that r == g == b maps to itself. */
static inline uint8_t inferd__luma(uint8_t r, uint8_t g, uint8_t b)
{
    return (uint8_t)((19595u * r + 38470u * g + 7471u * b + 32768u) >> 16);
}

#endif
