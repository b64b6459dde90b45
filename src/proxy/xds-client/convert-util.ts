// What every xDS conversion shares: the error that becomes a NACK reason, and durations.

export class ConvertError extends Error {}

export function fail(where: string, msg: string): never {
  throw new ConvertError(`${where}: ${msg}`);
}

export function durationMs(d: any): number {
  if (d == null) return 0;
  if (typeof d === 'string') {
    const m = /^(-?\d+(?:\.\d+)?)s$/.exec(d);
    return m ? Math.round(Number(m[1]) * 1000) : NaN;
  }
  return Number(d.seconds ?? 0) * 1000 + Math.round(Number(d.nanos ?? 0) / 1e6);
}

/** durationMs, failing at `where` with 'invalid duration' unless it is a finite number of ms, 0 or more. */
export function duration(where: string, d: any): number {
  const ms = durationMs(d);
  if (!Number.isFinite(ms) || ms < 0) fail(where, 'invalid duration');
  return ms;
}
