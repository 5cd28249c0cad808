#!/usr/bin/env python3
"""The teapot plugin's entry: the daemon starts it (INFERD_SOCKET set)."""

from inferd import PluginConfig, plugin

from teapot import Teapot

if __name__ == "__main__":
    # A new Teapot for every instance the daemon opens.
    plugin.start(PluginConfig("teapot", backgrounds={"teapot": Teapot}))
