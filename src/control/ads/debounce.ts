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
// once the rest reaches `maxRestMs`. A storm that has gone quiet for `stormQuietMs` has its last
// call then (the rest its cost asks for done), and is over: the last proxies to connect wait no
// longer than that for the others' endpoints, and a change after a quiet spell is pushed after
// `quietMs`.
export class Debouncer {
  private readonly quietMs: number;
  private readonly maxMs: number;
  private readonly fn: () => void;
  private timer: NodeJS.Timeout | undefined;
  private firstAt = 0;
  /** The rest after the last call, if it was one of a storm: no call before restUntil while the storm goes on, none before costRestUntil at all. */
  private restUntil = 0;
  private costRestUntil = 0;
  private lastEnd = -Infinity;
  private readonly stormQuietMs: number;
  private readonly restFactor: number;
  private readonly maxRestMs: number;
  /** Calls of the current storm so far. */
  private stormCalls = 0;
  /** The first trigger of the pending call came while the last call of a storm rested. */
  private duringRest = false;
  private readonly now: () => number;

  /** restFactor, maxRestMs, stormQuietMs: in a storm, the rest after a call, and when a storm is over (above). */
  constructor(quietMs: number, maxMs: number, fn: () => void, now: () => number = () => performance.now(), restFactor = 4, maxRestMs = 5000, stormQuietMs = 1000) {
    this.quietMs = quietMs;
    this.maxMs = maxMs;
    this.fn = fn;
    this.now = now;
    this.restFactor = restFactor;
    this.maxRestMs = maxRestMs;
    this.stormQuietMs = stormQuietMs;
  }

  trigger(): void {
    const now = this.now();
    if (this.timer === undefined) {
      this.firstAt = now;
      // Nothing since the last call for stormQuietMs: the storm is over, its rest with it.
      if (now - this.lastEnd >= this.stormQuietMs) this.restUntil = 0;
      this.duringRest = now < this.restUntil;
    } else clearTimeout(this.timer);
    // quietMs after this trigger (stormQuietMs while a storm rests), but no later than maxMs after
    // the first trigger or the end of the rest; and never before the rest the last call's cost asks for.
    const quietAt = now + (now < this.restUntil ? this.stormQuietMs : this.quietMs);
    const deadline = Math.max(this.firstAt + this.maxMs, this.restUntil);
    const at = Math.max(Math.min(quietAt, deadline), this.costRestUntil);
    // A call the deadline forces is one of a storm; one that comes because the changes went quiet
    // is not, and ends the storm: a change after it is pushed after quietMs again.
    const storm = deadline <= quietAt;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const start = this.now();
      try {
        this.fn();
      } finally {
        const end = (this.lastEnd = this.now());
        this.stormCalls = !storm ? 0 : this.duringRest ? this.stormCalls + 1 : 1;
        const backoff = Math.min(this.maxRestMs, this.maxMs * 2 ** (this.stormCalls - 1));
        this.costRestUntil = storm ? end + this.restFactor * (end - start) : 0;
        this.restUntil = storm ? Math.max(this.costRestUntil, end + backoff) : 0;
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
