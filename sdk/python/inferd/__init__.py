"""inferd: write portable plugins for the inferd daemon in Python.

A portable plugin runs in its own process and talks to the daemon over a Unix
socket (docs/portable-protocol.md). Subclass the component classes, list them
in a PluginConfig and call ``plugin.start(config)``.
"""

from . import plugin
from .components import (BackgroundHandler, BackgroundPlugin, Context, EstimateItem,
                         EstimatorReplacementPlugin, EventPlugin, Function, PluginError, Request,
                         Response, Sink, Source)
from .plugin import PluginConfig
from .values import Image, Rect

__version__ = "1.0.0"

__all__ = [
    "PluginConfig", "plugin", "Context", "Function", "Source", "Sink", "EventPlugin",
    "BackgroundPlugin", "BackgroundHandler", "Request", "Response",
    "EstimatorReplacementPlugin", "EstimateItem", "Image", "Rect", "PluginError",
]
