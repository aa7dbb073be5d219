// lookout probe `statuspage`, written in JavaScript: reads a service's
// Atlassian Statuspage (the status pages of GitHub, Atlassian, Dropbox …)
// with fetch() — which the host carries over wasi:http, within the plugin's
// grants — and says whether the components you depend on are working.
//
// Built with ComponentizeJS: `npm run build` (see docs/guide-javascript.md).

const VERSION = "0.1.0";

// Component states in rising severity: the value of
// probe_statuspage_component_status.
const COMPONENT_STATES = ["operational", "under_maintenance", "degraded_performance", "partial_outage", "major_outage"];
// The page's overall indicator: probe_statuspage_indicator.
const INDICATORS = ["none", "maintenance", "minor", "major", "critical"];

const CONFIG_SCHEMA = {
  $schema: "https://json-schema.org/draft/2020-12/schema",
  type: "object",
  additionalProperties: false,
  properties: {
    components: {
      type: "array",
      items: { type: "string" },
      description: "names of the components that matter (default: every component on the page)",
    },
    fail_at: {
      enum: COMPONENT_STATES.slice(1),
      description: "the state at which a component counts as down (default partial_outage)",
    },
  },
};

function configError(message) {
  // A thrown value becomes the `err` of the export's result.
  return { tag: "config", val: message };
}

function parseConfig(text) {
  let config = {};
  if (text.trim() !== "") {
    try {
      config = JSON.parse(text);
    } catch (e) {
      throw configError(`config is not JSON: ${e.message}`);
    }
  }
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw configError("config must be a JSON object");
  }
  const unknown = Object.keys(config).filter((k) => !(k in CONFIG_SCHEMA.properties));
  if (unknown.length > 0) {
    throw configError(`unknown config field(s): ${unknown.join(", ")}`);
  }
  const components = config.components ?? null;
  if (components !== null && (!Array.isArray(components) || !components.every((c) => typeof c === "string"))) {
    throw configError("`components` must be a list of component names");
  }
  const failAt = COMPONENT_STATES.indexOf(config.fail_at ?? "partial_outage");
  if (failAt < 1) {
    throw configError(`\`fail_at\` must be one of ${COMPONENT_STATES.slice(1).join(", ")}`);
  }
  return { components, failAt };
}

// The summary document of a page: the target is the page's address
// (https://www.githubstatus.com) or the API document itself.
function summaryUrl(target) {
  if (target.endsWith(".json")) return target;
  return target.replace(/\/+$/, "") + "/api/v2/summary.json";
}

function sample(name, value, labels = []) {
  return { name, labels, value, timestampMs: undefined };
}

export function describe() {
  return {
    name: "statuspage",
    version: VERSION,
    description: "Reads an Atlassian Statuspage and says whether the components you depend on work; written in JavaScript",
    configSchema: JSON.stringify(CONFIG_SCHEMA),
    capabilities: { http: ["{target}"], tcp: [], udp: [], icmp: [], files: [], statfs: [], env: [] },
  };
}

export async function probe(target, configText, timeoutMs) {
  const config = parseConfig(configText);
  if (!/^https?:\/\//.test(target)) {
    throw configError(`target must be an http(s) URL, got ${JSON.stringify(target)}`);
  }
  const started = Date.now();
  const samples = [];
  const finish = (success, failureReason, message) => {
    const duration = (Date.now() - started) / 1000;
    samples.push(sample("probe_success", success ? 1 : 0));
    samples.push(sample("probe_duration_seconds", duration));
    return { success, durationSeconds: duration, failureReason, message, samples };
  };

  let response;
  let body;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    response = await fetch(summaryUrl(target), { headers: { accept: "application/json" }, signal: abort.signal });
    body = await response.text();
  } catch (error) {
    // fetch() reports every network failure, a denied request included,
    // as the same TypeError: only our own timeout can be told apart (the
    // host logs a denial at warn).
    const message = error && error.message ? error.message : String(error);
    const reason = abort.signal.aborted ? "timeout" : "connect";
    return finish(false, reason, `request failed: ${message}`);
  } finally {
    clearTimeout(timer);
  }
  samples.push(sample("probe_http_status_code", response.status));
  if (!response.ok) {
    return finish(false, "status", `HTTP status ${response.status}`);
  }
  let summary;
  try {
    summary = JSON.parse(body);
  } catch (e) {
    return finish(false, "body", "the answer is not JSON");
  }
  if (!summary || !Array.isArray(summary.components)) {
    return finish(false, "body", "the answer is not a Statuspage summary (no components)");
  }
  const indicator = INDICATORS.indexOf(summary.status && summary.status.indicator);
  if (indicator >= 0) samples.push(sample("probe_statuspage_indicator", indicator));
  const unresolved = Array.isArray(summary.incidents) ? summary.incidents.filter((i) => i.status !== "resolved").length : 0;
  samples.push(sample("probe_statuspage_unresolved_incidents", unresolved));

  // Groups only summarise their members; count the members.
  const listed = summary.components.filter((c) => !c.group && typeof c.name === "string");
  const watched = config.components === null ? listed : listed.filter((c) => config.components.includes(c.name));
  const missing = config.components === null ? [] : config.components.filter((name) => !listed.some((c) => c.name === name));
  const down = [];
  for (const component of watched) {
    const state = COMPONENT_STATES.indexOf(component.status);
    if (state < 0) continue;
    samples.push(sample("probe_statuspage_component_status", state, [["component", component.name]]));
    if (state >= config.failAt) down.push(`${component.name} (${component.status})`);
  }
  if (missing.length > 0) {
    return finish(false, "body", `not on the page: ${missing.join(", ")}`);
  }
  if (down.length > 0) {
    return finish(false, "body", `down: ${down.join(", ")}`);
  }
  const description = summary.status && summary.status.description ? summary.status.description : "";
  return finish(true, undefined, description);
}
