/* plugins/builtin/onnxruntime/onnxruntime.c: the "onnxruntime" backend, ONNX
 * Runtime through its C API, built and loaded like any third-party plugin.
 *
 * Owns: one OrtEnv (and a CPU memory description) per backend instance
 * (ort_backend, init/deinit); one OrtSession per loaded model with the names,
 * types and shapes of its inputs and outputs (ort_model, load/unload); and,
 * during a run, the input OrtValues (which only borrow the caller's tensor
 * data) and the output OrtValues until each is handed over to the tensor that
 * wraps it (its release callback frees it). Everything a model holds is
 * read-only after load, so `run` may be called from many threads at once:
 * ORT sessions allow concurrent Run calls.
 *
 * Options (the component's properties) are validated by the host; the
 * provider "cuda" falls back to the CPU with a warning, saying why, when
 * ONNX Runtime's CUDA provider or a library it needs is missing or the
 * session cannot be made on the GPU; the model's device op says where it
 * runs. docs/backends.md describes them.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strerror_r returning the message */
#endif
#include <inferd/plugin.h>

#include <onnxruntime_c_api.h>

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG "onnxruntime"

/* ---- ONNX Runtime's function table ----------------------------------------- */

static const OrtApi *ort;             /* process-wide, read-only once set */
static pthread_once_t ort_once = PTHREAD_ONCE_INIT;

static void ort_find_api(void)
{
    const OrtApiBase *base = OrtGetApiBase();
    ort = base ? base->GetApi(ORT_API_VERSION) : NULL;
}

/* ORT's error code as an inferd status. */
static inferd_status status_of(OrtErrorCode code)
{
    switch (code) {
    case ORT_NO_SUCHFILE: return INFERD_ENOTFOUND;
    case ORT_INVALID_ARGUMENT:
    case ORT_INVALID_PROTOBUF:
    case ORT_INVALID_GRAPH: return INFERD_EINVAL;
    case ORT_NOT_IMPLEMENTED: return INFERD_EUNSUPPORTED;
    default: return INFERD_EBACKEND;
    }
}

/* Turns a non-NULL OrtStatus into err ("CONTEXT: ORT's message") and releases
 * it. Returns INFERD_OK for NULL (success). */
static inferd_status ort_check(OrtStatus *s, inferd_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inferd_status ort_check(OrtStatus *s, inferd_error *err, const char *fmt, ...)
{
    if (!s)
        return INFERD_OK;
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    inferd_status st = status_of(ort->GetErrorCode(s));
    inferd_error_set(err, st, "%s: %s", what, ort->GetErrorMessage(s));
    ort->ReleaseStatus(s);
    return st;
}

/* ORT's message of a failed call, for a warning; releases the status. */
static void ort_message(OrtStatus *s, char *buf, size_t size)
{
    snprintf(buf, size, "%s", s ? ort->GetErrorMessage(s) : "no message");
    if (s)
        ort->ReleaseStatus(s);
}

static const struct {
    ONNXTensorElementDataType onnx;
    inferd_dtype dtype;
} dtypes[] = {
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL, INFERD_DTYPE_BOOL},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8, INFERD_DTYPE_UINT8},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8, INFERD_DTYPE_INT8},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16, INFERD_DTYPE_UINT16},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16, INFERD_DTYPE_INT16},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32, INFERD_DTYPE_UINT32},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32, INFERD_DTYPE_INT32},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64, INFERD_DTYPE_UINT64},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64, INFERD_DTYPE_INT64},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16, INFERD_DTYPE_FLOAT16},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, INFERD_DTYPE_FLOAT32},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE, INFERD_DTYPE_FLOAT64},
};

/* INFERD_DTYPE_INVALID for the types an inferd tensor cannot hold (strings,
 * bfloat16, float8, 4-bit, complex). */
static inferd_dtype dtype_of(ONNXTensorElementDataType t)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (dtypes[i].onnx == t)
            return dtypes[i].dtype;
    return INFERD_DTYPE_INVALID;
}

/* ---- the backend instance ---------------------------------------------------- */

typedef struct ort_backend {
    OrtEnv *env;            /* owned */
    OrtMemoryInfo *cpu;     /* owned; describes the callers' input buffers */
} ort_backend;

/* ORT's own log lines go to inferd's log under "onnxruntime". */
static void ort_log(void *param, OrtLoggingLevel severity, const char *category,
                    const char *logid, const char *code_location, const char *message)
{
    inferd_log_level level = severity >= ORT_LOGGING_LEVEL_ERROR     ? INFERD_LOG_ERROR
                             : severity == ORT_LOGGING_LEVEL_WARNING ? INFERD_LOG_WARN
                             : severity == ORT_LOGGING_LEVEL_INFO    ? INFERD_LOG_DEBUG
                                                                     : INFERD_LOG_TRACE;
    inferd_log(level, LOG, "%s", message);
}

