// Envoy's local rate limit filter, per route (Weft's LocalRateLimit): one token bucket per limit
// in this sidecar; a request takes a token or is refused with 429 naming the limit. The bucket
// refills by tokens_per_fill every fill_interval, up to max_tokens, counted when next asked (no
// timer), and it survives config updates that keep the limit the same.
import type { RateLimit } from '../xds-client/convert-route.ts';

interface Bucket {
  cfg: string; // the limit's settings: a changed limit starts a full bucket
  tokens: number;
  filledAt: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  /** Takes a token for the limit; false when its bucket is empty. */
  take(l: RateLimit, now: number): boolean {
    const cfg = `${l.maxTokens}/${l.tokensPerFill}/${l.fillMs}`;
    let b = this.buckets.get(l.name);
    if (!b || b.cfg !== cfg) this.buckets.set(l.name, (b = { cfg, tokens: l.maxTokens, filledAt: now }));
    const fills = Math.floor((now - b.filledAt) / l.fillMs);
    if (fills > 0) {
      b.tokens = Math.min(l.maxTokens, b.tokens + fills * l.tokensPerFill);
      b.filledAt += fills * l.fillMs;
    }
    if (b.tokens < 1) return false;
    b.tokens--;
    return true;
  }
}

/** The 429's sentence: which limit, and what it allows. */
export function limitMessage(l: RateLimit): string {
  return `local rate limit ${l.name} exceeded: ${l.tokensPerFill} request(s) every ${l.fillMs} ms, at most ${l.maxTokens} at once`;
}
