/* plugin/host_api.c: the function table handed to every plugin's entry point.
 * Filled from the same list (INFERD_HOST_API_V1_*) that declares its fields,
 * so the two cannot disagree. Static and immutable: shared by all plugins. */
#include "inferd/registry.h"

#define INFERD__API_INIT(n) .n = inferd_##n,
static const inferd_host_api host_api = {
    .size = sizeof(inferd_host_api),
    .abi_major = INFERD_ABI_MAJOR,
    .abi_minor = INFERD_ABI_MINOR,
    INFERD_HOST_API_V1_0(INFERD__API_INIT)
    INFERD_HOST_API_V1_1(INFERD__API_INIT)
    INFERD_HOST_API_V1_2(INFERD__API_INIT)
    INFERD_HOST_API_V1_3(INFERD__API_INIT)
    INFERD_HOST_API_V2_0(INFERD__API_INIT)
    INFERD_HOST_API_V2_1(INFERD__API_INIT)
    INFERD_HOST_API_V2_2(INFERD__API_INIT)
    INFERD_HOST_API_V2_3(INFERD__API_INIT)
    INFERD_HOST_API_V2_4(INFERD__API_INIT)
};
#undef INFERD__API_INIT

const inferd_host_api *inferd_host_api_get(void) { return &host_api; }