static void ort_deinit(inferd_instance *self)
{
    ort_backend *b = inferd_instance_state(self);
    if (!b)
        return;
    if (b->cpu)
        ort->ReleaseMemoryInfo(b->cpu);
    if (b->env)
        ort->ReleaseEnv(b->env);
    free(b);
    inferd_instance_set_state(self, NULL);
}

static inferd_status ort_init(inferd_instance *self, const inferd_props *props, inferd_error *err)
{
    pthread_once(&ort_once, ort_find_api);
    if (!ort)
        return inferd_error_set(err, INFERD_EUNSUPPORTED,
                                "ONNX Runtime %s does not offer C API version %d (this plugin "
                                "needs ONNX Runtime 1.%d or newer)",
                                OrtGetApiBase()->GetVersionString(), ORT_API_VERSION,
                                ORT_API_VERSION);
    ort_backend *b = calloc(1, sizeof *b);
    if (!b)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    inferd_instance_set_state(self, b);
    OrtLoggingLevel level = inferd_log_enabled(INFERD_LOG_TRACE, LOG)   ? ORT_LOGGING_LEVEL_VERBOSE
                            : inferd_log_enabled(INFERD_LOG_DEBUG, LOG) ? ORT_LOGGING_LEVEL_INFO
                                                                        : ORT_LOGGING_LEVEL_WARNING;
    inferd_status st = ort_check(ort->CreateEnvWithCustomLogger(ort_log, NULL, level, "inferd",
                                                                &b->env), err, "CreateEnv");
    if (st == INFERD_OK)
        st = ort_check(ort->CreateCpuMemoryInfo(OrtDeviceAllocator, OrtMemTypeDefault, &b->cpu),
                       err, "CreateCpuMemoryInfo");
    if (st != INFERD_OK)
        ort_deinit(self);
    return st;
}

/* ---- models ---------------------------------------------------------------- */

typedef struct ort_io {
    char *name;                          /* owned */
    ONNXTensorElementDataType onnx;
    inferd_dtype dtype;
    size_t ndim;
    int64_t shape[INFERD_TENSOR_MAX_DIMS]; /* -1: dynamic */
} ort_io;

typedef struct ort_model {
    OrtSession *session;    /* owned */
    OrtRunOptions *shrink;  /* owned: a run that gives the CPU arena back; NULL: none */
    size_t shrink_above;    /* runs whose inputs are larger than this use it */
    char *label;            /* owned: the file's name, for messages */
    size_t n_in, n_out;
    ort_io *in, *out;       /* owned arrays */
    const char **in_names, **out_names; /* owned arrays of borrowed names (Run wants these) */
    char device[24];        /* where it runs: "cpu", "cuda:0" */
    char *why;              /* owned: why on the CPU though cuda was asked; NULL: as asked */
} ort_model;

static void model_free(ort_model *m)
{
    if (!m)
        return;
    if (m->session)
        ort->ReleaseSession(m->session);
    if (m->shrink)
        ort->ReleaseRunOptions(m->shrink);
    for (size_t i = 0; m->in && i < m->n_in; i++)
        free(m->in[i].name);
    for (size_t i = 0; m->out && i < m->n_out; i++)
        free(m->out[i].name);
    free(m->in);
    free(m->out);
    free(m->in_names);
    free(m->out_names);
    free(m->label);
    free(m->why);
    free(m);
}

static const char *io_kind(int output) { return output ? "output" : "input"; }

