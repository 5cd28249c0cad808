/* service/health.h: readiness that tells the truth. /ready (and KServe's
 * /v2/health/ready) answer 200 only when everything health.required names
 * is up: portable plugins' processes, rules that should run, pipelines that
 * should run; else 503 with each reason. Each part reports its own; this
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
/* Checks health.required's entries (at start): EINVAL naming a bad one. */
inferd_status svc_health_check(const struct svc *s, inferd_error *err);

/* pipelines.c: down(ctx, reason) for each pipeline (name NULL: every one)
 * whose start failed; ENOTFOUND for an unknown name. */
inferd_status svc_pipelines_health(struct svc_pipelines *m, const char *name,
                                   void (*down)(void *ctx, const char *reason), void *ctx);

#endif
