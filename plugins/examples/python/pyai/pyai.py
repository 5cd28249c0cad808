#!/usr/bin/env python3
"""The pyai plugin's entry: the daemon starts it (INFERD_SOCKET set)."""

from inferd import PluginConfig, plugin

from label_func import labelIns

if __name__ == "__main__":
    # Define the plugin: its name and what it provides (here one function)
    c = PluginConfig("pyai", sources={}, sinks={}, functions={"labelImage": lambda: labelIns})
    # Serve the daemon until it stops us
    plugin.start(c)
