// The push step, between translate/ (pure) and ads/ (streams only): it asks translate for each
// part of a proxy's config once and keeps it while it can be reused.
//   - clusters and endpoints: once per mesh snapshot, shared by every proxy;
//   - routes: once per snapshot and proxy scope (namespace, the labels sourceLabels and
//     failoverPriority name, the Sidecar that applies, the proxy's locality where endpoints have
//     localities), so a push to a thousand proxies in ten namespaces translates routes
//     ten times; with them, the few clusters that scope sees otherwise (hidden hosts left out, a
//     DestinationRule of its own namespace), and the shared set adjusted for it once;
//   - the rest (listeners, inbound clusters) per proxy, which is cheap.
// PeerAuthentications need no key of their own: the mode of a server's port decides its endpoints'
// tlsMode and its clusters' transport sockets (shared, per snapshot) and its own inbound chains
// (per proxy), and a policy change is a new snapshot like any store write. AuthorizationPolicies
// likewise: they become RBAC filters on a proxy's own inbound listeners (forProxy, per proxy, which
// reads the snapshot's policies), so a change is pushed with the next snapshot to every proxy, and
// changes the listeners of those it selects.
// RequestAuthentications likewise: they make the JWT filter of a proxy's own inbound listeners
// (per proxy, translate/jwt.ts).
// The mesh config (its access log: translate/accesslog.ts) likewise: it is part of the snapshot,
// read by forProxy and translateScoped. Telemetries too; those with a selector are part of the
// scope (the internal listeners' access logs follow them).
// Every store write is a new snapshot, so nothing here is keyed by resource: a change to a
// delegate VirtualService re-translates the routes of every root that names it (delegation is
// merged per snapshot, translate/gamma.ts allVirtualServices), and the labels a delegate's
// sourceLabels name are in the scope like any root's (sourceLabelKeys reads the merged routes).
// The same objects go to every proxy that shares them, so the ADS server encodes each once.
import type { MeshSnapshot, Workload } from '../model/model.ts';
import { type ScopedResources, type SharedResources, type XdsResources, forProxy, scopeOf, sharedFor, sourceLabelKeys, translateScoped, translateShared } from '../translate/translate.ts';

interface PerSnapshot {
  shared: SharedResources;
  labelKeys: string[];
  scoped: Map<string, { scoped: ScopedResources; shared: SharedResources }>;
}

export class PushCache {
  // Weak: a snapshot nobody holds any more takes its cache with it.
  private readonly bySnapshot = new WeakMap<MeshSnapshot, PerSnapshot>();
  /** Translations made since start, for tests and stats: how often the cache missed. */
  readonly translations = { shared: 0, scoped: 0 };

  /** The whole config of one proxy for one snapshot. */
  resources(mesh: MeshSnapshot, proxy: Workload): XdsResources {
    let s = this.bySnapshot.get(mesh);
    if (!s) {
      s = { shared: translateShared(mesh), labelKeys: sourceLabelKeys(mesh), scoped: new Map() };
      this.translations.shared += 1;
      this.bySnapshot.set(mesh, s);
    }
    const scope = scopeOf(mesh, proxy, s.labelKeys);
    const key = JSON.stringify([scope.namespace, Object.entries(scope.labels), scope.sidecar ?? '', scope.selectedRules ?? [], scope.locality ?? '', scope.telemetries ?? []]);
    let entry = s.scoped.get(key);
    if (!entry) {
      const scoped = translateScoped(mesh, scope);
      entry = { scoped, shared: sharedFor(s.shared, scoped) };
      this.translations.scoped += 1;
      s.scoped.set(key, entry);
    }
    return forProxy(entry.shared, entry.scoped, proxy, mesh);
  }
}
