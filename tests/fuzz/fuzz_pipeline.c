/* fuzz_pipeline: pipeline files (JSON), read and checked against a
 * registry with no plugins: the parser and the checks of names, links and
 * properties' shapes run; nothing starts. */
#include <stdint.h>

#include "inferd/pipeline.h"
#include "inferd/registry.h"

static inferd_registry *reg;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!reg && inferd_registry_new(&reg, NULL) != INFERD_OK)
        return 0;
    inferd_pipeline *p = NULL;
    if (inferd_pipeline_new(reg, (const char *)data, size, "fuzz", &p, NULL) == INFERD_OK)
        inferd_pipeline_free(p);
    return 0;
}
