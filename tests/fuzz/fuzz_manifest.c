/* fuzz_manifest: a portable package's manifest (<name>.json), the first
 * thing read from a zip a user uploads. */
#include <stdint.h>

#include "portable/package.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    portable_manifest *m = NULL;
    if (portable_manifest_parse("pkg", (const char *)data, size, &m, NULL) == INFERD_OK)
        portable_manifest_free(m);
    return 0;
}
