import { parseDuration } from '../../api/rules.ts';

/**
 * An Istio duration ("1.5s", "100ms", "1m30s") -> google.protobuf.Duration, parsed by the same
 * parser validation used, so that every duration validation accepts means the same here.
 */
export function duration(s: string): { seconds: number; nanos?: number } {
  const total = parseDuration(s.trim()) ?? 0n;
  const seconds = Number(total / 1_000_000_000n);
  const nanos = Number(total % 1_000_000_000n);
  return nanos ? { seconds, nanos } : { seconds };
}
