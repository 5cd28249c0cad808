/* connectors/connectors.h: the pipeline elements that reach outside the
 * process through the daemon's own clients: mqtt_source and mqtt_sink (the
 * rules' MQTT client and connection profiles), http_sink (the rules' HTTP
 * sender). They are a plugin held in memory, "connectors", registered by
 * the daemon and `inferd run` next to the built-in plugins (plugins cannot
 * reach those clients). Internal to the daemon. */
#ifndef INFERD_CONNECTORS_H
#define INFERD_CONNECTORS_H

#include "inferd/config.h"
#include "inferd/registry.h"
#include "inferd/status.h"

/* Registers the plugin; cfg (mqtt.server, mqtt.profiles) must outlive reg's
 * instances. One configuration per process. */
inferd_status connectors_register(inferd_registry *reg, const inferd_config *cfg,
                                  inferd_error *err);

#endif
