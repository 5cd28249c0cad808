/* fuzz_image: the image bytes every estimation request carries: sniffing,
 * the header probe, and a decode bounded to 4 megapixels (as the service
 * bounds it by image.max_pixels). */
#include <stdint.h>

#include "inferd/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (inferd_image_sniff(data, size) == INFERD_CODEC_UNKNOWN)
        return 0;
    uint32_t w = 0, h = 0;
    if (inferd_image_probe(data, size, &w, &h, NULL) != INFERD_OK || (uint64_t)w * h > 4194304)
        return 0;
    inferd_image *img = NULL;
    if (inferd_image_decode(data, size, INFERD_PIXEL_RGB8, 4194304, &img, NULL) == INFERD_OK)
        inferd_image_free(img);
    return 0;
}
