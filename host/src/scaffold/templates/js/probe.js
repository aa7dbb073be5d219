// `{{name}}`: a lookout probe. It GETs the target URL with fetch() and
// succeeds on a 2xx answer; change `probe` to check what matters to you.
//
// Build: `npm install && npm run build` (ComponentizeJS, see README.md).

export function describe() {
  return {
    name: "{{name}}",
    version: "0.1.0",
    description: "GETs the target URL and succeeds on a 2xx answer",
    configSchema: undefined,
    // Ask only for what the plugin needs: here, the job's target.
    capabilities: { http: ["{target}"], tcp: [], udp: [], icmp: [], files: [], statfs: [], env: [] },
  };
}

// A thrown `{ tag: "config", val: message }` is the result's `plugin-error`.
export async function probe(target, configText, timeoutMs) {
  const config = configText.trim() === "" ? {} : JSON.parse(configText);
  const started = Date.now();
  const samples = [];
  const result = (success, failureReason, message) => {
    samples.push({ name: "probe_success", labels: [], value: success ? 1 : 0, timestampMs: undefined });
    return { success, durationSeconds: (Date.now() - started) / 1000, failureReason, message, samples };
  };
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  let response;
  let body;
  try {
    response = await fetch(target, { signal: abort.signal });
    body = await response.text();
  } catch (error) {
    return result(false, abort.signal.aborted ? "timeout" : "connect", String(error));
  } finally {
    clearTimeout(timer);
  }
  samples.push({ name: "probe_http_status_code", labels: [], value: response.status, timestampMs: undefined });
  if (!response.ok) return result(false, "status", `status ${response.status}`);
  if (config.expect !== undefined && !body.includes(config.expect)) {
    return result(false, "body", "the body lacks the expected text");
  }
  return result(true, undefined, "");
}
