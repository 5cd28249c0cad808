/* service/kserve_request.h: a KServe v2 inference request's body, checked
 * against a model's declared inputs and outputs and decoded into tensors.
 * Internal to the daemon; apart from the HTTP server so that it can be
 * fuzzed alone (tests/fuzz/fuzz_kserve.c). */
#ifndef INFERD_SERVICE_KSERVE_REQUEST_H
#define INFERD_SERVICE_KSERVE_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include "inferd/plugin.h"
#include "inferd/status.h"
#include "inferd/tensor.h"
#include "inferd/value.h"

#define KS_BINARY_HEADER "Inference-Header-Content-Length"
/* The datatypes a request may name, in the order the messages list them. */
#define KS_DATATYPES "BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64"

/* A model as a request sees it (kserve_repo.h's ks_version owns one). */
typedef struct ks_model {
    char *name;                   /* the model's name */
    char *path;                   /* its file */
    inferd_model *model;
    size_t n_in, n_out;
    inferd_tensor_info *in, *out; /* owned arrays; their names are borrowed from model */
} ks_model;

typedef struct ks_call {
    const ks_model *m;     /* borrowed */
    inferd_value *req;     /* owned: the JSON part of the body */
    inferd_tensor **in;    /* owned, m->n_in, in the model's order */
    inferd_tensor **out;   /* owned, m->n_out, in the model's order */
    bool *binary;          /* m->n_out: reply this output as binary data */
    size_t *order;         /* m->n_out: the outputs to reply, in the reply's order */
    size_t n_order;
} ks_call;

void ks_call_free(ks_call *c);

/* Parses a request body into c (whose in, out, binary and order arrays the
 * caller has allocated for c->m): the JSON (max_depth deep at most), the
 * input tensors (from the JSON's data, or from the binary part after the
 * first binary_header bytes when that header is given), the outputs asked
 * for. encoding: the Content-Encoding header (NULL: none). EINVAL with the
 * reason for every fault of the request. */
inferd_status ks_parse_request(ks_call *c, const char *body, size_t len, const char *encoding,
                               const char *binary_header, unsigned max_depth, inferd_error *err);

typedef const char *(*ks_name_at_fn)(const void *items, size_t i);
const char *ks_io_name_at(const void *items, size_t i);
/* "a, b, c" (or "(none)") into buf, cut with "..." when it does not fit. */
const char *ks_name_list(const void *items, size_t n, ks_name_at_fn at, char *buf, size_t size);

#endif
