// Golden tests for the one place config becomes xDS. Each testdata/<case>.yaml (config, workloads,
// and which proxy asks) has a <case>.golden.yaml holding the exact resources. Regenerate with
// UPDATE_GOLDEN=1 npm test, and review the diff.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import YAML from 'yaml';
import { duration, translate } from '../../src/control/translate/translate.ts';
import type { MeshSnapshot, Workload } from '../../src/control/model/model.ts';
import { TYPE, decode, encode } from '../../src/xds/protos.ts';
import { checkResource } from '../../src/api/index.ts';

const dir = fileURLToPath(new URL('./testdata/', import.meta.url));
const cases = fs.readdirSync(dir).filter((f) => f.endsWith('.yaml') && !f.endsWith('.golden.yaml'));

function load(file: string): { mesh: MeshSnapshot; proxy: Workload } {
  const doc = YAML.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
  const resources = (doc.config ?? []).map((r: unknown, i: number) => checkResource(r, `${file} config[${i}]`));
  const mesh: MeshSnapshot = {
    revision: 1,
    virtualServices: resources.filter((r: any) => r.kind === 'VirtualService'),
    destinationRules: resources.filter((r: any) => r.kind === 'DestinationRule'),
    peerAuthentications: resources.filter((r: any) => r.kind === 'PeerAuthentication'),
    requestAuthentications: resources.filter((r: any) => r.kind === 'RequestAuthentication'),
    ...(doc.trustDomain ? { trustDomain: doc.trustDomain } : {}),
    // Current Weft sidecars, which run Istio's TCP metadata exchange, unless the case says otherwise.
    workloads: doc.workloads.map((w: Workload) => ({ peerExchange: true, ...w })),
  };
  const proxy = mesh.workloads.find((w: Workload) => w.name === doc.proxy);
  assert.ok(proxy, `${file}: proxy ${doc.proxy} is not among the workloads`);
  return { mesh, proxy };
}

for (const file of cases) {
  test(`translate ${file} matches ${file.replace('.yaml', '.golden.yaml')}`, () => {
    const { mesh, proxy } = load(file);
    const got = translate(mesh, proxy);
    const text = YAML.stringify(got, { aliasDuplicateObjects: false });
    const goldenPath = path.join(dir, file.replace('.yaml', '.golden.yaml'));
    if (process.env.UPDATE_GOLDEN) fs.writeFileSync(goldenPath, text);
    assert.ok(fs.existsSync(goldenPath), `${goldenPath} is missing: run UPDATE_GOLDEN=1 npm test`);
    assert.equal(text, fs.readFileSync(goldenPath, 'utf8'));
  });

  test(`translate ${file}: every resource survives a protobuf round trip (no misspelt field is dropped)`, () => {
    const { mesh, proxy } = load(file);
    const got = translate(mesh, proxy);
    const types = { listeners: TYPE.listener, apiListeners: TYPE.listener, routes: TYPE.route, clusters: TYPE.cluster, endpoints: TYPE.endpoint };
    const dropEmpty = (v: any): any =>
      Array.isArray(v)
        ? v.map(dropEmpty)
        : v && typeof v === 'object'
          ? Object.fromEntries(Object.entries(v).filter(([, x]) => !(Array.isArray(x) && x.length === 0)).map(([k, x]) => [k, dropEmpty(x)]))
          : v;
    for (const [group, type] of Object.entries(types)) {
      for (const [name, res] of Object.entries((got as any)[group] as Record<string, object>)) {
        const back = decode(type, encode(type, res));
        assert.ok(isDeepStrictEqual(back, dropEmpty(res)), `${group} ${name} changed in a round trip:\n${JSON.stringify(res)}\n${JSON.stringify(back)}`);
      }
    }
  });
}

test('translate is pure: the same input twice gives identical output', () => {
  const { mesh, proxy } = load('canary.yaml');
  assert.deepEqual(translate(mesh, proxy), translate(mesh, proxy));
});

test('a subset only holds the workloads whose labels match', () => {
  const { mesh, proxy } = load('canary.yaml');
  const eps = translate(mesh, proxy).endpoints as any;
  const ports = (c: string) => eps[c].endpoints.flatMap((l: any) => l.lb_endpoints.map((e: any) => e.endpoint.address.socket_address.port_value));
  assert.deepEqual(ports('outbound|80|v1|my-backend-service.default.svc.cluster.local'), [20001]);
  assert.deepEqual(ports('outbound|80|v2|my-backend-service.default.svc.cluster.local'), [20002]);
  assert.deepEqual(ports('outbound|80||my-backend-service.default.svc.cluster.local'), [20001, 20002]);
});

test('route timeouts take every duration form validation accepts', () => {
  assert.deepEqual(duration('1.5s'), { seconds: 1, nanos: 500_000_000 });
  assert.deepEqual(duration('100ms'), { seconds: 0, nanos: 100_000_000 });
  assert.deepEqual(duration('1m30s'), { seconds: 90 });
  assert.deepEqual(duration('2h'), { seconds: 7200 });
});