/* Fills io from the session's i-th input or output. */
static inferd_status describe_io(ort_model *m, int output, size_t i, ort_io *io, inferd_error *err)
{
    OrtAllocator *alloc = NULL;
    char *name = NULL;
    inferd_status st = ort_check(ort->GetAllocatorWithDefaultOptions(&alloc), err, "allocator");
    if (st == INFERD_OK)
        st = ort_check(output ? ort->SessionGetOutputName(m->session, i, alloc, &name)
                              : ort->SessionGetInputName(m->session, i, alloc, &name),
                       err, "model %s: name of %s #%zu", m->label, io_kind(output), i);
    if (st != INFERD_OK)
        return st;
    io->name = strdup(name);
    OrtStatus *freed = ort->AllocatorFree(alloc, name);
    if (freed) /* never for the default allocator; nothing to do if it did */
        ort->ReleaseStatus(freed);
    if (!io->name)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");

    OrtTypeInfo *type = NULL;
    const OrtTensorTypeAndShapeInfo *tensor = NULL; /* borrowed from type */
    size_t ndim = 0;
    st = ort_check(output ? ort->SessionGetOutputTypeInfo(m->session, i, &type)
                          : ort->SessionGetInputTypeInfo(m->session, i, &type),
                   err, "model %s: type of %s '%s'", m->label, io_kind(output), io->name);
    if (st == INFERD_OK)
        st = ort_check(ort->CastTypeInfoToTensorInfo(type, &tensor), err, "model %s: %s '%s'",
                       m->label, io_kind(output), io->name);
    if (st == INFERD_OK && !tensor)
        st = inferd_error_set(err, INFERD_EUNSUPPORTED,
                              "model %s: %s '%s' is not a tensor (a sequence or a map), which "
                              "this backend does not support", m->label, io_kind(output), io->name);
    if (st == INFERD_OK)
        st = ort_check(ort->GetTensorElementType(tensor, &io->onnx), err, "model %s: %s '%s'",
                       m->label, io_kind(output), io->name);
    if (st == INFERD_OK)
        st = ort_check(ort->GetDimensionsCount(tensor, &ndim), err, "model %s: %s '%s'",
                       m->label, io_kind(output), io->name);
    if (st == INFERD_OK && (io->dtype = dtype_of(io->onnx)) == INFERD_DTYPE_INVALID)
        st = inferd_error_set(err, INFERD_EUNSUPPORTED,
                              "model %s: %s '%s' has ONNX element type %d, which inferd tensors "
                              "cannot hold", m->label, io_kind(output), io->name, (int)io->onnx);
    if (st == INFERD_OK && ndim > INFERD_TENSOR_MAX_DIMS)
        st = inferd_error_set(err, INFERD_EUNSUPPORTED,
                              "model %s: %s '%s' has %zu dimensions, more than inferd's %d",
                              m->label, io_kind(output), io->name, ndim, INFERD_TENSOR_MAX_DIMS);
    if (st == INFERD_OK)
        st = ort_check(ort->GetDimensions(tensor, io->shape, ndim), err, "model %s: %s '%s'",
                       m->label, io_kind(output), io->name);
    if (st == INFERD_OK) {
        io->ndim = ndim;
        for (size_t d = 0; d < ndim; d++)
            if (io->shape[d] < 0)
                io->shape[d] = -1; /* a symbolic or unknown dimension */
    }
    if (type)
        ort->ReleaseTypeInfo(type);
    return st;
}

/* Caches the names, types and shapes of the model's inputs and outputs. */
static inferd_status describe_model(ort_model *m, inferd_error *err)
{
    inferd_status st = ort_check(ort->SessionGetInputCount(m->session, &m->n_in), err,
                                 "model %s: input count", m->label);
    if (st == INFERD_OK)
        st = ort_check(ort->SessionGetOutputCount(m->session, &m->n_out), err,
                       "model %s: output count", m->label);
    if (st != INFERD_OK)
        return st;
    m->in = calloc(m->n_in + 1, sizeof *m->in);
    m->out = calloc(m->n_out + 1, sizeof *m->out);
    m->in_names = calloc(m->n_in + 1, sizeof *m->in_names);
    m->out_names = calloc(m->n_out + 1, sizeof *m->out_names);
    if (!m->in || !m->out || !m->in_names || !m->out_names)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    for (size_t i = 0; i < m->n_in && st == INFERD_OK; i++)
        if ((st = describe_io(m, 0, i, &m->in[i], err)) == INFERD_OK)
            m->in_names[i] = m->in[i].name;
    for (size_t i = 0; i < m->n_out && st == INFERD_OK; i++)
        if ((st = describe_io(m, 1, i, &m->out[i], err)) == INFERD_OK)
            m->out_names[i] = m->out[i].name;
    return st;
}

static GraphOptimizationLevel optimization_level(const char *name)
{
    if (strcmp(name, "disable") == 0)
        return ORT_DISABLE_ALL;
    if (strcmp(name, "basic") == 0)
        return ORT_ENABLE_BASIC;
    if (strcmp(name, "extended") == 0)
        return ORT_ENABLE_EXTENDED;
    return ORT_ENABLE_ALL;
}

/* ---- the CUDA provider ------------------------------------------------------- */

/* ONNX Runtime loads its CUDA provider, libonnxruntime_providers_cuda.so,
 * from its own folder when a session asks for it, and on failure says only
 * "Failed to load shared library". Loading it here first tells which file
 * is missing. Once per process: what is installed does not change under a
 * running daemon. */
static pthread_once_t cuda_once = PTHREAD_ONCE_INIT;
static char cuda_missing[512]; /* "" when the provider loads */

static const char *library_hint(const char *lib)
{
    if (strncmp(lib, "libcuda.so", 10) == 0)
        return "the NVIDIA driver's library: no NVIDIA driver is installed";
    if (strncmp(lib, "libcudnn", 8) == 0)
        return "cuDNN 9, which the CUDA provider needs";
    if (strncmp(lib, "libcu", 5) == 0 || strncmp(lib, "libnv", 5) == 0)
        return "a CUDA 13 runtime library, which the CUDA provider needs";
    return "a library the CUDA provider needs";
}

