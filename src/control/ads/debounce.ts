// Turns a burst of triggers into one call: fires `quietMs` after the last trigger, but never later
// than `maxMs` after the first one, so a steady trickle of changes cannot starve pushes.
//
// In a storm (triggers kept coming until `maxMs` forced the call, or came while the last call of
// a storm rested: a storm may come in bursts), the next call also rests after the end of this
// one: `restFactor` times the time this one took, and at least `maxMs`, doubled for each call of
// the same storm up to `maxRestMs` (as Istio's debounce lets a storm wait up to 10 s). A push to a
// thousand proxies takes long, and while they connect every registration triggers one: back to
// back, pushes took the whole process, and every proxy received its full endpoints again and
// again, which stretched the burst of connections that triggered them. In a storm, pushes so take
// at most 1 / (1 + restFactor) of the time, and their number grows with the storm's length only
// once the rest reaches `maxRestMs`. A change after a quiet spell is pushed after `quietMs`.
export class Debouncer {
  private readonly quietMs: number;
  private readonly maxMs: number;
  private readonly fn: () => void;
  private timer: NodeJS.Timeout | undefined;
  private firstAt = 0;
  /** No call before this time: the rest after the last call, if it ended a storm. */
  private restUntil = 0;
  private readonly restFactor: number;
  private readonly maxRestMs: number;
  /** Calls of the current storm so far. */
  private stormCalls = 0;
  /** The first trigger of the pending call came while the last call of a storm rested. */
  private duringRest = false;
  private readonly now: () => number;

  /** restFactor, maxRestMs: in a storm, the rest after a call (above). */
  constructor(quietMs: number, maxMs: number, fn: () => void, now: () => number = () => performance.now(), restFactor = 4, maxRestMs = 5000) {
    this.quietMs = quietMs;
    this.maxMs = maxMs;
    this.fn = fn;
    this.now = now;
    this.restFactor = restFactor;
    this.maxRestMs = maxRestMs;
  }

  trigger(): void {
    const now = this.now();
    if (this.timer === undefined) {
      this.firstAt = now;
      this.duringRest = now < this.restUntil;
    } else clearTimeout(this.timer);
    const storm = this.duringRest || this.firstAt + this.maxMs <= now + this.quietMs;
    const at = Math.max(storm ? this.firstAt + this.maxMs : now + this.quietMs, this.restUntil);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const start = this.now();
      try {
        this.fn();
      } finally {
        const end = this.now();
        this.stormCalls = !storm ? 0 : this.duringRest ? this.stormCalls + 1 : 1;
        const backoff = Math.min(this.maxRestMs, this.maxMs * 2 ** (this.stormCalls - 1));
        this.restUntil = storm ? end + Math.max(this.restFactor * (end - start), backoff) : 0;
      }
    }, Math.max(0, at - now));
  }

  /** A call is scheduled and has not run yet. */
  get pending(): boolean {
    return this.timer !== undefined;
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
