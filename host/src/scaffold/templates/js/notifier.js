// `{{name}}`: a lookout notifier. It POSTs each notification, as
// Alertmanager's webhook JSON, to the URL in its config; change `notify` to
// speak your service's API.
//
// Build: `npm install && npm run build` (ComponentizeJS, see README.md).

export function describe() {
  // The receiver's URL host is granted by lookout when it routes a
  // notification here, so nothing is asked for at install.
  return {
    name: "{{name}}",
    version: "0.1.0",
    description: "POSTs notifications as webhook JSON to a URL",
    configSchema: undefined,
    capabilities: { http: [], tcp: [], udp: [], icmp: [], files: [], statfs: [], env: [] },
  };
}

const pairs = (labels) => Object.fromEntries(labels);

// The notification in Alertmanager's webhook format (version 4).
function webhookJson(n) {
  return {
    version: "4",
    groupKey: n.groupKey,
    truncatedAlerts: n.truncatedAlerts,
    status: n.status,
    receiver: n.receiver,
    groupLabels: pairs(n.groupLabels),
    commonLabels: pairs(n.commonLabels),
    commonAnnotations: pairs(n.commonAnnotations),
    externalURL: n.externalUrl,
    alerts: n.alerts.map((a) => ({
      status: a.status,
      labels: pairs(a.labels),
      annotations: pairs(a.annotations),
      startsAt: a.startsAt,
      endsAt: a.endsAt,
      generatorURL: a.generatorUrl,
      fingerprint: a.fingerprint,
    })),
  };
}

export async function notify(notification, configText, timeoutMs) {
  let url;
  try {
    url = JSON.parse(configText).url;
  } catch (e) {}
  if (typeof url !== "string") throw { tag: "config", val: 'config must be {"url": "…"}' };
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(webhookJson(notification)),
    });
  } catch (error) {
    throw { tag: "transient", val: `posting to ${url}: ${error}` };
  }
  if (response.status === 429 || response.status >= 500) throw { tag: "transient", val: `answered ${response.status}` };
  if (!response.ok) throw { tag: "permanent", val: `answered ${response.status}` };
  return { remoteId: undefined, message: `answered ${response.status}` };
}
