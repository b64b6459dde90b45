// Join tokens: how a sidecar proves who it is before it has a certificate (issue 7's trust at
// bootstrap). `weft token create` (or `weft up`, for the workloads it starts) asks the control
// plane for one, for one workload identity; the token is good once, and for a short time.
//   - A token is 32 random bytes; the store keeps only its SHA-256 (a leaked store gives no token)
//     with the identity and when it expires, as a secret (never listed or shown).
//   - Redeeming takes it out of the store atomically: of two redemptions, one gets it.
//   - The identity comes from the token, never from what the sidecar says of itself.
import { createHash, randomBytes } from 'node:crypto';
import type { ConfigStore } from '../store/store.ts';
import { CONTROL_PLANE_IDENTITY } from '../../util/spiffe.ts';
import { KUBERNETES_NAME } from './ca.ts';

export interface JoinIdentity {
  workload: string;
  namespace: string;
  serviceAccount: string;
}

export class JoinError extends Error {
  override name = 'JoinError';
}

const PREFIX = 'weft-join.';
const SECRET = (hash: string) => `join/${hash}`;
export const DEFAULT_JOIN_TTL_MS = 10 * 60_000;
export const MAX_JOIN_TTL_MS = 24 * 3600_000;

const hashOf = (token: string) => createHash('sha256').update(token).digest('hex');

export class JoinTokens {
  private readonly store: Pick<ConfigStore, 'getSecret' | 'putSecretIfAbsent' | 'takeSecret' | 'secretsWithPrefix'>;
  private readonly now: () => number;

  constructor(store: Pick<ConfigStore, 'getSecret' | 'putSecretIfAbsent' | 'takeSecret' | 'secretsWithPrefix'>, now: () => number = Date.now) {
    this.store = store;
    this.now = now;
  }

  /** A new token for `id`, good once, until `ttlMs` from now. */
  create(id: JoinIdentity, ttlMs = DEFAULT_JOIN_TTL_MS): { token: string; expiresAt: Date } {
    for (const [k, v] of Object.entries(id)) {
      if (typeof v !== 'string' || !KUBERNETES_NAME.test(v)) throw new JoinError(`${k} "${String(v)}" is not a Kubernetes name (lower-case letters, digits, "-" and "."; at most 253)`);
    }
    if (id.namespace === CONTROL_PLANE_IDENTITY.namespace && id.serviceAccount === CONTROL_PLANE_IDENTITY.serviceAccount) {
      throw new JoinError(`${id.namespace}/${id.serviceAccount} is the control plane's own identity: no workload may have it`);
    }
    if (!(Number.isInteger(ttlMs) && ttlMs > 0 && ttlMs <= MAX_JOIN_TTL_MS)) throw new JoinError(`a join token lives from 1 ms to 24 h, not ${ttlMs} ms`);
    this.sweep();
    const token = PREFIX + randomBytes(32).toString('base64url');
    const expiresAt = new Date(this.now() + ttlMs);
    this.store.putSecretIfAbsent(SECRET(hashOf(token)), JSON.stringify({ ...id, expiresAt: expiresAt.getTime() }));
    return { token, expiresAt };
  }

  /** Forgets the tokens that expired unused, so that the store does not keep them for good. */
  sweep(): number {
    let n = 0;
    const now = this.now();
    for (const { name, value } of this.store.secretsWithPrefix('join/')) {
      let expiresAt = 0;
      try {
        expiresAt = Number((JSON.parse(value) as { expiresAt?: number }).expiresAt ?? 0);
      } catch {
        // unreadable: it can prove nothing, so it goes too
      }
      if (now >= expiresAt && this.store.takeSecret(name) !== undefined) n++;
    }
    return n;
  }

  /**
   * The identity a token would prove, without spending it (so that the certificate is made before
   * the token is spent: a slow signature then costs the caller a retry, not its token); a
   * JoinError as redeem() would throw.
   */
  peek(token: string): JoinIdentity {
    return this.read(token, (key) => this.store.getSecret(key));
  }

  /** The identity a token proves, once; a JoinError for a token unknown, used or expired. */
  redeem(token: string): JoinIdentity {
    return this.read(token, (key) => this.store.takeSecret(key));
  }

  private read(token: string, get: (key: string) => string | undefined): JoinIdentity {
    if (typeof token !== 'string' || !token.startsWith(PREFIX) || token.length > 128) throw new JoinError('not a Weft join token');
    const stored = get(SECRET(hashOf(token)));
    // Unknown and used look alike on purpose: a used token tells nothing of who used it.
    if (stored === undefined) throw new JoinError('this join token is unknown or was used already (each is good once: make another with weft token create)');
    const { expiresAt, workload, namespace, serviceAccount } = JSON.parse(stored) as JoinIdentity & { expiresAt: number };
    if (this.now() >= expiresAt) throw new JoinError(`this join token expired at ${new Date(expiresAt).toISOString()} (make another with weft token create)`);
    return { workload, namespace, serviceAccount };
  }
}
