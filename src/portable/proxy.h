/* portable/proxy.h: a portable plugin's declared components as a plugin
 * descriptor for the registry, whose ops forward to the plugin's process.
 * Internal to libinferd. */
#ifndef INFERD_PORTABLE_PROXY_H
#define INFERD_PORTABLE_PROXY_H

#include "inferd/registry.h"
#include "portable/host.h"
#include "portable/package.h"

typedef struct portable_proxy portable_proxy;

/* Builds the descriptor of manifest m (borrowed: outlives the proxy). An
 * estimator that serves a name already in reg takes that estimator's request
 * options. */
inferd_status portable_proxy_new(const portable_manifest *m, const inferd_registry *reg,
                                 portable_proxy **out, inferd_error *err);
/* The descriptor to give inferd_registry_add (valid while the proxy lives). */
const inferd_plugin *portable_proxy_descriptor(const portable_proxy *p);
/* Where the components' calls go; instances can be made once it is set. */
void portable_proxy_bind(portable_proxy *p, portable_host *h);
void portable_proxy_free(portable_proxy *p);
/* An upgrade: opens every instance again in to (a new version's process,
 * running; started ones are started), then points them and the proxy at
 * it, all while calls wait a moment: a call picks one process or the other,
 * never half of each. Calls already under way finish on the old process
 * (portable_host_drain it before stopping it). On failure (an instance the
 * new version cannot open) nothing has moved and what was opened in to is
 * closed. */
inferd_status portable_proxy_move(portable_proxy *p, portable_host *to, inferd_error *err);

#endif