static void cuda_check(void)
{
    Dl_info info;
    if (!dladdr((void *)OrtGetApiBase, &info) || !info.dli_fname)
        return; /* ONNX Runtime will say */
    char path[4096];
    const char *slash = strrchr(info.dli_fname, '/');
    int dir = slash ? (int)(slash - info.dli_fname) : 1;
    snprintf(path, sizeof path, "%.*s/libonnxruntime_providers_cuda.so", dir,
             slash ? info.dli_fname : ".");
    if (access(path, R_OK) != 0) {
        snprintf(cuda_missing, sizeof cuda_missing,
                 "ONNX Runtime's CUDA provider is not installed: %.300s does not exist "
                 "(scripts/fetch_onnxruntime.sh --gpu brings it)", path);
        return;
    }
    /* Kept loaded when it loads: ONNX Runtime's own dlopen then shares it. */
    if (dlopen(path, RTLD_LAZY | RTLD_LOCAL))
        return;
    const char *e = dlerror();
    e = e ? e : "unknown error";
    /* "libcuda.so.1: cannot open shared object file: No such file or
     * directory": the file that is missing comes first. */
    const char *colon = strstr(e, ": cannot open shared object file");
    if (colon && strncmp(e, path, (size_t)(colon - e)) != 0) {
        char lib[256];
        snprintf(lib, sizeof lib, "%.*s", (int)(colon - e), e);
        snprintf(cuda_missing, sizeof cuda_missing,
                 "%.100s is missing (%s); ONNX Runtime's CUDA provider %.250s cannot load "
                 "without it", lib,
                 library_hint(lib), path);
    } else {
        snprintf(cuda_missing, sizeof cuda_missing, "ONNX Runtime's CUDA provider %.250s cannot "
                 "load: %.200s", path, e);
    }
}

/* Appends the CUDA provider with the model's options. The OrtStatus of a
 * failed call is returned (unreleased) for the caller's warning. The
 * OrtCUDAProviderOptions (first) form: this ONNX Runtime build takes the
 * provider only through it ("CUDA execution provider is not enabled in
 * this build" from CreateCUDAProviderOptions). */
static OrtStatus *append_cuda(OrtSessionOptions *so, const inferd_props *o)
{
    const char *search = inferd_props_string(o, "cudnn_conv_algo_search");
    int64_t limit = inferd_props_int(o, "gpu_mem_limit");
    OrtCUDAProviderOptions c;
    memset(&c, 0, sizeof c);
    c.device_id = (int)inferd_props_int(o, "device_id");
    c.cudnn_conv_algo_search = strcmp(search, "HEURISTIC") == 0 ? OrtCudnnConvAlgoSearchHeuristic
                               : strcmp(search, "DEFAULT") == 0 ? OrtCudnnConvAlgoSearchDefault
                                                                : OrtCudnnConvAlgoSearchExhaustive;
    c.gpu_mem_limit = limit > 0 ? (size_t)limit : SIZE_MAX; /* 0: no limit */
    c.arena_extend_strategy =
        strcmp(inferd_props_string(o, "arena_extend_strategy"), "kSameAsRequested") == 0;
    c.do_copy_in_default_stream = inferd_props_bool(o, "do_copy_in_default_stream");
    return ort->SessionOptionsAppendExecutionProvider_CUDA(so, &c);
}

/* Session options from the model's validated options. *cuda says whether the
 * CUDA provider was appended (it is not when this ORT cannot: a warning). */
