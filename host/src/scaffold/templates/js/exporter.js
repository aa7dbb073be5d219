// `{{name}}`: a lookout exporter. It fetches the JSON document at the
// target URL and reports every number in it as a sample named after its
// path (`{"db": {"connections": 3}}` → `{{metric}}_db_connections 3`);
// change `collect` to gather what matters to you.
//
// Build: `npm install && npm run build` (ComponentizeJS, see README.md).

export function describe() {
  return {
    name: "{{name}}",
    version: "0.1.0",
    description: "Reports every number of a JSON document as a sample",
    configSchema: undefined,
    capabilities: { http: ["{target}"], tcp: [], udp: [], icmp: [], files: [], statfs: [], env: [] },
  };
}

function flatten(value, name, samples) {
  if (typeof value === "number" && Number.isFinite(value)) {
    samples.push({ name, labels: [], value, timestampMs: undefined });
  } else if (typeof value === "boolean") {
    samples.push({ name, labels: [], value: value ? 1 : 0, timestampMs: undefined });
  } else if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [key, inner] of Object.entries(value)) {
      flatten(inner, `${name}_${key.replace(/[^a-zA-Z0-9_]/g, "_")}`, samples);
    }
  }
}

export async function collect(target, configText, timeoutMs) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const response = await fetch(target, { headers: { accept: "application/json" }, signal: abort.signal });
    if (!response.ok) throw { tag: "transient", val: `status ${response.status}` };
    const samples = [];
    flatten(await response.json(), "{{metric}}", samples);
    return samples;
  } catch (error) {
    if (error && error.tag) throw error;
    throw { tag: "transient", val: `fetching ${target}: ${error}` };
  } finally {
    clearTimeout(timer);
  }
}
