// The weft command's own surface: --help everywhere, usage errors on stderr with exit 2, failures
// with exit 1, and the mesh file's errors naming the file and field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir, weft } from '../helpers.ts';
import { COMMANDS } from '../../src/cli/commands.ts';
import { parseMeshFile, portEnvName } from '../../src/cli/meshfile.ts';

test('every command answers --help on stdout with exit 0', async () => {
  for (const name of Object.keys(COMMANDS)) {
    const r = await weft([name, '--help']);
    assert.equal(r.code, 0, `${name}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^Usage: weft ${name}`), name);
  }
  const top = await weft(['--help']);
  assert.equal(top.code, 0);
  for (const name of Object.keys(COMMANDS)) assert.match(top.stdout, new RegExp(`^  ${name}\\b`, 'm'), `top-level help lists ${name}`);
});

test('usage errors go to stderr with exit 2 and say what is wrong', async () => {
  const cases: [string[], RegExp][] = [
    [['frobnicate'], /unknown command "frobnicate"/],
    [['get'], /which kind\?/],
    [['apply', '--nope'], /Unknown option '--nope'/],
    [['proxy', '--xds', '127.0.0.1:1'], /--workload is required/],
    [['proxy', '--xds', '127.0.0.1:1', '--workload', 'w', '--outbound-port', '0'], /--outbound-port: must be a port number from 1 to 65535/],
    [['control', '--admin-port', 'http'], /--admin-port: "http" is not a port number/],
    [['control', '--advertise-address', 'cp.example'], /--advertise-address: "cp.example" is not an IP address/],
    [['control', '--traces-port', '70000'], /--traces-port: "70000" is not a port number/],
    [['exec', 'client'], /no command: put it after --/],
  ];
  for (const [args, want] of cases) {
    const r = await weft(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, want);
    assert.equal(r.stdout, '');
  }
});

test('with no control plane, commands fail with exit 1 naming the address they tried', async () => {
  const r = await weft(['get', 'vs', '--admin', 'http://127.0.0.1:1']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot reach the control plane admin API at http:\/\/127\.0\.0\.1:1: ECONNREFUSED/);
  // weft dashboard prints no URL that would not answer.
  const d = await weft(['dashboard', '--admin', 'http://127.0.0.1:1']);
  assert.equal(d.code, 1);
  assert.equal(d.stdout, '');
  assert.match(d.stderr, /cannot reach the control plane admin API at http:\/\/127\.0\.0\.1:1: ECONNREFUSED/);
});

test('weft up refuses a bad mesh file before starting anything, naming the file and field', async () => {
  const dir = tmpDir('mesh');
  fs.writeFileSync(path.join(dir, 'weft.yaml'), 'workloads:\n  - name: a\n    service: svc\n');
  const home = tmpDir('home');
  const r = await weft(['up', dir, '--admin-port', '0', '--xds-port', '0'], { WEFT_HOME: home });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /weft\.yaml: workloads\[0\]\.command: required when the workload serves a service/);
  assert.ok(!fs.existsSync(path.join(home, 'data')), 'nothing was started');
  fs.rmSync(dir, { recursive: true });
});

