#!/usr/bin/env python3
"""The defect plugin's entry: the daemon starts it (INFERD_SOCKET set)."""

from inferd import PluginConfig, plugin

from inference import inferenceIns

if __name__ == "__main__":
    # Define the plugin: its name and what it provides (here one function)
    c = PluginConfig("defect", sources={}, sinks={}, functions={"inference": lambda: inferenceIns})
    # Serve the daemon until it stops us
    plugin.start(c)
