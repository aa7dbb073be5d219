"""`{{name}}`: a lookout exporter. It reports the system's load averages
from /proc/loadavg (node_exporter's names); change `collect` to gather what
matters to you.

Build: `make` (componentize-py, see README.md)."""

import wit_world
from componentize_py_types import Err
from wit_world.imports.lookout_plugin_types import (
    Capabilities,
    PluginError_Permanent,
    PluginInfo,
    Sample,
)


class WitWorld(wit_world.WitWorld):
    def describe(self):
        return PluginInfo(
            name="{{name}}",
            version="0.1.0",
            description="Reports the load averages of the machine lookout runs on",
            config_schema=None,
            # Read-only access to /proc; nothing else exists for the plugin.
            capabilities=Capabilities(http=[], tcp=[], udp=[], icmp=[], files=["/proc"], statfs=[], env=[]),
        )

    def collect(self, target, config, timeout_ms):
        try:
            with open("/proc/loadavg") as file:
                fields = file.read().split()
            loads = [float(field) for field in fields[:3]]
        except (OSError, ValueError) as error:
            raise Err(PluginError_Permanent(f"reading /proc/loadavg: {error}"))
        names = ["node_load1", "node_load5", "node_load15"]
        return [Sample(name, [], value, None) for name, value in zip(names, loads)]