test('mesh file errors', () => {
  const bad: [string, RegExp][] = [
    ['workloads: []', /workloads: must be a non-empty list/],
    ['workloads:\n  - name: Bad_Name', /workloads\[0\]\.name: required: a DNS-1123 label/],
    ['workloads:\n  - {name: a}\n  - {name: a}', /workloads\[1\]\.name: "a" is used twice/],
    ['workloads:\n  - {name: a, servicePort: 70000, service: s, command: [x]}', /workloads\[0\]\.servicePort: must be a port number/],
    ['workloads:\n  - {name: a, colour: red}', /workloads\[0\]\.colour: unknown field/],
    ['workloads: [', /YAML syntax error/],
    ['workloads:\n  - {name: a, service: s, command: [x], servicePort: 80, ports: [{name: http, port: 80}]}', /workloads\[0\]\.ports: give either servicePort \(one HTTP port\) or ports, not both/],
    ['workloads:\n  - {name: a, service: s, command: [x], ports: []}', /workloads\[0\]\.ports: must be a non-empty list/],
    ['workloads:\n  - {name: a, service: s, command: [x], ports: [{port: 80}]}', /workloads\[0\]\.ports\[0\]\.name: required/],
    ['workloads:\n  - {name: a, service: s, command: [x], ports: [{name: Web, port: 80}]}', /workloads\[0\]\.ports\[0\]\.name: required: a DNS-1123 label/],
    ['workloads:\n  - {name: a, service: s, command: [x], ports: [{name: web, port: 0}]}', /workloads\[0\]\.ports\[0\]\.port: required: a port number/],
    ['workloads:\n  - {name: a, service: s, command: [x], ports: [{name: web, port: 80}, {name: web, port: 81}]}', /workloads\[0\]\.ports\[1\]\.name: "web" is used twice/],
    ['workloads:\n  - {name: a, service: s, command: [x], ports: [{name: web, port: 80}, {name: db, port: 80}]}', /workloads\[0\]\.ports\[1\]\.port: 80 is used twice/],
    ['workloads:\n  - {name: a, service: s, command: [x], ports: [{name: web, port: 80, protocol: tcp}]}', /workloads\[0\]\.ports\[0\]\.protocol: unknown field/],
    ['workloads:\n  - {name: a, service: s, command: [x], ports: [{name: dns, port: 53, appProtocol: udp}]}', /workloads\[0\]\.ports\[0\]\.appProtocol: UDP is not supported/],
    ['workloads:\n  - {name: a, command: [x], ports: [{name: web, port: 80}]}', /workloads\[0\]\.ports: only a workload that serves a service has ports/],
  ];
  for (const [text, want] of bad) assert.throws(() => parseMeshFile(text, 'm/weft.yaml'), (e: Error) => want.test(e.message) && e.message.startsWith('m/weft.yaml'));
  const ok = parseMeshFile(fs.readFileSync(new URL('../../examples/canary/weft.yaml', import.meta.url), 'utf8'), 'x');
  assert.deepEqual(ok.workloads.map((w) => [w.name, w.service ?? '-']), [['hello-v1', 'my-backend-service'], ['hello-v2', 'my-backend-service'], ['client', '-']]);
  assert.deepEqual(ok.workloads[0].ports, [{ name: 'http', port: 80 }], 'servicePort (or its default) is one HTTP port');
  const multi = parseMeshFile('workloads:\n  - name: a\n    service: s\n    command: [x]\n    ports: [{name: http-web, port: 80}, {name: tcp-db, port: 5432}, {name: api, port: 50051, appProtocol: grpc}]\n', 'x');
  assert.deepEqual(multi.workloads[0].ports, [{ name: 'http-web', port: 80 }, { name: 'tcp-db', port: 5432 }, { name: 'api', port: 50051, appProtocol: 'grpc' }]);
  assert.equal(portEnvName('http-web'), 'PORT_HTTP_WEB');
  assert.equal(portEnvName('tcp-db2'), 'PORT_TCP_DB2');
});

test('apply, get and delete against a running control plane', async () => {
  const { startControlPlane } = await import('../../src/control/control-plane.ts');
  const cp = await startControlPlane({ dataDir: tmpDir('cli-cp'), adminPort: 0, xdsPort: 0 });
  process.env.WEFT_ADMIN_TOKEN = cp.adminToken; // the CLI's token for this control plane
  const admin = ['--admin', cp.adminUrl];
  try {
    const a = await weft(['apply', '-f', 'examples/canary/istio.yaml', ...admin]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(a.stdout, 'VirtualService default/my-backend-service created (revision 1)\nDestinationRule default/my-backend-service created (revision 2)\n');
    const again = await weft(['apply', '-f', 'examples/canary/istio.yaml', ...admin]);
    assert.match(again.stdout, /VirtualService default\/my-backend-service unchanged\n/);

    const list = await weft(['get', 'destinationrules', ...admin]);
    assert.match(list.stdout, /^NAMESPACE\s+NAME\s+REVISION\s+WARNINGS\ndefault\s+my-backend-service\s+2\s+0\n$/);
    const yaml = await weft(['get', 'vs', 'my-backend-service', '-o', 'yaml', ...admin]);
    assert.match(yaml.stdout, /kind: VirtualService\n/);
    assert.match(yaml.stdout, /weight: 90\n/);
    assert.doesNotMatch(yaml.stdout, /revision/);

    const del = await weft(['delete', 'vs', 'my-backend-service', ...admin]);
    assert.equal(del.code, 0, del.stderr);
    assert.equal(del.stdout, 'VirtualService default/my-backend-service deleted (revision 3)\n');
    const gone = await weft(['get', 'vs', 'my-backend-service', ...admin]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /VirtualService default\/my-backend-service not found/);

    // As with kubectl: what is there is deleted, what is not is reported, and the exit code says so.
    const delFile = await weft(['delete', '-f', 'examples/canary/istio.yaml', ...admin]);
    assert.equal(delFile.code, 1, 'the VirtualService in the file was already gone');
    assert.match(delFile.stderr, /VirtualService default\/my-backend-service not found/);
    assert.equal(delFile.stdout, 'DestinationRule default/my-backend-service deleted (revision 4)\n');
    assert.deepEqual(cp.store.list(), []);
  } finally {
    await cp.close();
  }
});

const WARNED = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{statPrefix: reviews, uri: {prefix: /}}]
    route:
    - destination: {host: reviews, subset: v1}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy: {proxyProtocol: {version: V2}}
  subsets: [{name: v1, labels: {version: v1}}]