static inferd_status session_options(ort_model *m, const inferd_props *o, bool want_cuda,
                                     OrtSessionOptions **out, bool *cuda, inferd_error *err)
{
    OrtSessionOptions *so = NULL;
    *cuda = false;
    inferd_status st = ort_check(ort->CreateSessionOptions(&so), err, "CreateSessionOptions");
    if (st != INFERD_OK)
        return st;
    int64_t inter = inferd_props_int(o, "inter_op_threads");
    st = ort_check(ort->SetSessionGraphOptimizationLevel(
                       so, optimization_level(inferd_props_string(o, "graph_optimization_level"))),
                   err, "graph_optimization_level");
    if (st == INFERD_OK)
        st = ort_check(ort->SetIntraOpNumThreads(so, (int)inferd_props_int(o, "intra_op_threads")),
                       err, "intra_op_threads");
    if (st == INFERD_OK)
        st = ort_check(ort->SetInterOpNumThreads(so, (int)inter), err, "inter_op_threads");
    /* Inter-op threads only matter when independent nodes may run at once. */
    if (st == INFERD_OK && inter > 1)
        st = ort_check(ort->SetSessionExecutionMode(so, ORT_PARALLEL), err, "inter_op_threads");
    /* Memory: the arena keeps the largest run's blocks for the session's
     * life, and the pattern plans (per input shape) keep theirs too. */
    if (st == INFERD_OK)
        st = ort_check(inferd_props_bool(o, "cpu_mem_arena") ? ort->EnableCpuMemArena(so)
                                                             : ort->DisableCpuMemArena(so),
                       err, "cpu_mem_arena");
    if (st == INFERD_OK)
        st = ort_check(inferd_props_bool(o, "mem_pattern") ? ort->EnableMemPattern(so)
                                                           : ort->DisableMemPattern(so),
                       err, "mem_pattern");
    /* Spinning pool threads answer the next run sooner but burn the cores
     * that other workers' runs need. */
    const char *spin = inferd_props_bool(o, "allow_spinning") ? "1" : "0";
    if (st == INFERD_OK)
        st = ort_check(ort->AddSessionConfigEntry(so, "session.intra_op.allow_spinning", spin),
                       err, "allow_spinning");
    if (st == INFERD_OK)
        st = ort_check(ort->AddSessionConfigEntry(so, "session.inter_op.allow_spinning", spin),
                       err, "allow_spinning");
    if (st == INFERD_OK && want_cuda) {
        pthread_once(&cuda_once, cuda_check);
        OrtStatus *s = cuda_missing[0] ? NULL : append_cuda(so, o);
        if (cuda_missing[0] || s) {
            char why[INFERD_ERROR_MESSAGE_MAX];
            snprintf(why, sizeof why, "%s", cuda_missing);
            if (s)
                ort_message(s, why, sizeof why);
            inferd_log_warn(LOG, "model %s: provider cuda is not available (%s); falling back to "
                                 "cpu", m->label, why);
            free(m->why);
            m->why = strdup(why); /* NULL (out of memory) only loses the reason */
        } else {
            *cuda = true;
        }
    }
    if (st != INFERD_OK) {
        ort->ReleaseSessionOptions(so);
        return st;
    }
    *out = so;
    return INFERD_OK;
}

static inferd_status create_session(const ort_backend *b, ort_model *m, const char *path,
                                    const void *data, size_t len, const OrtSessionOptions *so,
                                    inferd_error *err)
{
    /* ORT's message names the file. */
    if (path)
        return ort_check(ort->CreateSession(b->env, path, so, &m->session), err, "CreateSession");
    return ort_check(ort->CreateSessionFromArray(b->env, data, len, so, &m->session), err,
                     "CreateSessionFromArray (%zu bytes)", len);
}

/* A clear message for a path that is not a readable file, before ORT says
 * something vaguer. */
static inferd_status check_file(const char *path, inferd_error *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        int e = errno;
        char buf[128];
        return inferd_error_set(err, e == ENOENT ? INFERD_ENOTFOUND : INFERD_EIO,
                                "model file %s %s", path,
                                e == ENOENT ? "does not exist" : strerror_r(e, buf, sizeof buf));
    }
    if (!S_ISREG(sb.st_mode))
        return inferd_error_set(err, INFERD_EINVAL, "model file %s is not a regular file", path);
    return INFERD_OK;
}

