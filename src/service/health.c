/* service/health.c: what /ready says: everything health.required names is
 * up, or the reasons it is not. */
#include "service/health.h"

#include <stdio.h>
#include <string.h>

#include "core/build_value.h"
#include "portable/portables.h"
#include "rules/rules.h"
#include "service/service.h"

/* health.required's kinds: all of them, or one by name after ':'. */
typedef struct kind {
    const char *all, *one;
} kind;
static const kind kinds[] = {{"portables", "portable"}, {"rules", "rule"},
                             {"pipelines", "pipeline"}, {"models", "model"}};

static const kind *kind_of(const char *entry, const char **name)
{
    *name = NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        size_t n = strlen(kinds[i].one);
        if (strcmp(entry, kinds[i].all) == 0)
            return &kinds[i];
        if (strncmp(entry, kinds[i].one, n) == 0 && entry[n] == ':' && entry[n + 1]) {
            *name = entry + n + 1;
            return &kinds[i];
        }
    }
    return NULL;
}

inferd_status svc_health_check(const struct svc *s, inferd_error *err)
{
    const inferd_props *p = inferd_config_props(s->cfg);
    for (size_t i = 0; i < inferd_props_list_len(p, "health.required"); i++) {
        const char *entry = inferd_props_list_at(p, "health.required", i), *name;
        if (!kind_of(entry, &name))
            return inferd_error_set(err, INFERD_EINVAL, "health.required: \"%s\" is not one of "
                                    "portables, rules, pipelines, models, portable:NAME, "
                                    "rule:ID, pipeline:NAME, model:NAME", entry);
    }
    return INFERD_OK;
}

typedef struct gather {
    inferd_value *reasons;
    bool ok;
} gather;

static void down(void *ctx, const char *reason)
{
    gather *g = ctx;
    inferd__push(g->reasons, inferd_value_string(reason), &g->ok);
}

void svc_health_add(void *reasons, const char *reason)
{
    inferd__push(reasons, inferd_value_string(reason), NULL);
}

inferd_value *svc_not_ready(struct svc *s)
{
    gather g = {inferd_value_array(), true};
    if (!s->ready)
        down(&g, "the service is starting or stopping");
    const inferd_props *p = inferd_config_props(s->cfg);
    for (size_t i = 0; s->ready && i < inferd_props_list_len(p, "health.required"); i++) {
        const char *entry = inferd_props_list_at(p, "health.required", i), *name;
        const kind *k = kind_of(entry, &name);
        inferd_status st = INFERD_OK;
        if (k == &kinds[0])
            st = s->portables ? inferd_portables_health(s->portables, name, down, &g)
                              : name ? INFERD_ENOTFOUND : INFERD_OK;
        else if (k == &kinds[1])
            st = s->rules ? rules_engine_health(s->rules, name, down, &g) : INFERD_OK;
        else if (k == &kinds[2])
            st = s->pipelines ? svc_pipelines_health(s->pipelines, name, down, &g) : INFERD_OK;
        else if (k == &kinds[3])
            st = s->kserve ? svc_kserve_health(s->kserve, name, down, &g) : INFERD_OK;
        if (st == INFERD_ENOTFOUND) {
            char reason[300];
            snprintf(reason, sizeof reason, "%.40s %.200s (health.required) does not exist",
                     k->one, name);
            down(&g, reason);
        }
    }
    if (!g.ok) {
        inferd_value_free(g.reasons);
        return NULL;
    }
    return g.reasons;
}
