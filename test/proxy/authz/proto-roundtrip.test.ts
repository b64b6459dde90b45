// The sidecar gets RBAC configs as protobuf inside an LDS/RDS push, decoded with snake_case names
// (src/xds/protos.ts: keepCase, enums as strings, wrappers as {value}, Any as '@type'). This runs
// Istio's goldens through that path, from the .proto files that ship with @grpc/grpc-js-xds, and
// checks that the decoded form compiles to the same decisions as the proto JSON one.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { parse } from 'yaml';
import { compileRbacTypedConfig } from '../../../src/proxy/authz/rbac-config.ts';
import { evaluateRbac } from '../../../src/proxy/authz/rbac-engine.ts';
import { req } from './helpers.ts';

const require = createRequire(import.meta.url);
const ROOT = new URL('../../../../shared/conformance/istio/authz-rbac/', import.meta.url);
const FILES = [
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  'envoy/extensions/path/match/uri_template/v3/uri_template_match.proto',
];

function loadRoot(keepCase: boolean): protobuf.Root {
  const deps = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
  const include = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(deps, d));
  include.push(path.dirname(require.resolve('protobufjs/package.json')));
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    if (path.isAbsolute(target)) return target;
    for (const dir of include) if (fs.existsSync(path.join(dir, target))) return path.join(dir, target);
    return target;
  };
  root.loadSync(FILES, { keepCase });
  root.resolveAll();
  return root;
}

/**
 * protobufjs's fromObject takes a wrapper type (UInt32Value) only as {value}, where proto JSON has
 * the bare number: so must the control plane write CidrRange.prefix_len to encode it.
 */
function wrapPrefixLen(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(wrapPrefixLen);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, k === 'prefixLen' && typeof x === 'number' ? { value: x } : wrapPrefixLen(x)]));
}

/** proto JSON (camelCase, as Istio's goldens) -> bytes -> what the sidecar's decoder gives. */
function throughTheWire(camel: protobuf.Root, snake: protobuf.Root, typedConfig: Record<string, unknown>): Record<string, unknown> {
  const name = String(typedConfig['@type']).split('/').pop()!;
  const { '@type': _t, ...body } = wrapPrefixLen(typedConfig) as Record<string, unknown>;
  const bytes = camel.lookupType(name).encode(camel.lookupType(name).fromObject(body)).finish();
  const t = snake.lookupType(name);
  return { '@type': typedConfig['@type'], ...t.toObject(t.decode(bytes), { json: true, enums: String, longs: Number, defaults: false }) };
}

const dataHere = fs.existsSync(fileURLToPath(ROOT));

describe('RBAC configs decoded from protobuf, as the sidecar gets them', { skip: dataHere ? false : `conformance data absent: ${fileURLToPath(ROOT)} not found (it is present in CI)` }, () => {
  test('decide as their proto JSON does', () => {
    const camel = loadRoot(false);
    const snake = loadRoot(true);
    const requests = [
      req({ peer: 'spiffe://cluster.local/ns/my-ns/sa/my-sa' }),
      req({ uri: '/exact?x', peer: 'spiffe://td1/ns/rule[0]/sa/from[0]-principal[0]', method: 'rule[0]-to[0]-method[0]' }),
      req({ uri: '/path/template/a', destinationIp: '10.10.10.10', destinationPort: 80, sourceIp: '192.168.10.1' }),
      req({ uri: '/allow', sni: 'exact.com', metadata: { 'envoy.filters.http.jwt_authn': { payload: { iss: 'iss', sub: 'x', aud: ['audiences'] } } } }),
      req({ headers: [], destinationPort: 80, peer: 'spiffe://cluster.local/ns/ns-1/sa/a' }),
    ];
    let n = 0;
    for (const dir of ['http', 'tcp']) {
      for (const f of fs.readdirSync(new URL(`${dir}/`, ROOT)).filter((x) => /-out\d*\.yaml$/.test(x))) {
        const g = parse(fs.readFileSync(new URL(`${dir}/${f}`, ROOT), 'utf8'));
        if (!/\.rbac$/.test(g.name)) continue;
        const fromJson = compileRbacTypedConfig(f, g.typedConfig);
        const decoded = throughTheWire(camel, snake, g.typedConfig);
        const fromWire = compileRbacTypedConfig(f, decoded);
        if (f === 'allow-full-rule-out.yaml') {
          // The decoded form really is the other spelling: snake_case, wrappers as {value}.
          const text = JSON.stringify(decoded);
          assert.match(text, /"and_rules":/);
          assert.match(text, /"prefix_len":\{"value":24\}/);
          assert.doesNotMatch(text, /andRules|prefixLen/);
        }
        for (const r of requests) {
          if (fromJson.kind === 'network' && r.headers!.length) continue;
          assert.deepEqual(evaluateRbac(fromWire, r), evaluateRbac(fromJson, r), `${dir}/${f}`);
        }
        n++;
      }
    }
    assert.equal(n, 57);
  });
});
