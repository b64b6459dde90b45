// Node's timers take at most 2^31-1 ms (about 24.8 days): a longer delay fires after 1 ms (with a
// TimeoutOverflowWarning). Durations from config have no such bound (a DestinationRule's
// idleTimeout: 720h), so a timer of one is capped: it then fires after 24.8 days, not at once.
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A delay a timer can take: `ms`, at most MAX_TIMER_MS. */
export function timerMs(ms: number): number {
  return ms > MAX_TIMER_MS ? MAX_TIMER_MS : ms;
}
