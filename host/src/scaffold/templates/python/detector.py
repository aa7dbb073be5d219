"""`{{name}}`: a lookout detector. It scores each point by how far it is
from an exponentially weighted moving average, in units of the average's own
deviation; change `observe` to judge points your way.

Build: `make` (componentize-py, see README.md)."""

import json
import wit_world
from wit_world import exports
from componentize_py_types import Err
from wit_world.imports.lookout_plugin_types import (
    Capabilities,
    PluginError_Config,
    PluginInfo,
)


def parse_config(text):
    """(alpha, threshold) from the detector's JSON config."""
    try:
        config = json.loads(text) if text.strip() else {}
    except ValueError as error:
        raise Err(PluginError_Config(f"config is not JSON: {error}"))
    alpha = config.get("alpha", 0.1)
    threshold = config.get("threshold", 4.0)
    if not isinstance(alpha, (int, float)) or not 0 < alpha <= 1:
        raise Err(PluginError_Config("`alpha` must be in (0, 1]"))
    if not isinstance(threshold, (int, float)) or not threshold > 0:
        raise Err(PluginError_Config("`threshold` must be a positive number"))
    return float(alpha), float(threshold)


class WitWorld(wit_world.WitWorld):
    def describe(self):
        return PluginInfo(
            name="{{name}}",
            version="0.1.0",
            description="Scores points by their distance from a moving average",
            config_schema=None,
            capabilities=Capabilities(http=[], tcp=[], udp=[], icmp=[], files=[], statfs=[], env=[]),
        )


class Detection(exports.Detection):
    """The exported interface; its resource, `Detector`, is in detection.py."""