static inferd_status ort_load(inferd_instance *self, const char *path, const void *data,
                              size_t len, const inferd_props *options, void **out,
                              inferd_error *err)
{
    const ort_backend *b = inferd_instance_state(self);
    *out = NULL;
    if (path) {
        inferd_status st = check_file(path, err);
        if (st != INFERD_OK)
            return st;
    }
    ort_model *m = calloc(1, sizeof *m);
    if (!m)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    const char *slash = path ? strrchr(path, '/') : NULL;
    if (!(m->label = strdup(path ? (slash ? slash + 1 : path) : "(memory)"))) {
        free(m);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    bool want_cuda = strcmp(inferd_props_string(options, "provider"), "cuda") == 0, cuda = false;
    OrtSessionOptions *so = NULL;
    inferd_status st = session_options(m, options, want_cuda, &so, &cuda, err);
    if (st == INFERD_OK)
        st = create_session(b, m, path, data, len, so, err);
    if (st != INFERD_OK && cuda) {
        /* The provider library is there but the GPU is not usable. */
        inferd_log_warn(LOG, "model %s: cannot create a CUDA session (%s); falling back to cpu",
                        m->label, err ? err->message : "no message");
        char why[INFERD_ERROR_MESSAGE_MAX + 32];
        snprintf(why, sizeof why, "cannot create a CUDA session: %s",
                 err ? err->message : "no message");
        free(m->why);
        m->why = strdup(why);
        ort->ReleaseSessionOptions(so);
        so = NULL;
        st = session_options(m, options, false, &so, &cuda, err);
        if (st == INFERD_OK)
            st = create_session(b, m, path, data, len, so, err);
    }
    if (so)
        ort->ReleaseSessionOptions(so);
    if (st == INFERD_OK)
        st = describe_model(m, err);
    /* One large input (a 64-megapixel image) grows the arena by gigabytes,
     * which it would keep for the session's life: such runs shrink it back
     * to its first chunk when they end. */
    m->shrink_above = (size_t)inferd_props_int(options, "arena_shrink_above");
    if (st == INFERD_OK && m->shrink_above && inferd_props_bool(options, "cpu_mem_arena")) {
        st = ort_check(ort->CreateRunOptions(&m->shrink), err, "CreateRunOptions");
        if (st == INFERD_OK)
            st = ort_check(ort->AddRunConfigEntry(m->shrink,
                                                  "memory.enable_memory_arena_shrinkage",
                                                  "cpu:0"),
                           err, "arena_shrink_above");
    }
    if (st != INFERD_OK) {
        model_free(m);
        return st;
    }
    if (cuda)
        snprintf(m->device, sizeof m->device, "cuda:%d", (int)inferd_props_int(options, "device_id"));
    else
        snprintf(m->device, sizeof m->device, "cpu");
    inferd_log_debug(LOG, "session for %s: %zu input(s), %zu output(s), provider %s, "
                          "optimisation %s", m->label, m->n_in, m->n_out, cuda ? "cuda" : "cpu",
                     inferd_props_string(options, "graph_optimization_level"));
    *out = m;
    return INFERD_OK;
}

static void ort_unload(inferd_instance *self, void *model) { model_free(model); }

static const char *ort_device(inferd_instance *self, void *model, const char **why)
{
    const ort_model *m = model;
    *why = m->why;
    return m->device;
}

static size_t ort_io_count(inferd_instance *self, void *model, int output)
{
    const ort_model *m = model;
    return output ? m->n_out : m->n_in;
}

static inferd_status ort_io_info(inferd_instance *self, void *model, int output, size_t i,
                                 inferd_tensor_info *info, inferd_error *err)
{
    const ort_model *m = model;
    if (i >= (output ? m->n_out : m->n_in))
        return inferd_error_set(err, INFERD_ERANGE, "model %s has no %s #%zu", m->label,
                                io_kind(output), i);
    const ort_io *io = output ? &m->out[i] : &m->in[i];
    info->name = io->name;
    info->dtype = io->dtype;
    info->ndim = io->ndim;
    memcpy(info->shape, io->shape, io->ndim * sizeof io->shape[0]);
    return INFERD_OK;
}

/* Frees what ORT's allocator gave (its status says nothing we could act on). */
static void ort_free(OrtAllocator *a, void *p)
{
    OrtStatus *s = ort->AllocatorFree(a, p);
    if (s)
        ort->ReleaseStatus(s);
}

/* The model's custom metadata (ONNX metadata_props) as name -> string. */
static inferd_status ort_metadata(inferd_instance *self, void *model, inferd_value **out,
                                  inferd_error *err)
{
    (void)self;
    const ort_model *m = model;
    OrtModelMetadata *md = NULL;
    OrtAllocator *alloc = NULL;
    char **keys = NULL;
    int64_t n = 0;
    inferd_value *o = inferd_value_object();
    inferd_status st = o ? INFERD_OK : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    if (st == INFERD_OK)
        st = ort_check(ort->GetAllocatorWithDefaultOptions(&alloc), err, "model %s: metadata",
                       m->label);
    if (st == INFERD_OK)
        st = ort_check(ort->SessionGetModelMetadata(m->session, &md), err, "model %s: metadata",
                       m->label);
    if (st == INFERD_OK)
        st = ort_check(ort->ModelMetadataGetCustomMetadataMapKeys(md, alloc, &keys, &n), err,
                       "model %s: metadata keys", m->label);
    for (int64_t i = 0; i < n; i++) {
        char *value = NULL;
        if (st == INFERD_OK)
            st = ort_check(ort->ModelMetadataLookupCustomMetadataMap(md, alloc, keys[i], &value),
                           err, "model %s: metadata '%s'", m->label, keys[i]);
        if (st == INFERD_OK && value)
            st = inferd_value_object_set(o, keys[i], inferd_value_string(value), err);
        if (value)
            ort_free(alloc, value);
        ort_free(alloc, keys[i]);
    }
    if (keys)
        ort_free(alloc, keys);
    if (md)
        ort->ReleaseModelMetadata(md);
    if (st != INFERD_OK) {
        inferd_value_free(o);
        return st;
    }
    *out = o;
    return INFERD_OK;
}

/* ---- runs ------------------------------------------------------------------- */

/* Checks a caller's tensor against the model's i-th input. */
static inferd_status check_input(const ort_model *m, size_t i, const inferd_tensor *t,
                                 inferd_error *err)
{
    const ort_io *io = &m->in[i];
    if (!t)
        return inferd_error_set(err, INFERD_EINVAL, "input '%s' of model %s is missing (NULL)",
                                io->name, m->label);
    char why[96] = "";
    inferd_status st = INFERD_OK;
    if (t->dtype != io->dtype) {
        st = INFERD_ETYPE;
        snprintf(why, sizeof why, "wrong element type");
    } else if (t->ndim != io->ndim) {
        st = INFERD_EINVAL;
        snprintf(why, sizeof why, "%zu dimensions where the model has %zu", t->ndim, io->ndim);
    } else {
        for (size_t d = 0; d < io->ndim; d++)
            if (io->shape[d] >= 0 && t->shape[d] != io->shape[d]) {
                st = INFERD_EINVAL;
                snprintf(why, sizeof why, "dimension %zu is %lld where the model needs %lld", d,
                         (long long)t->shape[d], (long long)io->shape[d]);
                break;
            }
    }
    if (st == INFERD_OK)
        return INFERD_OK;
    char want[160], got[160];
    return inferd_error_set(err, st, "input '%s' of model %s expects %s %s, got %s %s (%s)",
                            io->name, m->label, inferd_dtype_name(io->dtype),
                            inferd_shape_format(io->ndim, io->shape, want, sizeof want),
                            inferd_dtype_name(t->dtype),
                            inferd_shape_format(t->ndim, t->shape, got, sizeof got), why);
}

/* The tensor's release callback: frees the OrtValue whose memory it wraps. */
static void release_value(void *ctx, void *data)
{
    (void)data;
    ort->ReleaseValue(ctx);
}

/* Wraps the model's j-th output without copying. On success *value belongs
 * to *out (set to NULL here); on failure it is still the caller's. */
static inferd_status wrap_output(const ort_model *m, size_t j, OrtValue **value,
                                 inferd_tensor **out, inferd_error *err)
{
    const char *name = m->out[j].name;
    int is_tensor = 0;
    OrtTensorTypeAndShapeInfo *info = NULL;
    ONNXTensorElementDataType type = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
    size_t ndim = 0;
    int64_t shape[INFERD_TENSOR_MAX_DIMS];
    void *data = NULL;
    inferd_status st = ort_check(ort->IsTensor(*value, &is_tensor), err, "output '%s'", name);
    if (st == INFERD_OK && !is_tensor)
        st = inferd_error_set(err, INFERD_EUNSUPPORTED, "output '%s' is not a tensor", name);
    if (st == INFERD_OK)
        st = ort_check(ort->GetTensorTypeAndShape(*value, &info), err, "output '%s'", name);
    if (st == INFERD_OK)
        st = ort_check(ort->GetTensorElementType(info, &type), err, "output '%s'", name);
    if (st == INFERD_OK)
        st = ort_check(ort->GetDimensionsCount(info, &ndim), err, "output '%s'", name);
    if (st == INFERD_OK && ndim > INFERD_TENSOR_MAX_DIMS)
        st = inferd_error_set(err, INFERD_EUNSUPPORTED, "output '%s' has %zu dimensions", name,
                              ndim);
    if (st == INFERD_OK)
        st = ort_check(ort->GetDimensions(info, shape, ndim), err, "output '%s'", name);
    if (info)
        ort->ReleaseTensorTypeAndShapeInfo(info);
    inferd_dtype dtype = dtype_of(type);
    if (st == INFERD_OK && dtype == INFERD_DTYPE_INVALID)
        st = inferd_error_set(err, INFERD_EUNSUPPORTED,
                              "output '%s' has ONNX element type %d, which inferd tensors cannot "
                              "hold", name, (int)type);
    size_t count = 0;
    if (st == INFERD_OK)
        st = inferd_shape_count(ndim, shape, &count, err);
    if (st == INFERD_OK)
        st = ort_check(ort->GetTensorMutableData(*value, &data), err, "output '%s'", name);
    inferd_tensor *t = NULL;
    if (st == INFERD_OK)
        st = inferd_tensor_wrap(dtype, ndim, shape, data, count * inferd_dtype_size(dtype),
                                release_value, *value, &t, err);
    if (st != INFERD_OK)
        return st;
    *value = NULL; /* the tensor owns it now */
    st = inferd_tensor_set_name(t, name, err);
    if (st != INFERD_OK) {
        inferd_tensor_free(t);
        return st;
    }
    *out = t;
    return INFERD_OK;
}

static inferd_status ort_run(inferd_instance *self, void *model, const inferd_tensor *const *inputs,
                             size_t n_in, inferd_tensor **outputs, size_t n_out, inferd_error *err)
{
    const ort_backend *b = inferd_instance_state(self);
    const ort_model *m = model;
    if (n_in != m->n_in || n_out != m->n_out)
        return inferd_error_set(err, INFERD_EINVAL, "model %s takes %zu input(s) and gives %zu "
                                "output(s), called with %zu and %zu", m->label, m->n_in, m->n_out,
                                n_in, n_out);
    /* One block: the input values, then the output values. */
    OrtValue **vals = calloc(n_in + n_out + 1, sizeof *vals);
    if (!vals)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    OrtValue **in = vals, **out = vals + n_in;
    inferd_status st = INFERD_OK;
    size_t in_bytes = 0;
    for (size_t i = 0; i < n_in && st == INFERD_OK; i++) {
        const inferd_tensor *t = inputs[i];
        in_bytes += t ? t->nbytes : 0;
        if ((st = check_input(m, i, t, err)) == INFERD_OK)
            /* ORT only reads an input: the const is kept in spirit. */
            st = ort_check(ort->CreateTensorWithDataAsOrtValue(b->cpu, t->data, t->nbytes, t->shape,
                                                               t->ndim, m->in[i].onnx, &in[i]),
                           err, "input '%s' of model %s", m->in[i].name, m->label);
    }
    if (st == INFERD_OK)
        st = ort_check(ort->Run(m->session, m->shrink && in_bytes > m->shrink_above ? m->shrink
                                                                                   : NULL,
                                m->in_names, (const OrtValue *const *)in, n_in,
                                m->out_names, n_out, out),
                       err, "model %s: run", m->label);
    for (size_t j = 0; j < n_out && st == INFERD_OK; j++)
        st = wrap_output(m, j, &out[j], &outputs[j], err);
    if (st != INFERD_OK)
        for (size_t j = 0; j < n_out; j++) {
            inferd_tensor_free(outputs[j]);
            outputs[j] = NULL;
        }
    for (size_t k = 0; k < n_in + n_out; k++)
        if (vals[k])
            ort->ReleaseValue(vals[k]);
    free(vals);
    return st;
}

/* ---- declarations ------------------------------------------------------------ */

static const char *const providers[] = {"cpu", "cuda", NULL};
static const char *const arena_strategies[] = {"kNextPowerOfTwo", "kSameAsRequested", NULL};
static const char *const conv_searches[] = {"EXHAUSTIVE", "HEURISTIC", "DEFAULT", NULL};
static const char *const opt_levels[] = {"disable", "basic", "extended", "all", NULL};

static const inferd_prop_spec options[] = {
    INFERD_PROP_ENUM("provider", "where models run: cpu, or cuda (falls back to cpu with a "
                     "warning saying why when CUDA is not available: the provider, a library, "
                     "the driver, a device)", "cpu", providers),
    INFERD_PROP_INT("device_id", "cuda: the GPU to use", 0, 0, 1024),
    INFERD_PROP_UINT("gpu_mem_limit", "cuda: the most bytes ONNX Runtime's GPU arena may hold "
                     "(0: no limit)", 0, 0, INT64_MAX),
    INFERD_PROP_ENUM("arena_extend_strategy", "cuda: how the GPU arena grows", "kNextPowerOfTwo",
                     arena_strategies),
    INFERD_PROP_ENUM("cudnn_conv_algo_search", "cuda: how cuDNN picks convolution algorithms",
                     "EXHAUSTIVE", conv_searches),
    INFERD_PROP_BOOL("do_copy_in_default_stream", "cuda: copy on the default stream", true),
    INFERD_PROP_ENUM("graph_optimization_level", "ONNX Runtime's graph optimisations", "all",
                     opt_levels),
    INFERD_PROP_UINT("intra_op_threads", "threads inside one operator (0: ONNX Runtime's default, "
                     "one per physical core)", 0, 0, 1024),
    INFERD_PROP_UINT("inter_op_threads", "threads running independent operators at once (0 or "
                     "1: sequential execution)", 0, 0, 1024),
    INFERD_PROP_BOOL("allow_spinning", "idle pool threads spin for the next work instead of "
                     "sleeping", true),
    INFERD_PROP_BOOL("cpu_mem_arena", "ONNX Runtime's CPU arena: keeps the largest run's memory "
                     "for reuse", true),
    INFERD_PROP_BOOL("mem_pattern", "plan memory per input shape and keep the plans", true),
    INFERD_PROP_UINT("arena_shrink_above", "a run whose inputs are larger than this many bytes "
                     "gives the CPU arena's memory back when it ends (0: never)", 67108864, 0,
                     INT64_MAX),
    INFERD_PROP_END,
};

INFERD_PLUGIN("onnxruntime", "1.0.0",
              INFERD_BACKEND("onnxruntime", options, ort_init, ort_deinit, ort_load, ort_unload,
                             ort_io_count, ort_io_info, ort_run, ort_metadata, ort_device))
