/* worker/worker.h: a C plugin isolated in a worker process (`inferd worker`).
 *
 * The daemon runs each plugin named in plugins.isolated as a portable
 * plugin whose process is this program: it loads the plugin's file and
 * speaks the plugin side of docs/portable-protocol.md for it, so the
 * portable supervisor (heartbeat, restart with back-off, calls that fail
 * cleanly) stands between the plugin and the daemon. A plugin that crashes
 * takes down its worker, not the daemon. Not installed.
 */
#ifndef INFERD_WORKER_H
#define INFERD_WORKER_H

/* `inferd worker --describe PLUGIN.so`: prints {"name", "manifest"} (the
 * plugin as a portable manifest) and exits 0, or says why it cannot run
 * isolated and exits 1. `inferd worker PLUGIN.so`: serves the plugin on
 * INFERD_SOCKET until the daemon closes the connection. */
int worker_main(int argc, char **argv);

#endif
