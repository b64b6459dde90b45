// What the control plane does around the CA's root rotation (docs/ca.md), beside the CA itself:
//   - serves the trust bundle to every sidecar as the secret ROOTCA over SDS on its ADS stream
//     (RootsSecret), pushed again whenever the roots change;
//   - after the roots change, renews its own serving certificate (it then trusts the new bundle
//     for sidecars' certificates) and rewrites root-cert.pem, before the push;
//   - while a new root is being distributed, switches signing to it as soon as every sidecar
//     connected over TLS has ACKed the bundle that holds it (the AdsServer knows who has).
import type { AdsServer } from '../ads/server.ts';
import { ROOTCA } from '../../xds/types.ts';
import type { CertificateAuthority } from './ca.ts';
import type { ControlPlaneTls } from './tls.ts';

/** How often a rotation in its first step looks whether every sidecar holds the new bundle. */
const CHECK_MS = 200;

/** The secret ROOTCA as Istio's agent serves it to Envoy: the roots inline, PEM. */
export class RootsSecret {
  private readonly ca: CertificateAuthority;
  private cached: { bundle: string; secrets: Record<string, object> } | undefined;

  constructor(ca: CertificateAuthority) {
    this.ca = ca;
  }

  /** The same object while the bundle is the same (the ADS server encodes each object once). */
  secrets(): Record<string, object> {
    const bundle = this.ca.trustBundle();
    if (this.cached?.bundle !== bundle) {
      this.cached = { bundle, secrets: { [ROOTCA]: { name: ROOTCA, validation_context: { trusted_ca: { inline_bytes: Buffer.from(bundle) } } } } };
    }
    return this.cached.secrets;
  }
}

export interface RotationDeps {
  ca: CertificateAuthority;
  ads: AdsServer;
  tls: ControlPlaneTls;
  log: (msg: string) => void;
  /** The roots changed: write them where local sidecars read them (root-cert.pem). */
  onRoots: () => void;
}

export function followRotation({ ca, ads, tls, log, onRoots }: RotationDeps): { stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let waitingFor = '';
  const check = async () => {
    timer = undefined;
    if (stopped || ca.status().rotation.phase !== 'distributing') return;
    const behind = ads.withoutSecret(ROOTCA);
    if (behind.length || ads.stats().pushPending) {
      const said = behind.join(', ');
      if (said && said !== waitingFor) log(`root rotation: the old root signs until these sidecars hold the new trust bundle: ${said}`);
      waitingFor = said;
      timer = setTimeout(() => void check(), CHECK_MS);
      timer.unref();
      return;
    }
    if (await ca.useNewRoot()) log(`root rotation: every connected sidecar holds the new trust bundle; workload certificates are signed by the new root ${ca.status().signing.subject} from now on (sidecars move to it as they renew)`);
  };
  const watch = () => {
    if (!timer && !stopped) timer = setTimeout(() => void check(), 0);
  };
  ca.onChange(async (change) => {
    if (change === 'roots') {
      // First the control plane's own certificate and trust (it must accept the new roots'
      // certificates before any sidecar has one), then root-cert.pem, then every sidecar.
      await tls.renewNow();
      onRoots();
      ads.requestPush();
      const s = ca.status();
      log(`trust bundle now holds ${s.roots.length} root(s): ${s.roots.map((r) => `${r.subject} (sha256 ${r.sha256.slice(0, 16)}…)`).join(', ')}`);
    }
    watch();
  });
  watch(); // a rotation left in its first step by a restart goes on
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
