"""`{{name}}`: a lookout notifier. It POSTs each notification, as
Alertmanager's webhook JSON, to the URL in its config; change `notify` to
speak your service's API.

Build: `make` (componentize-py, see README.md)."""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports.lookout_plugin_types import (
    Capabilities,
    Delivery,
    PluginError_Config,
    PluginError_Permanent,
    PluginError_Transient,
    PluginInfo,
)

from lookout_http import HttpError, request


def webhook_json(n):
    """The notification in Alertmanager's webhook format (version 4)."""
    return {
        "version": "4",
        "groupKey": n.group_key,
        "truncatedAlerts": n.truncated_alerts,
        "status": n.status,
        "receiver": n.receiver,
        "groupLabels": dict(n.group_labels),
        "commonLabels": dict(n.common_labels),
        "commonAnnotations": dict(n.common_annotations),
        "externalURL": n.external_url,
        "alerts": [
            {
                "status": a.status,
                "labels": dict(a.labels),
                "annotations": dict(a.annotations),
                "startsAt": a.starts_at,
                "endsAt": a.ends_at,
                "generatorURL": a.generator_url,
                "fingerprint": a.fingerprint,
            }
            for a in n.alerts
        ],
    }


class WitWorld(wit_world.WitWorld):
    def describe(self):
        # The receiver's URL host is granted by lookout when it routes a
        # notification here, so nothing is asked for at install.
        return PluginInfo(
            name="{{name}}",
            version="0.1.0",
            description="POSTs notifications as webhook JSON to a URL",
            config_schema=None,
            capabilities=Capabilities(http=[], tcp=[], udp=[], icmp=[], files=[], statfs=[], env=[]),
        )

    def notify(self, notification, config, timeout_ms):
        try:
            url = json.loads(config)["url"]
        except (ValueError, KeyError, TypeError):
            raise Err(PluginError_Config('config must be {"url": "…"}'))
        body = json.dumps(webhook_json(notification)).encode()
        try:
            status, _ = request("POST", url, {"content-type": "application/json"}, timeout_ms, body)
        except HttpError as error:
            raise Err(PluginError_Transient(f"posting to {url}: {error}"))
        if status == 429 or status >= 500:
            raise Err(PluginError_Transient(f"answered {status}"))
        if not 200 <= status < 300:
            raise Err(PluginError_Permanent(f"answered {status}"))
        return Delivery(None, f"answered {status}")
