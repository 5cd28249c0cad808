/* portable/portables.h: the installed portable plugins of a state folder.
 *
 * Owns, per installed plugin, its manifest, its registry descriptor (proxy)
 * and its supervised process (host). The installed set is recorded in the
 * state database (<state.dir>/inferd.db, table portables) and the packages
 * unpacked in <state.dir>/plugins/<name>/, so that a restart finds them
 * back. docs/portable-plugins.md is the user's side of this.
 */
#ifndef INFERD_PORTABLE_PORTABLES_H
#define INFERD_PORTABLE_PORTABLES_H

#include <stdbool.h>

#include "inferd/config.h"
#include "inferd/registry.h"
#include "inferd/status.h"
#include "inferd/value.h"

typedef struct inferd_portables inferd_portables;

/* Called after an install (active true) or before a removal (false) so that
 * a running service can start or release the plugin's components. A failing
 * activation undoes the install; a failing release refuses the removal. */
typedef inferd_status (*inferd_portables_hook)(void *ctx, const char *plugin, bool active,
                                               inferd_error *err);

/* Opens the state folder of cfg (state.dir) and registers the recorded
 * plugins' components in reg. exclusive: take the folder's lock (a daemon,
 * or an install/remove from the command line); EBUSY when another process
 * holds it. Processes start with inferd_portables_start. */
inferd_status inferd_portables_open(const inferd_config *cfg, inferd_registry *reg, bool exclusive,
                                    inferd_portables **out, inferd_error *err);
/* Starts every recorded plugin's process and waits, at most
 * portable.start_timeout_ms, for each to run (one that does not is logged
 * and keeps being restarted). */
void inferd_portables_start(inferd_portables *p);
/* Stops the processes and unregisters the components (their instances must
 * be gone). NULL is fine. */
void inferd_portables_free(inferd_portables *p);
void inferd_portables_set_hook(inferd_portables *p, inferd_portables_hook hook, void *ctx);

/* Installs zip (a path) as plugin name: checks, unpacks, runs install.sh,
 * starts it and waits for its handshake, registers and records it; any
 * failure leaves nothing behind. *desc (optional) describes it. */
inferd_status inferd_portables_install(inferd_portables *p, const char *name, const char *zip,
                                       inferd_value **desc, inferd_error *err);
/* Stops, unregisters, deletes and forgets it. */
/* Whether name may be installed: EINVAL for a name that is not one,
 * EEXIST saying what holds it. */
inferd_status inferd_portables_check_name(inferd_portables *p, const char *name,
                                          inferd_error *err);
inferd_status inferd_portables_remove(inferd_portables *p, const char *name, inferd_error *err);
/* {"name", "version", "language", "executable", "description", "components", "status",
 * "pid", "restarts", "calls", "callFailures", "lastError", "folder", "installedAt"}; NULL when
 * there is no such plugin. */
inferd_value *inferd_portables_describe(inferd_portables *p, const char *name);
/* An array of every installed plugin's description. */
inferd_value *inferd_portables_list(inferd_portables *p);
/* The state folder (state.dir with its default applied), borrowed. */
const char *inferd_portables_state_dir(const inferd_portables *p);
/* Readiness: down(ctx, reason) for each installed plugin (name NULL: every
 * one; else that one) whose process is not running ("portable plugin pyai
 * is restarting: ... exited with signal 9"). ENOTFOUND when name is not
 * installed. */
inferd_status inferd_portables_health(inferd_portables *p, const char *name,
                                      void (*down)(void *ctx, const char *reason), void *ctx);
/* Upgrades plugin name in place to the package zip (a path): unpacks it
 * beside the running version, runs its install.sh, starts it and waits for
 * its handshake, then opens every instance of the running version in it
 * and moves them all at once (a call goes to one version or the other);
 * calls under way finish on the old process, which then stops. The new
 * version must declare the same components (EINVAL saying what differs).
 * Any failure leaves the old version serving and nothing of the new.
 * *desc (optional): its description with "previousVersion". */
inferd_status inferd_portables_upgrade(inferd_portables *p, const char *name, const char *zip,
                                       inferd_value **desc, inferd_error *err);
/* Deactivates (active false: the service lets go of it through the hook,
 * its process stops, its components are unregistered; the package stays
 * installed) or activates it again (registered, started, handed to the
 * hook). Recorded: a deactivated plugin stays so across restarts. EEXIST
 * when it is so already; EBUSY when something still uses it. */
inferd_status inferd_portables_set_active(inferd_portables *p, const char *name, bool active,
                                          inferd_error *err);
/* Whether plugin name is a portable one (installed, active or not). */
bool inferd_portables_has(inferd_portables *p, const char *name);

#endif
