/* fuzz_json: the JSON reader every request body goes through
 * (inferd_value_from_json with the HTTP bodies' depth limit), then the
 * writer on what it read: a value read must write back and read again to
 * an equal value. */
#include <stdint.h>
#include <stdlib.h>

#include "inferd/value.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    inferd_value *v = NULL;
    if (inferd_value_from_json((const char *)data, size, 32, &v, NULL) != INFERD_OK)
        return 0;
    char *text = NULL;
    size_t len = 0;
    if (inferd_value_to_json(v, INFERD_JSON_COMPACT, &text, &len, NULL) == INFERD_OK) {
        inferd_value *again = NULL;
        if (inferd_value_from_json(text, len, 64, &again, NULL) != INFERD_OK ||
            !inferd_value_equal(v, again))
            abort(); /* what we write, we must read back the same */
        inferd_value_free(again);
    }
    free(text);
    inferd_value_free(v);
    return 0;
}
