// `{{name}}`: a lookout detector. It scores each point by how far it is
// from an exponentially weighted moving average, in units of the average's
// own deviation; change `observe` to judge points your way.
//
// Build: `npm install && npm run build` (ComponentizeJS, see README.md).
// WIT `s64` values (timestamps, the horizon) arrive as BigInt.

// Bumped whenever the saved state's layout changes: an older state is
// refused and lookout starts the series afresh.
const STATE_VERSION = 1;

function parseConfig(text) {
  const config = text.trim() === "" ? {} : JSON.parse(text);
  const alpha = config.alpha ?? 0.1;
  const threshold = config.threshold ?? 4;
  if (!(alpha > 0 && alpha <= 1)) throw { tag: "config", val: "`alpha` must be in (0, 1]" };
  if (!(threshold > 0)) throw { tag: "config", val: "`threshold` must be a positive number" };
  return { alpha, threshold };
}

export function describe() {
  return {
    name: "{{name}}",
    version: "0.1.0",
    description: "Scores points by their distance from a moving average",
    configSchema: undefined,
    capabilities: { http: [], tcp: [], udp: [], icmp: [], files: [], statfs: [], env: [] },
  };
}

class Detector {
  constructor(config, state) {
    this.config = config;
    this.points = state.points;
    this.mean = state.mean;
    this.deviation = state.deviation;
  }

  static create(configText) {
    return new Detector(parseConfig(configText), { points: 0, mean: 0, deviation: 0 });
  }

  static restore(configText, bytes) {
    const state = JSON.parse(new TextDecoder().decode(bytes));
    if (state.version !== STATE_VERSION) throw { tag: "config", val: "state of another version" };
    return new Detector(parseConfig(configText), state);
  }

  observe(points) {
    const { alpha, threshold } = this.config;
    return points.map((point) => {
      // Learn from a few points before judging any.
      const score = this.points < 10 || this.deviation === 0 ? NaN : Math.abs(point.value - this.mean) / this.deviation;
      if (this.points === 0) {
        this.mean = point.value;
      } else {
        this.deviation = (1 - alpha) * this.deviation + alpha * Math.abs(point.value - this.mean);
        this.mean = (1 - alpha) * this.mean + alpha * point.value;
      }
      this.points += 1;
      return { timestampMs: point.timestampMs, score, anomalous: score >= threshold };
    });
  }

  forecast(horizonMs, threshold) {
    return undefined;
  }

  save() {
    const state = { version: STATE_VERSION, points: this.points, mean: this.mean, deviation: this.deviation };
    return new TextEncoder().encode(JSON.stringify(state));
  }
}

export const detection = { Detector };
