// `weft analyze` against the running mesh: a DestinationRule TLS mode its host's workloads refuse by
// their PeerAuthentications (WEFT0005, src/api/analyze-mtls.ts). Each case: the resources, the
// workloads, the lines it must report. The CLI's test (test/cli/cli.test.ts) runs it live.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { analyze, checkResource, type Resource } from '../../src/api/index.ts';
import type { DestinationRule } from '../../src/api/types.ts';
import type { ServedWorkload } from '../../src/api/analyze-mtls.ts';
import { effectivePolicy } from '../../src/control/translate/policy.ts';
import { destinationRule, peerAuthentication, type Spec } from './helpers.ts';

type Obj = Record<string, unknown>;

function report(objects: Obj[], workloads?: ServedWorkload[]): string[] {
  const resources: Resource[] = objects.map((o, i) => checkResource(o, `object ${i}`));
  return analyze(resources, workloads ? { services: new Map(), workloads } : undefined)
    .filter((m) => m.code === 'WEFT0005')
    .map((m) => `${m.level} ${m.code} ${m.resource} ${m.path}: ${m.message}`);
}

const HOST = 'reviews.default.svc.cluster.local';
const reviews = (version: string, ports = [80]): ServedWorkload => ({ name: `default/reviews-${version}`, namespace: 'default', labels: { app: 'reviews', version }, host: HOST, ports });
const MESH = [reviews('v1'), reviews('v2')];
const pa = (mode: string, extra: Spec = {}, namespace?: string) => peerAuthentication({ mtls: { mode }, ...extra }, `pa-${mode.toLowerCase()}`, namespace);
const dr = (spec: Spec) => destinationRule({ host: 'reviews', ...spec }, 'reviews');
const tls = (mode: string) => ({ tls: { mode } });
const R = 'Error WEFT0005 DestinationRule default/reviews';
const refused = (names: string, port = 80, to = HOST) => `DISABLE sends plaintext to ${to} on port ${port}, but its workload(s) ${names} take only mTLS there (PeerAuthentication STRICT): they close those connections`;

describe('WEFT0005: a DestinationRule TLS mode that its workloads refuse', () => {
  const cases: [string, Obj[], string[], ServedWorkload[]?][] = [
    ['DISABLE to workloads a namespace-wide STRICT policy covers', [pa('STRICT'), dr({ trafficPolicy: tls('DISABLE') })], [`${R} spec.trafficPolicy.tls.mode: ${refused('default/reviews-v1, default/reviews-v2')}`], MESH],
    ['DISABLE under a mesh-wide STRICT policy (root namespace)', [pa('STRICT', {}, 'istio-system'), dr({ trafficPolicy: tls('DISABLE') })], [`${R} spec.trafficPolicy.tls.mode: ${refused('default/reviews-v1, default/reviews-v2')}`], MESH],
    ['DISABLE to PERMISSIVE workloads: they take plaintext', [pa('PERMISSIVE'), dr({ trafficPolicy: tls('DISABLE') })], [], MESH],
    ['ISTIO_MUTUAL to STRICT workloads: agreed', [pa('STRICT'), dr({ trafficPolicy: tls('ISTIO_MUTUAL') })], [], MESH],
    [
      'ISTIO_MUTUAL to workloads that take only plaintext (DISABLE)',
      [pa('DISABLE'), dr({ trafficPolicy: tls('ISTIO_MUTUAL') })],
      [`${R} spec.trafficPolicy.tls.mode: ISTIO_MUTUAL sends mTLS to ${HOST} on port 80, but its workload(s) default/reviews-v1, default/reviews-v2 take only plaintext there (PeerAuthentication DISABLE): those handshakes fail`],
      MESH,
    ],
    [
      'a subset\'s DISABLE to the one workload a selector makes STRICT; the host\'s own cluster is automatic mTLS',
      [pa('STRICT', { selector: { matchLabels: { version: 'v2' } } }), dr({ subsets: [{ name: 'v1', labels: { version: 'v1' }, trafficPolicy: tls('DISABLE') }, { name: 'v2', labels: { version: 'v2' }, trafficPolicy: tls('DISABLE') }] })],
      [`${R} spec.subsets[1].trafficPolicy.tls.mode: ${refused('default/reviews-v2', 80, `subset "v2" of ${HOST}`)}`],
      MESH,
    ],
    [
      'port by port: a port-level DISABLE where portLevelMtls makes that port STRICT',
      [
        pa('PERMISSIVE', { selector: { matchLabels: { app: 'reviews' } }, portLevelMtls: { '9080': { mode: 'STRICT' } } }),
        dr({ trafficPolicy: { ...tls('DISABLE'), portLevelSettings: [{ port: { number: 80 }, ...tls('DISABLE') }, { port: { number: 9080 }, ...tls('DISABLE') }] } }),
      ],
      [`${R} spec.trafficPolicy.portLevelSettings[1].tls.mode: ${refused('default/reviews-v1', 9080)}`],
      [reviews('v1', [80, 9080])],
    ],
    ['a tls without a mode is automatic mTLS', [pa('STRICT'), dr({ trafficPolicy: { ...tls('DISABLE'), portLevelSettings: [{ port: { number: 80 }, tls: { sni: 'x' } }] } })], [], MESH],
    ['another host\'s workloads are not this rule\'s', [pa('STRICT'), destinationRule({ host: 'ratings', trafficPolicy: tls('DISABLE') }, 'ratings')], [], MESH],
    ['offline (no running mesh): never', [pa('STRICT'), dr({ trafficPolicy: tls('DISABLE') })], []],
  ];
  for (const [name, objects, lines, workloads] of cases) test(name, () => assert.deepEqual(report(objects, workloads), lines));

  test('the mode checked for each subset and port is the one the control plane gives the cluster (effectivePolicy)', () => {
    const rule = dr({
      trafficPolicy: { ...tls('DISABLE'), portLevelSettings: [{ port: { number: 81 }, ...tls('ISTIO_MUTUAL') }] },
      subsets: [
        { name: 'a', labels: { version: 'v1' }, trafficPolicy: tls('ISTIO_MUTUAL') },
        { name: 'b', labels: { version: 'v1' }, trafficPolicy: { portLevelSettings: [{ port: { number: 82 }, ...tls('DISABLE') }] } },
        { name: 'c', labels: { version: 'v1' } },
      ],
    });
    const parsed = checkResource(rule, 'x') as DestinationRule;
    const own = { ...parsed, spec: { ...parsed.spec, trafficPolicy: undefined } };
    for (const port of [80, 81, 82]) {
      // STRICT refuses DISABLE: each cluster whose mode is DISABLE is reported, once per field that
      // sets it: a subset that takes the rule's own DISABLE is in the host's line.
      const lines = report([pa('STRICT'), rule], [reviews('v1', [port])]);
      const named = (subset: string) => lines.some((l) => l.includes(`to ${subset ? `subset "${subset}" of ${HOST}` : HOST} on port ${port},`));
      for (const subset of ['', 'a', 'b', 'c']) {
        const disabled = effectivePolicy(parsed, subset, port).tls?.mode === 'DISABLE';
        const inherited = subset !== '' && effectivePolicy(own, subset, port).tls === undefined;
        assert.equal(named(subset) || (inherited && named('')), disabled, `subset "${subset}", port ${port}: ${lines.join('\n')}`);
      }
    }
  });
});
