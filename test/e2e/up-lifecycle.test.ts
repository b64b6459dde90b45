// `weft up` as a user restarts it: the stored config survives a restart (a live change included),
// --reset-config starts from the mesh file again, and a second weft up on the same home says where
// the first runs and changes nothing of it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, startUp, tmpDir, weft } from '../helpers.ts';
import { parseMeshFile } from '../../src/cli/meshfile.ts';
import { trafficHint } from '../../src/cli/up.ts';

const LIVE_CHANGE = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: my-backend-service}
spec:
  hosts: [my-backend-service]
  http:
  - route:
    - destination: {host: my-backend-service, subset: v1}
      weight: 50
    - destination: {host: my-backend-service, subset: v2}
      weight: 50
`;

const weights = async (env: NodeJS.ProcessEnv) => {
  const r = await weft(['get', 'vs', 'my-backend-service', '-o', 'json'], env);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout).spec.http[0].route.map((d: any) => d.weight);
};

test('a restart keeps the stored config, a live change included; --reset-config applies the mesh file again', async () => {
  const home = tmpDir('up-restart');
  let up = await startUp('examples/canary', [], home);
  try {
    assert.deepEqual(await weights(up.env), [90, 10]);
    const a = await weft(['apply', '-f', '-'], up.env, LIVE_CHANGE);
    assert.equal(a.code, 0, a.stderr);
  } finally {
    await up.stop();
  }
  up = await startUp('examples/canary', [], home);
  try {
    assert.match(up.output(), /keeping the 2 resource\(s\) stored in .* \(revision \d+\); the mesh file's config is not applied again/);
    assert.deepEqual(await weights(up.env), [50, 50], 'the live 50/50 survived the restart');
  } finally {
    await up.stop();
  }
  up = await startUp('examples/canary', ['--reset-config'], home);
  try {
    assert.match(up.output(), /--reset-config: deleted the 2 stored resource\(s\)/);
    assert.deepEqual(await weights(up.env), [90, 10]);
  } finally {
    await up.stop();
  }
});

test('a second weft up on the same home says where the first runs, exits 1 and changes nothing', async () => {
  const up = await startUp('examples/canary');
  try {
    const stateFile = path.join(up.home, 'up.json');
    const before = fs.readFileSync(stateFile, 'utf8');
    const second = await weft(['up', 'examples/canary', '--admin-port', '0', '--xds-port', '0'], up.env);
    assert.equal(second.code, 1);
    assert.match(second.stderr, new RegExp(`Weft is already running from .* \\(weft up pid ${up.proc.pid}, admin API ${up.state.admin.replace(/[.]/g, '\\.')}\\); this weft up changed nothing`));
    assert.equal(fs.readFileSync(stateFile, 'utf8'), before, "the first one's up.json is untouched");
    assert.equal((await weft(['get', 'vs'], up.env)).code, 0, 'the first one still serves');
  } finally {
    await up.stop();
  }
});

test('a mesh file may hold two workloads of one name in different namespaces; the hint comes from its own services and ports', () => {
  const mesh = parseMeshFile(
    'workloads:\n  - {name: api, namespace: a, service: api, command: [x], ports: [{name: http, port: 9080}]}\n  - {name: api, namespace: b, service: api, command: [x]}\n  - {name: client, namespace: a}\n',
    'm/weft.yaml',
  );
  assert.deepEqual(mesh.workloads.map((w) => `${w.namespace}/${w.name}`), ['a/api', 'b/api', 'a/client']);
  assert.throws(() => parseMeshFile('workloads:\n  - {name: api}\n  - {name: api}\n', 'm/weft.yaml'), /workloads\[1\]\.name: "api" is used twice in namespace default/);
  const state = { workloads: [{ name: 'api', namespace: 'a', ports: [{ name: 'http', port: 9080, protocol: 'HTTP', inbound: '', app: '' }] }] };
  assert.equal(trafficHint(mesh.workloads, state), 'client -- curl -s http://api:9080/');
  const canary = parseMeshFile(fs.readFileSync(path.join(ROOT, 'examples/canary/weft.yaml'), 'utf8'), 'x');
  assert.equal(trafficHint(canary.workloads, { workloads: [{ name: 'hello-v1', namespace: 'default', ports: [{ name: 'http', port: 80, protocol: 'HTTP', inbound: '', app: '' }] }] }), 'client -- curl -s http://my-backend-service/');
});
