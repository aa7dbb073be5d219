"""`{{name}}`: a lookout probe. It GETs the target URL and succeeds on a
2xx answer; change `probe` to check what matters to you.

Build: `make` (componentize-py, see README.md)."""

import json
import time

import wit_world
from componentize_py_types import Err
from wit_world.imports.lookout_plugin_types import (
    Capabilities,
    FailureReason,
    PluginError_Config,
    PluginInfo,
    ProbeResult,
    Sample,
)

from lookout_http import HttpError, request


class WitWorld(wit_world.WitWorld):
    def describe(self):
        return PluginInfo(
            name="{{name}}",
            version="0.1.0",
            description="GETs the target URL and succeeds on a 2xx answer",
            config_schema=None,
            # Ask only for what the plugin needs: here, the job's target.
            capabilities=Capabilities(http=["{target}"], tcp=[], udp=[], icmp=[], files=[], statfs=[], env=[]),
        )

    def probe(self, target, config, timeout_ms):
        try:
            expect = (json.loads(config) if config.strip() else {}).get("expect")
        except (ValueError, AttributeError):
            raise Err(PluginError_Config("config must be a JSON object"))
        started = time.monotonic()
        samples = []

        def result(success, reason, message):
            duration = time.monotonic() - started
            samples.append(Sample("probe_success", [], 1.0 if success else 0.0, None))
            return ProbeResult(success, duration, reason, message, samples)

        try:
            status, body = request("GET", target, {}, timeout_ms)
        except HttpError as error:
            return result(False, error.reason, str(error))
        samples.append(Sample("probe_http_status_code", [], float(status), None))
        if not 200 <= status < 300:
            return result(False, FailureReason.STATUS, f"status {status}")
        if expect is not None and expect.encode() not in body:
            return result(False, FailureReason.BODY, "the body lacks the expected text")
        return result(True, None, "")
