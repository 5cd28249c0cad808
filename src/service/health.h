/* service/health.h: readiness that tells the truth. /ready (and KServe's
 * /v2/health/ready) answer 200 only when everything health.required names
 * is up: portable plugins' processes, rules that should run, pipelines that
 * should run, models that should load; else 503 with each reason. Each part reports its own; this
 * gathers them. Not installed. */
#ifndef INFERD_SERVICE_HEALTH_H
#define INFERD_SERVICE_HEALTH_H

#include "inferd/status.h"
#include "inferd/value.h"

struct svc;
struct svc_pipelines;

/* The reasons the service is not ready, as an array of strings (empty:
 * ready); the caller frees it. NULL when out of memory. */
inferd_value *svc_not_ready(struct svc *s);
/* Appends reason to the array reasons (ctx): the `down` callback of the
 * parts' health functions. */
void svc_health_add(void *reasons, const char *reason);
/* Checks health.required's entries (at start): EINVAL naming a bad one. */
inferd_status svc_health_check(const struct svc *s, inferd_error *err);

/* pipelines.c: down(ctx, reason) for each pipeline (name NULL: every one)
 * whose start failed; ENOTFOUND for an unknown name. */
inferd_status svc_pipelines_health(struct svc_pipelines *m, const char *name,
                                   void (*down)(void *ctx, const char *reason), void *ctx);

/* kserve.c: down(ctx, reason) for each model (name NULL: every one) that
 * failed to load; ENOTFOUND for an unknown name. */
struct svc_kserve;
inferd_status svc_kserve_health(struct svc_kserve *k, const char *name,
                                void (*down)(void *ctx, const char *reason), void *ctx);

#endif
