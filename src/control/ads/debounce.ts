// Turns a burst of triggers into one call: fires `quietMs` after the last trigger, but never later
// than `maxMs` after the first one, so a steady trickle of changes cannot starve pushes.
export class Debouncer {
  private readonly quietMs: number;
  private readonly maxMs: number;
  private readonly fn: () => void;
  private timer: NodeJS.Timeout | undefined;
  private firstAt = 0;
  private readonly now: () => number;

  constructor(quietMs: number, maxMs: number, fn: () => void, now: () => number = Date.now) {
    this.quietMs = quietMs;
    this.maxMs = maxMs;
    this.fn = fn;
    this.now = now;
  }

  trigger(): void {
    const now = this.now();
    if (this.timer === undefined) this.firstAt = now;
    else clearTimeout(this.timer);
    const wait = Math.max(0, Math.min(this.quietMs, this.firstAt + this.maxMs - now));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.fn();
    }, wait);
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
