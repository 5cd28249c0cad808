/* bench/raw_session.h: a bare ONNX Runtime session, the "no inferd" side of
 * the benchmarks that compare against ONNX Runtime itself: its own env, one
 * session with the backend's defaults (all graph optimisations, ONNX
 * Runtime's default thread counts), the first input's and output's names.
 * raw_open_threads sets the intra-op thread count instead (0: ORT's
 * default, one per core). */
#ifndef INFERD_BENCH_RAW_SESSION_H
#define INFERD_BENCH_RAW_SESSION_H

#include <onnxruntime_c_api.h>

#include <stdio.h>
#include <string.h>

typedef struct raw_session {
    const OrtApi *api;
    OrtEnv *env;
    OrtMemoryInfo *cpu;
    OrtSession *session;
    char *in_name, *out_name; /* ORT's default allocator's */
} raw_session;

/* Prints and releases a failed status; 1 if it failed, 0 if s is NULL. */
static inline int raw_failed(const OrtApi *api, OrtStatus *s, const char *what)
{
    if (!s)
        return 0;
    fprintf(stderr, "onnxruntime: %s: %s\n", what, api->GetErrorMessage(s));
    api->ReleaseStatus(s);
    return 1;
}

static inline void raw_close(raw_session *r)
{
    OrtAllocator *alloc = NULL;
    if (r->api && !raw_failed(r->api, r->api->GetAllocatorWithDefaultOptions(&alloc), "alloc")) {
        if (r->in_name)
            raw_failed(r->api, r->api->AllocatorFree(alloc, r->in_name), "free");
        if (r->out_name)
            raw_failed(r->api, r->api->AllocatorFree(alloc, r->out_name), "free");
    }
    if (r->session)
        r->api->ReleaseSession(r->session);
    if (r->cpu)
        r->api->ReleaseMemoryInfo(r->cpu);
    if (r->env)
        r->api->ReleaseEnv(r->env);
    memset(r, 0, sizeof *r);
}

/* 0, or 1 after a message (and nothing left open). intra_threads: ONNX
 * Runtime's intra-op threads, 0 for its default. */
static inline int raw_open_threads(raw_session *r, const char *path, int intra_threads)
{
    memset(r, 0, sizeof *r);
    r->api = OrtGetApiBase()->GetApi(ORT_API_VERSION);
    if (!r->api) {
        fprintf(stderr, "onnxruntime: this library lacks API version %d\n", ORT_API_VERSION);
        return 1;
    }
    const OrtApi *api = r->api;
    OrtSessionOptions *so = NULL;
    OrtAllocator *alloc = NULL;
    int bad = raw_failed(api, api->CreateEnv(ORT_LOGGING_LEVEL_WARNING, "raw", &r->env), "env") ||
              raw_failed(api, api->CreateCpuMemoryInfo(OrtDeviceAllocator, OrtMemTypeDefault,
                                                       &r->cpu), "memory info") ||
              raw_failed(api, api->CreateSessionOptions(&so), "options") ||
              raw_failed(api, api->SetSessionGraphOptimizationLevel(so, ORT_ENABLE_ALL), "opt") ||
              raw_failed(api, api->SetIntraOpNumThreads(so, intra_threads), "intra") ||
              raw_failed(api, api->SetInterOpNumThreads(so, 0), "inter") ||
              raw_failed(api, api->CreateSession(r->env, path, so, &r->session), path) ||
              raw_failed(api, api->GetAllocatorWithDefaultOptions(&alloc), "alloc") ||
              raw_failed(api, api->SessionGetInputName(r->session, 0, alloc, &r->in_name), "in") ||
              raw_failed(api, api->SessionGetOutputName(r->session, 0, alloc, &r->out_name), "out");
    if (so)
        api->ReleaseSessionOptions(so);
    if (bad)
        raw_close(r);
    return bad;
}

/* 0, or 1 after a message: a session with ONNX Runtime's default threads. */
static inline int raw_open(raw_session *r, const char *path)
{
    return raw_open_threads(r, path, 0);
}

#endif
