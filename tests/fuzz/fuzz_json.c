/* fuzz_json: the JSON reader every request body goes through
 * (inferd_value_from_json with the HTTP bodies' depth limit), then the
 * writer on what it read: a value read must write back and read again to
 * an equal value. The same bytes go to the base64 decoder that estimation
 * bodies' images pass through: what it decodes must encode back to a text
 * that decodes to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inferd/value.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
static void base64_round_trip(const uint8_t *data, size_t size)
{
    void *raw = NULL, *again = NULL;
    size_t n = 0, m = 0, tlen = 0;
    if (inferd_base64_decode((const char *)data, size, &raw, &n, NULL) != INFERD_OK)
        return;
    char *text = inferd_base64_encode(raw, n, &tlen);
    if (!text || inferd_base64_decode(text, tlen, &again, &m, NULL) != INFERD_OK || m != n ||
        (n && memcmp(raw, again, n) != 0))
        abort();
    free(text), free(raw), free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    base64_round_trip(data, size);
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
