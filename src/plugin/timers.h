/* plugin/timers.h: the host's timer thread (inferd_timer_start/cancel of
 * plugin.h). Not installed. One thread for every timer of the process,
 * started with the first timer. */
#ifndef INFERD_PLUGIN_TIMERS_H
#define INFERD_PLUGIN_TIMERS_H

#include "inferd/plugin.h"

/* Cancels every timer of inst and waits for a running callback of it to
 * return (instance destruction calls this). */
void inferd__timers_cancel_all(inferd_instance *inst);

#endif
