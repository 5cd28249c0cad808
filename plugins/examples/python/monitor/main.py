#!/usr/bin/env python3
"""The monitor plugin's entry: the daemon starts it (INFERD_SOCKET set)."""

from inferd import PluginConfig, plugin

from monitor import RequestMonitoringPlugin

if __name__ == "__main__":
    # A new RequestMonitoringPlugin for every instance the daemon opens.
    plugin.start(PluginConfig("monitor", events={"monitor": RequestMonitoringPlugin}))
