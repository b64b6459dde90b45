// Go's (and Kubernetes CEL's) duration text, as protobuf JSON durations are written too: a file
// of its own, without imports, so that the sidecar can read CEL's duration() with it (rules.ts
// re-exports it for the API).

const UNIT_NANOS: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  'µs': 1_000n,
  'μs': 1_000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

const DURATION = /^([-+]?)((?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+|0)$/;
const DURATION_PART = /(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)/g;

/**
 * Parse a duration the way Kubernetes' CEL `duration()` and Go's time.ParseDuration do ("1.5s",
 * "100ms", "1h30m"), which also covers protobuf JSON durations ("0.250s"). Returns nanoseconds,
 * or undefined when the text is not a duration. BigInt keeps "0.001s" exact.
 */
export function parseDuration(text: string): bigint | undefined {
  const m = DURATION.exec(text);
  if (!m) return undefined;
  let total = 0n;
  for (const [, whole = '', frac = '', unit = 's'] of (m[2] ?? '').matchAll(DURATION_PART)) {
    const scale = UNIT_NANOS[unit] ?? 1n;
    total += BigInt(whole || '0') * scale;
    // Fractions below a nanosecond are dropped, as Go does.
    if (frac) total += (BigInt(frac) * scale) / 10n ** BigInt(frac.length);
  }
  return m[1] === '-' ? -total : total;
}
