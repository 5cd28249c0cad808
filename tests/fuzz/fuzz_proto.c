/* fuzz_proto: what a portable plugin process sends the daemon: the frame
 * reader over arbitrary bytes (lengths, headers, blob tables), and every
 * frame it accepts decoded as a value. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "portable/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    proto_reader r;
    proto_reader_init(&r);
    if (size && !(r.buf = malloc(size)))
        return 0;
    if (size)
        memcpy(r.buf, data, size);
    r.len = r.cap = size;
    for (;;) {
        proto_frame f = {0};
        int got = 0;
        if (proto_reader_next(&r, &f, &got, NULL) != INFERD_OK || !got)
            break;
        inferd_value *v = NULL;
        if (proto_decode_value(f.header, &f, &v, NULL) == INFERD_OK)
            inferd_value_free(v);
        proto_frame_clear(&f);
    }
    proto_reader_clear(&r);
    return 0;
}