`;

test('apply and get name every field accepted but not applied yet (on stderr); get -o yaml and -o json go back into apply', async () => {
  const { startControlPlane } = await import('../../src/control/control-plane.ts');
  const cp = await startControlPlane({ dataDir: tmpDir('cli-warn'), adminPort: 0, xdsPort: 0 });
  process.env.WEFT_ADMIN_TOKEN = cp.adminToken; // the CLI's token for this control plane
  const admin = ['--admin', cp.adminUrl];
  try {
    const a = await weft(['apply', '-f', '-', ...admin], {}, WARNED);
    assert.equal(a.code, 0, a.stderr);
    assert.match(a.stderr, /^Warning: VirtualService default\/reviews: spec\.http\[0\]\.match\[0\]\.statPrefix: accepted, not applied yet/m);
    assert.match(a.stderr, /^Warning: DestinationRule default\/reviews: spec\.trafficPolicy\.proxyProtocol: accepted, not applied yet/m);
    const list = await weft(['get', 'vs', ...admin]);
    assert.match(list.stdout, /NAMESPACE +NAME +REVISION +WARNINGS\ndefault +reviews +\d+ +1\n/);
    assert.match(list.stderr, /Warning: VirtualService default\/reviews: spec\.http\[0\]\.match\[0\]\.statPrefix/);
    // Round trips: the listing is what apply takes (a YAML stream, a JSON List).
    for (const kind of ['vs', 'dr']) {
      for (const out of ['yaml', 'json']) {
        const got = await weft(['get', kind, '-o', out, ...admin]);
        assert.equal(got.code, 0, got.stderr);
        const back = await weft(['apply', '-f', '-', ...admin], {}, got.stdout);
        assert.equal(back.code, 0, `${kind} -o ${out}: ${back.stderr}`);
        assert.match(back.stdout, /unchanged/);
      }
    }
  } finally {
    await cp.close();
  }
});

test('apply refuses what Weft cannot apply and must not ignore, naming the field; nothing is stored', async () => {
  const { startControlPlane } = await import('../../src/control/control-plane.ts');
  const cp = await startControlPlane({ dataDir: tmpDir('cli-refuse'), adminPort: 0, xdsPort: 0 });
  process.env.WEFT_ADMIN_TOKEN = cp.adminToken; // the CLI's token for this control plane
  try {
    const text = `${WARNED}---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: db}\nspec:\n  hosts: [db]\n  tls:\n  - match: [{sniHosts: [db], destinationSubnets: [10.0.0.0/8]}]\n    route:\n    - destination: {host: db, subset: v2}\n`;
    const r = await weft(['apply', '-f', '-', '--admin', cp.adminUrl], {}, text);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /VirtualService default\/db: spec\.tls\[0\]\.match\[0\]\.destinationSubnets: not supported/);
    assert.equal(cp.store.list().length, 0, 'nothing of the file was applied');
  } finally {
    await cp.close();
  }
});

test('weft analyze: offline, Istio codes for what the files say together, warnings for what Weft does not apply, exit 1 on errors', async () => {
  const dir = tmpDir('analyze');
  const file = path.join(dir, 'a.yaml');
  fs.writeFileSync(file, `${WARNED.replace('subset: v1}', 'subset: v3}')}---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: again}\nspec:\n  hosts: [reviews.default.svc.cluster.local]\n  http: [{route: [{destination: {host: reviews}}]}]\n`);
  const r = await weft(['analyze', '-f', file]);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stdout, /^Error \[IST0101\] \(VirtualService default\/reviews\) spec\.http\[0\]\.route\[0\]\.destination\.subset: Referenced host\+subset in destinationrule not found: "reviews\.default\.svc\.cluster\.local\+v3"/m);
  assert.match(r.stdout, /^Error \[IST0109\] \(VirtualService default\/again\) spec\.hosts: The VirtualServices default\/again,default\/reviews/m);
  assert.match(r.stdout, /^Warning \[WEFT0001\] \(VirtualService default\/reviews\) spec\.http\[0\]\.match\[0\]\.statPrefix/m);
  const ok = await weft(['analyze', '-f', 'examples/canary/istio.yaml']);
  assert.equal(ok.code, 0, ok.stdout);
  assert.match(ok.stdout, /No validation issues found/);
  const bad = await weft(['analyze', '-f', '-'], {}, 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec: {hosts: [a], http: [{route: [{destination: {host: a, port: {number: 99999}}}]}]}\n');
  assert.equal(bad.code, 1);
  assert.match(bad.stdout, /^Error \[IST0106\] VirtualService default\/x: spec\.http\[0\]\.route\[0\]\.destination\.port\.number: /m);
});

test('weft analyze without -f: the running mesh, with what its workloads tell: a host nothing serves (IST0101, exit 1), a subset that selects no workload (WEFT0002)', async () => {
  const { startControlPlane } = await import('../../src/control/control-plane.ts');
  const cp = await startControlPlane({ dataDir: tmpDir('cli-live'), adminPort: 0, xdsPort: 0 });
  process.env.WEFT_ADMIN_TOKEN = cp.adminToken; // the CLI's token for this control plane
  try {
    cp.registry.register({ proxyId: 'reviews-1', name: 'reviews-1', namespace: 'default', service: 'reviews', servicePort: 80, labels: { version: 'v1' }, address: '127.0.0.1', inboundPort: 1, appPort: 1, healthy: true });
    const config = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec: {host: reviews, subsets: [{name: v1, labels: {version: v1}}, {name: v3, labels: {version: v3}}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec: {hosts: [reviews], http: [{route: [{destination: {host: reviews, subset: v1}}]}]}
`;
    assert.equal((await weft(['apply', '-f', '-', '--admin', cp.adminUrl], {}, config)).code, 0);
    const ok = await weft(['analyze', '--admin', cp.adminUrl]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /^Warning \[WEFT0002\] \(DestinationRule default\/reviews\) spec\.subsets\[1\]\.labels: subset "v3" of reviews\.default\.svc\.cluster\.local selects none of its 1 workload\(s\)/m);
    assert.match(ok.stdout, /No validation issues found in the running mesh at .*: 2 resource\(s\), 1 workload\(s\)/);
    const typo = config.replace('destination: {host: reviews, subset: v1}', 'destination: {host: reviewz}');
    assert.equal((await weft(['apply', '-f', '-', '--admin', cp.adminUrl], {}, typo)).code, 0);
    const bad = await weft(['analyze', '--admin', cp.adminUrl]);
    assert.equal(bad.code, 1, bad.stdout);
    assert.match(bad.stdout, /^Error \[IST0101\] \(VirtualService default\/reviews\) spec\.http\[0\]\.route\[0\]\.destination\.host: Referenced host not found: "reviewz\.default\.svc\.cluster\.local"/m);
  } finally {
    await cp.close();
  }
});

