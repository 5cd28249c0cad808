/* service/kserve_repo.h: the model repository that kserve.c serves.
 * Internal to the daemon.
 *
 * models.dir holds models two ways, side by side:
 *
 *   NAME.onnx                 version 1 of NAME, with models.backend_options
 *   NAME/<n>/model.onnx       version n of NAME (1, 2, ...): Triton's layout;
 *   NAME/config.json          optional, declared by ks_config_specs
 *
 * Every version of a model is loaded; a request that names none gets the
 * highest. A load reads the model's files again and replaces all its
 * versions at once; a load that fails changes nothing that serves.
 *
 * A loaded version is shared by the requests that run on it (counted
 * references): a reload or an unload takes the table's reference away
 * while each request in flight keeps its own, and the last one to let go
 * closes the session. The table only grows: an unloaded model stays in it
 * (unloaded, with its statistics) until the daemon stops.
 */
#ifndef INFERD_SERVICE_KSERVE_REPO_H
#define INFERD_SERVICE_KSERVE_REPO_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "inferd/registry.h"
#include "service/kserve_request.h"

#define KS_BACKEND "onnxruntime"
#define KS_PLATFORM "onnxruntime_onnx"

typedef struct ks_repo ks_repo;
typedef struct ks_entry ks_entry; /* one model name (kserve_repo.c) */
typedef struct ks_stats ks_stats; /* one version's statistics (kserve_repo.c) */

/* One loaded version of a model. */
typedef struct ks_version {
    ks_model m;            /* name, path (the file), model, inputs and outputs: owned */
    int64_t number;
    char label[24];        /* the number as the protocol writes it: "2" */
    int64_t max_batch;     /* config.json maxBatchSize when it loaded (0: none) */
    inferd_value *options; /* owned: the backend options it was opened with, as given */
    inferd_value *policy;  /* owned: Triton's version_policy it was loaded by ({"all": {}}) */
    /* kserve_repo.c's, under the repository's lock: */
    ks_repo *repo;
    ks_entry *entry;
    ks_stats *stats;
    unsigned refs;
    struct ks_version *next_live;
} ks_version;

/* Where the time of one request on a version went, in nanoseconds. */
typedef struct ks_timing {
    uint64_t total;  /* from its headers to its reply */
    uint64_t queue;  /* waiting for a KServe worker */
    uint64_t input;  /* parsing the body into tensors */
    uint64_t infer;  /* inferd_model_run */
    uint64_t output; /* building the reply */
} ks_timing;

/* Opens the repository of dir and loads every model in it; one that does
 * not load is logged and kept as not ready. A dir that cannot be read is
 * an error when required, else a warning (no models). backend_options
 * (may be NULL) is models.backend_options, checked here. */
inferd_status ks_repo_open(inferd_registry *reg, const char *dir, bool required,
                           const inferd_value *backend_options, ks_repo **out,
                           inferd_error *err);
/* After every reference a request took was let go. */
void ks_repo_free(ks_repo *r);
/* How many models the table has, and how many of them serve. */
void ks_repo_counts(ks_repo *r, size_t *models, size_t *ready);

/* A reference to the version of model name that a request gets (version
 * NULL: the highest). ENOTFOUND: no such model or version, or unloaded;
 * ESTATE: it failed to load. The message says which and what to do. */
inferd_status ks_repo_acquire(ks_repo *r, const char *name, const char *version,
                              ks_version **out, inferd_error *err);
void ks_version_release(ks_version *v);
/* Counts one request on v: ok, or failed after it reached v. batch: the
 * inferences it carried. The phases count for successes only. */
void ks_version_record(ks_version *v, bool ok, uint64_t batch, const ks_timing *t);
/* The labels of the versions v's model serves, ascending (a JSON array). */
inferd_value *ks_repo_versions(ks_repo *r, const ks_version *v, bool *ok);
/* Readiness: down(ctx, reason) for each model (name NULL: every one) that
 * failed to load and serves nothing (one unloaded on purpose is not down).
 * ENOTFOUND for an unknown name. */
inferd_status ks_repo_health(ks_repo *r, const char *name,
                             void (*down)(void *ctx, const char *reason), void *ctx);

/* (Re)loads model name from its files: {"name", "state", "versions"}.
 * ENOTFOUND: models.dir has no such model; EINVAL: it did not load (what
 * served before still does). */
inferd_status ks_repo_load(ks_repo *r, const char *name, inferd_value **out, inferd_error *err);
/* Stops serving model name: {"name", "state"} (UNLOADING while requests
 * still run on it). ENOTFOUND: no such model. */
inferd_status ks_repo_unload(ks_repo *r, const char *name, inferd_value **out,
                             inferd_error *err);

/* Triton's repository index: every model of the table and of models.dir. */
inferd_value *ks_repo_index(ks_repo *r, bool only_ready, bool *ok);
/* Triton's {"model_stats": [...]}: of every model (name NULL), of one, or
 * of one version. ENOTFOUND for a model or version it has none of. */
inferd_status ks_repo_stats(ks_repo *r, const char *name, const char *version,
                            inferd_value **out, inferd_error *err);
/* The per-model series of /metrics, as Prometheus text. */
void ks_repo_metrics(ks_repo *r, FILE *to);

#endif
