/* estimators/estimators.h: named estimators and their dynamic batchers.
 * Not installed; used by the service (src/service) and, later, the rules.
 *
 * A named estimator ("peopleCountEstimator") is served by one estimator
 * component: the built-in one whose broker_name it is, unless a plugin that
 * is not built in declares the same broker_name: then that replacement takes
 * over the name (same request options, same response shape). Each named
 * estimator has one instance, created with the settings of the config key
 * `estimators` under its name, and a batcher: a bounded queue of items and
 * `workers` threads that take what is queued (up to the model's batch limit,
 * maxBatch and maxBatchBytes; waiting for more only with maxDelayUs > 0) and
 * call estimate_batch with it.
 * Items are completed from any thread through inferd_estimate_done, which
 * calls the submitter's callback. Nothing here runs on an HTTP thread.
 */
#ifndef INFERD_ESTIMATORS_H
#define INFERD_ESTIMATORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferd/config.h"
#include "inferd/plugin.h"
#include "inferd/registry.h"

typedef struct inferd_estimators inferd_estimators;

/* Creates the named estimators of every estimator component in reg (one per
 * broker name, the replacement winning) with cfg's settings. A bad setting
 * or a failing init is an error naming the estimator. */
INFERD_API inferd_status inferd_estimators_new(inferd_registry *reg, const inferd_config *cfg,
                                               inferd_estimators **out, inferd_error *err);
/* Refuses new items (ESTATE "stopping"), fails what is still queued, and
 * waits for the running batches. Queries stay valid. */
INFERD_API void inferd_estimators_stop(inferd_estimators *est);
/* Stops (if not yet), destroys the instances, frees. */
INFERD_API void inferd_estimators_free(inferd_estimators *est);

/* Makes estimator i's instance again from its settings, its model files
 * read again: batches running on the old one finish there, new ones run on
 * the new. On failure (a model that does not load) the old serves on. */
INFERD_API inferd_status inferd_estimators_reload(inferd_estimators *est, size_t i,
                                                  inferd_error *err);
/* A plugin activated at run time: each estimator it declares for a name
 * served by a built-in takes that name over (as rebinding: in-flight
 * batches finish on the old instance, new ones run on the new). A name the
 * daemon did not start with is served from the next start (said in the
 * log). EEXIST when another plugin replaces a name already. *taken: how
 * many names it serves now. */
INFERD_API inferd_status inferd_estimators_attach(inferd_estimators *est,
                                                  const inferd_plugin_info *plugin,
                                                  size_t *taken, inferd_error *err);
/* Before a plugin is deactivated: the names it serves go back to their
 * built-in components. EBUSY when one has none (it would be gone). */
INFERD_API inferd_status inferd_estimators_detach(inferd_estimators *est, inferd_registry *reg,
                                                  const inferd_plugin_info *plugin,
                                                  size_t *given_back, inferd_error *err);
INFERD_API size_t inferd_estimators_count(const inferd_estimators *est);
/* The i-th broker name, in name order. */
INFERD_API const char *inferd_estimators_name(const inferd_estimators *est, size_t i);
/* -1 when there is no estimator of that name. */
INFERD_API long inferd_estimators_find(const inferd_estimators *est, const char *name);
/* The plugin that serves estimator i (borrowed from the registry). */
INFERD_API const inferd_plugin_info *inferd_estimators_plugin(const inferd_estimators *est,
                                                              size_t i);
/* The request options the estimator takes (END-terminated, never NULL). */
INFERD_API const inferd_prop_spec *inferd_estimators_options(const inferd_estimators *est,
                                                             size_t i);
/* {"name", "component", "plugin", "builtIn", "replaces" (bool),
 *  "deviceClass", "maxBatch" (effective), "modelBatch" (the model's limit, 0:
 *  any), "maxBatchBytes", "maxDelayUs", "workers", "options": [...]} */
INFERD_API inferd_value *inferd_estimators_describe(const inferd_estimators *est, size_t i);

/* Counters of one estimator (for /metrics). */
typedef struct inferd_estimator_stats {
    size_t queued;            /* items waiting now */
    uint64_t items, batches;  /* completed items, batches run so far */
    uint64_t batched;         /* items handed to batches (the sum of batch sizes) */
    uint64_t failed;          /* items completed with an error */
    uint64_t rejected;        /* items refused: queue full */
    uint64_t delay_waits;     /* batches that waited for maxDelayUs (0 unless opted in) */
    uint64_t batch_hist[8];   /* batches of size 1, 2, 3-4, 5-8, 9-16, 17-32, 33-64, >64 */
} inferd_estimator_stats;
INFERD_API void inferd_estimators_stats(const inferd_estimators *est, size_t i,
                                        inferd_estimator_stats *out);

/* One image to estimate. */
typedef struct inferd_estimate_input {
    inferd_image *image;      /* owned by the caller until submit, then taken */
    bool has_area;
    inferd_rect area;
} inferd_estimate_input;

/* Per-item timings, microseconds. */
typedef struct inferd_estimate_timing {
    uint64_t queue_us;        /* submitted -> its batch started */
    uint64_t run_us;          /* its batch started -> it was completed */
} inferd_estimate_timing;

/* Called once per item, from a worker or the completing thread. result is
 * owned by the callee (NULL on error, then err says why). */
typedef void (*inferd_estimate_cb)(void *ctx, size_t index, inferd_value *result,
                                   const inferd_error *err, const inferd_estimate_timing *t);

/* Queues n items of estimator i. options: the request's options as given
 * (object or NULL), validated here against the estimator's request options.
 * On success every item's image is taken and cb will be called once per
 * item (index 0..n-1). On failure nothing is taken, cb is never called:
 * EINVAL (a bad option or area: the message names it), EBUSY (the queue
 * cannot take n more items: overloaded), ESTATE (stopping). */
INFERD_API inferd_status inferd_estimators_submit(inferd_estimators *est, size_t i,
                                                  inferd_estimate_input *inputs, size_t n,
                                                  const inferd_value *options,
                                                  inferd_estimate_cb cb, void *ctx,
                                                  inferd_error *err);

/* The host's own estimator families as an in-memory plugin ("pipelines":
 * the "pipeline" family), registered with the built-in plugins. */
const inferd_plugin *inferd__pipeline_family(void);

#endif