test('weft analyze on the security kinds: offline, Istio\'s schema warnings (IST0133, exit 0); live, a policy no workload takes (IST0127), a source namespace no workload runs in (IST0101, exit 1), plaintext to STRICT workloads (WEFT0005)', async () => {
  const dir = tmpDir('analyze-security');
  const file = path.join(dir, 'policies.yaml');
  const policies = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: shop}
spec: {selector: {}, mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-posts, namespace: shop}
spec: {action: DENY, rules: [{to: [{operation: {methods: [POST]}}]}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: from-test, namespace: shop}
spec: {selector: {matchLabels: {app: cart}}, rules: [{from: [{source: {namespaces: [test]}}]}]}
`;
  fs.writeFileSync(file, policies);
  const offline = await weft(['analyze', '-f', file]);
  assert.equal(offline.code, 0, offline.stdout);
  assert.match(offline.stdout, /^Warning \[IST0133\] \(PeerAuthentication shop\/strict\) spec\.selector: Schema validation warning: workload selector specified without labels$/m);
  assert.match(offline.stdout, /^Warning \[IST0133\] \(AuthorizationPolicy shop\/no-posts\) spec\.rules\[0\]: Schema validation warning: configured AuthorizationPolicy will deny all traffic to TCP ports under its scope due to the use of only HTTP attributes in a DENY rule; it is recommended to explicitly specify the port$/m);
  assert.doesNotMatch(offline.stdout, /IST0127|IST0101/, 'offline there are no workloads to say so');
  // Valid in Istio, refused by Weft: WEFT0004, not Istio's IST0106.
  const required = await weft(['analyze', '-f', '-'], {}, 'apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: jwt}\nspec: {jwtRules: [{issuer: i, jwksUri: "https://i/jwks", presence: REQUIRED}]}\n');
  assert.equal(required.code, 1, required.stdout);
  assert.match(required.stdout, /^Error \[WEFT0004\] \(RequestAuthentication default\/jwt\) spec\.jwtRules\[0\]\.presence: valid in Istio, refused by weft apply: REQUIRED is not supported yet/m);
  assert.doesNotMatch(required.stdout, /IST0106/);
  fs.rmSync(dir, { recursive: true });

  const { startControlPlane } = await import('../../src/control/control-plane.ts');
  const cp = await startControlPlane({ dataDir: tmpDir('cli-live-security'), adminPort: 0, xdsPort: 0 });
  process.env.WEFT_ADMIN_TOKEN = cp.adminToken;
  try {
    cp.registry.register({ proxyId: 'cart-1', name: 'cart-1', namespace: 'shop', service: 'cart', servicePort: 80, labels: { app: 'cart' }, address: '127.0.0.1', inboundPort: 1, appPort: 1, healthy: true });
    assert.equal((await weft(['apply', '-f', '-', '--admin', cp.adminUrl], {}, policies)).code, 0);
    const bad = await weft(['analyze', '--admin', cp.adminUrl]);
    assert.equal(bad.code, 1, bad.stdout + bad.stderr);
    assert.match(bad.stdout, /^Error \[IST0101\] \(AuthorizationPolicy shop\/from-test\) spec\.rules\[0\]\.from\[0\]\.source\.namespaces\[0\]: Referenced namespace not found: "test"/m);
    assert.doesNotMatch(bad.stdout, /IST0127/, 'cart-1 is what from-test selects');
    const moved = policies.replace('{app: cart}', '{app: kart}').replace('namespaces: [test]', 'namespaces: [shop]');
    assert.equal((await weft(['apply', '-f', '-', '--admin', cp.adminUrl], {}, moved)).code, 0);
    const ok = await weft(['analyze', '--admin', cp.adminUrl]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /^Warning \[IST0127\] \(AuthorizationPolicy shop\/from-test\) spec\.selector: No matching workloads for this resource with the following labels: app=kart$/m);
    // Plaintext to a workload its PeerAuthentication makes STRICT: Weft's own WEFT0005.
    const plaintext = 'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: cart, namespace: shop}\nspec: {host: cart, trafficPolicy: {tls: {mode: DISABLE}}}\n';
    assert.equal((await weft(['apply', '-f', '-', '--admin', cp.adminUrl], {}, plaintext)).code, 0);
    const conflict = await weft(['analyze', '--admin', cp.adminUrl]);
    assert.equal(conflict.code, 1, conflict.stdout);
    assert.match(conflict.stdout, /^Error \[WEFT0005\] \(DestinationRule shop\/cart\) spec\.trafficPolicy\.tls\.mode: DISABLE sends plaintext to cart\.shop\.svc\.cluster\.local on port 80, but its workload\(s\) shop\/cart-1 take only mTLS there \(PeerAuthentication STRICT\): they close those connections$/m);
  } finally {
    await cp.close();
  }
});

/** Istio's mesh config as an install has it (kubectl get configmap istio -n istio-system -o yaml), with a trust domain alias and a setting Weft does not apply. */
const MESH_CONFIGMAP = `apiVersion: v1
kind: ConfigMap
metadata:
  name: istio
  namespace: istio-system
  resourceVersion: "1042"
  labels: {istio.io/rev: default}
data:
  mesh: |-
    defaultConfig:
      discoveryAddress: istiod.istio-system.svc:15012
    rootNamespace: istio-system
    trustDomain: new-td
    trustDomainAliases:
    - old-td
  meshNetworks: 'networks: {}'
`;

test("the mesh config: apply takes Istio's ConfigMap istio-system/istio (warning of what it does not apply), get -o yaml shows it under data and goes back into apply, delete removes it; other ConfigMaps are refused", async () => {
  const { startControlPlane } = await import('../../src/control/control-plane.ts');
  const cp = await startControlPlane({ dataDir: tmpDir('cli-mesh'), adminPort: 0, xdsPort: 0 });
  process.env.WEFT_ADMIN_TOKEN = cp.adminToken; // the CLI's token for this control plane
  const admin = ['--admin', cp.adminUrl];
  try {
    const a = await weft(['apply', '-f', '-', ...admin], {}, MESH_CONFIGMAP);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(a.stdout, 'ConfigMap istio-system/istio created (revision 1)\n');
    assert.equal(a.stderr, "Warning: ConfigMap istio-system/istio: data.mesh.defaultConfig.discoveryAddress: accepted, not applied yet: proxy settings are the sidecar's own (weft sidecar flags)\n");

    const list = await weft(['get', 'configmaps', '-n', 'istio-system', ...admin]);
    assert.match(list.stdout, /^NAMESPACE\s+NAME\s+REVISION\s+WARNINGS\nistio-system\s+istio\s+1\s+1\n$/);
    const yaml = await weft(['get', 'cm', 'istio', '-n', 'istio-system', '-o', 'yaml', ...admin]);
    assert.equal(yaml.code, 0, yaml.stderr);
    assert.match(yaml.stdout, /^apiVersion: v1\nkind: ConfigMap\n/);
    assert.match(yaml.stdout, /\ndata:\n {2}mesh: \|-\n {4}defaultConfig:\n/);
    assert.match(yaml.stdout, /\n {2}meshNetworks: "networks: \{\}"\n/);
    assert.doesNotMatch(yaml.stdout, /spec:|revision/);
    assert.match(yaml.stderr, /Warning: ConfigMap istio-system\/istio: data\.mesh\.defaultConfig/);
    for (const out of ['yaml', 'json']) {
      const got = await weft(['get', 'cm', '-n', 'istio-system', '-o', out, ...admin]);
      const back = await weft(['apply', '-f', '-', ...admin], {}, got.stdout);
      assert.equal(back.code, 0, `-o ${out}: ${back.stderr}`);
      assert.equal(back.stdout, 'ConfigMap istio-system/istio unchanged\n');
    }

    const other = await weft(['apply', '-f', '-', ...admin], {}, 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app-config}\ndata: {LOG_LEVEL: debug}\n');
    assert.equal(other.code, 1);
    assert.match(other.stderr, /ConfigMap default\/app-config: metadata: Weft reads one ConfigMap, Istio's mesh config istio-system\/istio/);
    const bad = await weft(['apply', '-f', '-', ...admin], {}, MESH_CONFIGMAP.replace('- old-td', '- Old_TD'));
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /ConfigMap istio-system\/istio: data\.mesh\.trustDomainAliases\[0\]: trust domain name "Old_TD" invalid/);

    const del = await weft(['delete', 'cm', 'istio', '-n', 'istio-system', ...admin]);
    assert.equal(del.code, 0, del.stderr);
    assert.equal(del.stdout, 'ConfigMap istio-system/istio deleted (revision 2)\n');
    assert.deepEqual(cp.store.list(), []);
  } finally {
    await cp.close();
  }
});

test('the trace receiver sidecars are told of: the advertised address when given (sidecars on other hosts), else the bound address, else loopback for a wildcard bind', async () => {
  const { receiverAddress, startControlPlane } = await import('../../src/control/control-plane.ts');
  assert.deepEqual(receiverAddress({ address: '0.0.0.0', port: 4318 }, undefined), { address: '127.0.0.1', port: 4318 });
  assert.deepEqual(receiverAddress({ address: '::', port: 4318 }, '10.1.2.3'), { address: '10.1.2.3', port: 4318 });
  assert.deepEqual(receiverAddress({ address: '127.0.0.1', port: 1 }, undefined), { address: '127.0.0.1', port: 1 });
  const cp = await startControlPlane({ dataDir: tmpDir('advertise'), adminPort: 0, xdsPort: 0, advertiseAddress: '127.0.0.9', log: () => {} });
  try {
    assert.match(cp.tracesAddress, /^127\.0\.0\.9:\d+$/);
  } finally {
    await cp.close();
  }
});
