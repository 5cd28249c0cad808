/* fuzz_kserve: the body of a KServe v2 inference request (POST
 * /v2/models/M/infer), JSON and Triton's binary tensor data, checked
 * against a model with inputs of several datatypes and shapes.
 *
 * The input's first byte chooses the headers: bit 0, whether the request
 * has Inference-Header-Content-Length; bits 1-7 with the next byte, that
 * header's value when it has (the JSON's length, so that most runs split
 * the body where a client would); the rest is the body. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "service/kserve_request.h"

static const ks_model model = {
    .name = "fuzzed",
    .n_in = 3,
    .in = (inferd_tensor_info[]){
        {"x", INFERD_DTYPE_FLOAT32, 2, {-1, 3}},
        {"ids", INFERD_DTYPE_INT64, 1, {2}},
        {"mask", INFERD_DTYPE_UINT8, 3, {1, -1, -1}},
    },
    .n_out = 2,
    .out = (inferd_tensor_info[]){
        {"y", INFERD_DTYPE_FLOAT32, 2, {-1, 3}},
        {"half", INFERD_DTYPE_FLOAT16, 1, {-1}},
    },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    bool binary = data[0] & 1;
    char header[32];
    snprintf(header, sizeof header, "%u", (unsigned)((data[0] >> 1) | (data[1] << 7)));
    ks_call c = {.m = &model};
    c.in = calloc(model.n_in, sizeof *c.in);
    c.out = calloc(model.n_out, sizeof *c.out);
    c.binary = calloc(model.n_out, sizeof *c.binary);
    c.order = calloc(model.n_out, sizeof *c.order);
    inferd_error err = {0};
    if (c.in && c.out && c.binary && c.order)
        ks_parse_request(&c, (const char *)data + 2, size - 2, NULL, binary ? header : NULL, 64,
                         &err);
    ks_call_free(&c);
    return 0;
}
