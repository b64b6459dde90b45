// Counts of what the TLS layer did, for /stats: Envoy's listener ssl.handshake, ssl.connection_error
// and no_filter_chain_match, and the cluster side's handshake failures. Failures are also counted
// by reason (a bounded set: the reasons below, never a peer's own words).
export class TlsStats {
  /** Downstream handshakes completed (mTLS verified). */
  handshakes = 0;
  /** Downstream connections closed before or during the handshake, by reason. */
  readonly failures = new Map<string, number>();
  /** Of those, the ones that resumed an earlier session (no certificate exchange). */
  resumed = 0;
  /** Upstream handshakes completed (resumed ones among them), and failed by reason. */
  upstreamHandshakes = 0;
  upstreamResumed = 0;
  readonly upstreamFailures = new Map<string, number>();

  fail(reason: string): void {
    this.failures.set(reason, (this.failures.get(reason) ?? 0) + 1);
  }

  upstreamFail(reason: string): void {
    this.upstreamFailures.set(reason, (this.upstreamFailures.get(reason) ?? 0) + 1);
  }

  json(): object {
    return {
      downstream: { handshakes: this.handshakes, resumed: this.resumed, failures: Object.fromEntries(this.failures) },
      upstream: { handshakes: this.upstreamHandshakes, resumed: this.upstreamResumed, failures: Object.fromEntries(this.upstreamFailures) },
    };
  }
}
