"""lookout probe `health`, written in Python: checks a service's health
endpoint in either of the two formats services publish.

- IETF "Health Check Response Format for HTTP APIs"
  (`application/health+json`): `status` is `pass`, `warn` or `fail`, with
  `checks` mapping a component name to a list of results;
- Spring Boot Actuator / MicroProfile style: `status` is `UP`, `DOWN`,
  `OUT_OF_SERVICE` or `UNKNOWN`, with `components` (or `checks` as a list
  of `{name, status}`).

Built with componentize-py: `make` (see docs/guide-python.md).
"""

import json
import time
from urllib.parse import urlsplit

import wit_world
from componentize_py_types import Err
from wit_world.imports import host, outgoing_handler
from wit_world.imports.lookout_plugin_types import (
    Capabilities,
    FailureReason,
    PluginError_Config,
    PluginInfo,
    ProbeResult,
    Sample,
)

from lookout_http import HttpError, request

VERSION = "0.1.0"

CONFIG_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        "warn_is_failure": {
            "type": "boolean",
            "description": "treat `warn` as unhealthy (default: healthy)",
        },
        "valid_status_codes": {
            "type": "array",
            "items": {"type": "integer"},
            "description": "HTTP status codes whose body is read (default 200 and 503, which health endpoints answer when failing)",
        },
    },
}

# Status words of both formats, mapped to 1 (healthy), 0.5 (degraded), 0.
STATUS_VALUES = {
    "pass": 1.0, "ok": 1.0, "up": 1.0,
    "warn": 0.5,
    "fail": 0.0, "down": 0.0, "out_of_service": 0.0, "unknown": 0.0, "error": 0.0,
}


def status_value(word):
    if not isinstance(word, str):
        return None
    return STATUS_VALUES.get(word.lower())


def component_statuses(document):
    """(name, status word) for each component the document lists."""
    found = []
    checks = document.get("checks")
    if isinstance(checks, dict):  # IETF: name -> [results]
        for name, results in checks.items():
            entries = results if isinstance(results, list) else [results]
            for entry in entries:
                if isinstance(entry, dict):
                    component = entry.get("componentId")
                    label = f"{name}:{component}" if component else name
                    found.append((label, entry.get("status")))
    elif isinstance(checks, list):  # MicroProfile: [{name, status}]
        for entry in checks:
            if isinstance(entry, dict) and "name" in entry:
                found.append((str(entry["name"]), entry.get("status")))
    components = document.get("components")
    if isinstance(components, dict):  # Spring Boot Actuator
        for name, entry in components.items():
            if isinstance(entry, dict):
                found.append((name, entry.get("status")))
    return found


def parse_config(config):
    try:
        parsed = json.loads(config) if config.strip() else {}
    except ValueError as error:
        raise Err(PluginError_Config(f"config is not JSON: {error}"))
    if not isinstance(parsed, dict):
        raise Err(PluginError_Config("config must be a JSON object"))
    unknown = set(parsed) - set(CONFIG_SCHEMA["properties"])
    if unknown:
        raise Err(PluginError_Config(f"unknown config field(s): {', '.join(sorted(unknown))}"))
    headers = parsed.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise Err(PluginError_Config("`headers` must map names to strings"))
    codes = parsed.get("valid_status_codes", [200, 503])
    if not isinstance(codes, list) or not all(isinstance(c, int) for c in codes):
        raise Err(PluginError_Config("`valid_status_codes` must be a list of integers"))
    return headers, bool(parsed.get("warn_is_failure", False)), codes


class WitWorld(wit_world.WitWorld):
    def describe(self):
        return PluginInfo(
            name="health",
            version=VERSION,
            description="Checks a health endpoint (application/health+json or Spring Boot Actuator style); written in Python",
            config_schema=json.dumps(CONFIG_SCHEMA),
            capabilities=Capabilities(
                http=["{target}"], tcp=[], udp=[], icmp=[], files=[], statfs=[], env=[]
            ),
        )

    def probe(self, target, config, timeout_ms):
        headers, warn_is_failure, codes = parse_config(config)
        if urlsplit(target).scheme not in ("http", "https"):
            raise Err(PluginError_Config(f"target must be an http(s) URL, got {target!r}"))
        started = time.monotonic()
        samples = []

        def finish(success, reason, message):
            duration = time.monotonic() - started
            samples.append(Sample("probe_success", [], 1.0 if success else 0.0, None))
            samples.append(Sample("probe_duration_seconds", [], duration, None))
            return ProbeResult(success, duration, reason, message, samples)

        headers = {"accept": "application/health+json, application/json", **headers}
        try:
            status, body = request("GET", target, headers, timeout_ms)
        except HttpError as error:
            return finish(False, error.reason, str(error))
        samples.append(Sample("probe_http_status_code", [], float(status), None))
        if status not in codes:
            return finish(False, FailureReason.STATUS, f"HTTP status {status} is not one of {codes}")
        try:
            document = json.loads(body)
        except ValueError as error:
            return finish(False, FailureReason.BODY, f"the body is not JSON: {error}")
        if not isinstance(document, dict):
            return finish(False, FailureReason.BODY, "the body is not a JSON object")
        overall = status_value(document.get("status"))
        if overall is None:
            return finish(False, FailureReason.BODY, f"unknown health status {document.get('status')!r}")
        samples.append(Sample("probe_health_status", [], overall, None))
        failing = []
        for name, word in component_statuses(document):
            value = status_value(word)
            if value is None:
                host.log(host.Level.WARN, f"component {name}: unknown status {word!r}")
                continue
            samples.append(Sample("probe_health_check_status", [("check", name)], value, None))
            if value < 1.0:
                failing.append(f"{name}={word}")
        healthy = overall == 1.0 or (overall == 0.5 and not warn_is_failure)
        message = "" if not failing else "not passing: " + ", ".join(failing)
        if not healthy:
            message = f"status {document.get('status')}" + (f"; {message}" if message else "")
        return finish(healthy, None if healthy else FailureReason.BODY, message)
