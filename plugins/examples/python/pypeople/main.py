#!/usr/bin/env python3
"""The pypeople plugin's entry: the daemon starts it (INFERD_SOCKET set)."""

from inferd import PluginConfig, plugin

from estimator import NumpyPeopleCount

if __name__ == "__main__":
    plugin.start(PluginConfig("pypeople", estimators={"numpyPeopleCount": NumpyPeopleCount}))
