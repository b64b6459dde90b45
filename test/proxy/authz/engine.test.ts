// The RBAC filters as a whole: actions, which policy is reported, shadow rules, the dynamic
// metadata and response details Envoy writes, the network filter, and what is refused.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileHttpRbac, compileHttpRbacPerRoute, compileNetworkRbac, compileRbacTypedConfig, RBAC_HTTP_TYPE } from '../../../src/proxy/authz/rbac-config.ts';
import { evaluateRbac, rbacDynamicMetadata, rbacResponseDetails } from '../../../src/proxy/authz/rbac-engine.ts';
import { ConvertError } from '../../../src/proxy/xds-client/convert-util.ts';
import { req } from './helpers.ts';

const onPath = (exact: string) => ({ permissions: [{ url_path: { path: { exact } } }], principals: [{ any: true }] });

describe('actions', () => {
  test('ALLOW: allowed iff some policy matches; the policy is reported', () => {
    const f = compileHttpRbac('t', { rules: { policies: { a: onPath('/a') } } });
    assert.deepEqual(evaluateRbac(f, req({ uri: '/a' })), { allowed: true, matchedPolicy: 'a' });
    assert.deepEqual(evaluateRbac(f, req({ uri: '/b' })), { allowed: false });
  });
  test('ALLOW with no policies denies everything', () => {
    assert.equal(evaluateRbac(compileHttpRbac('t', { rules: {} }), req()).allowed, false);
  });
  test('DENY: denied iff some policy matches', () => {
    const f = compileHttpRbac('t', { rules: { action: 'DENY', policies: { d: onPath('/admin') } } });
    assert.deepEqual(evaluateRbac(f, req({ uri: '/admin' })), { allowed: false, matchedPolicy: 'd' });
    assert.deepEqual(evaluateRbac(f, req({ uri: '/x' })), { allowed: true });
  });
  test('LOG: always allowed, logged iff a policy matches', () => {
    const f = compileHttpRbac('t', { rules: { action: 'LOG', policies: { l: onPath('/a') } } });
    assert.deepEqual(evaluateRbac(f, req({ uri: '/a' })), { allowed: true, matchedPolicy: 'l', log: true });
    assert.deepEqual(evaluateRbac(f, req({ uri: '/b' })), { allowed: true, log: false });
  });
  test('actions may be given as enum numbers', () => {
    const f = compileHttpRbac('t', { rules: { action: 1, policies: { d: onPath('/a') } } });
    assert.equal(evaluateRbac(f, req({ uri: '/a' })).allowed, false);
    assert.throws(() => compileHttpRbac('t', { rules: { action: 'AUDIT' } }), /t\.rules\.action: unknown action "AUDIT"/);
  });
  test('no rules: nothing enforced', () => {
    assert.deepEqual(evaluateRbac(compileHttpRbac('t', {}), req()), { allowed: true });
  });
});

describe('policies', () => {
  test('the first match in bytewise name order is reported, as Envoy iterates a std::map', () => {
    const any = { permissions: [{ any: true }], principals: [{ any: true }] };
    const f = compileHttpRbac('t', { rules: { policies: { 'rule[2]': any, 'rule[10]': any, 'Z': any } } });
    assert.deepEqual(f.rules!.policies.map((p) => p.name), ['Z', 'rule[10]', 'rule[2]']);
    assert.equal(evaluateRbac(f, req()).matchedPolicy, 'Z');
  });
  test('a policy needs some permission and some principal to match', () => {
    const p = {
      permissions: [{ destination_port: 1 }, { destination_port: 8080 }],
      principals: [{ authenticated: { principal_name: { exact: 'spiffe://td/ns/a/sa/x' } } }, { source_ip: { address_prefix: '10.0.0.0', prefix_len: 8 } }],
    };
    const f = compileHttpRbac('t', { rules: { policies: { p } } });
    assert.equal(evaluateRbac(f, req()).allowed, true); // port 8080, source 10.0.0.2
    assert.equal(evaluateRbac(f, req({ sourceIp: '192.168.0.1' })).allowed, false);
    assert.equal(evaluateRbac(f, req({ sourceIp: '192.168.0.1', peer: 'spiffe://td/ns/a/sa/x' })).allowed, true);
    assert.equal(evaluateRbac(f, req({ destinationPort: 9 })).allowed, false);
  });
  test('policies without permissions or principals, or with CEL conditions, are refused', () => {
    assert.throws(() => compileHttpRbac('t', { rules: { policies: { p: { permissions: [{ any: true }] } } } }), /t\.rules\.policies\["p"\]\.principals: at least one principal is required/);
    assert.throws(() => compileHttpRbac('t', { rules: { policies: { p: { ...onPath('/'), condition: {} } } } }), /policies\["p"\]\.condition: CEL conditions are not supported/);
    assert.throws(() => compileHttpRbac('t', { rules: { policies: { p: { ...onPath('/'), checkedCondition: {} } } } }), /checked_condition: CEL conditions are not supported/);
  });
});

describe('shadow rules', () => {
  test('are reported beside the enforced decision, and never enforced', () => {
    const f = compileHttpRbac('t', {
      rules: { policies: { enforced: onPath('/another') } },
      shadow_rules: { policies: { shadow: onPath('/allow') } },
      shadow_rules_stat_prefix: 'istio_dry_run_allow_',
    });
    assert.deepEqual(evaluateRbac(f, req({ uri: '/allow' })), { allowed: false, shadow: { effect: 'allowed', policy: 'shadow' } });
    assert.deepEqual(evaluateRbac(f, req({ uri: '/another' })), { allowed: true, matchedPolicy: 'enforced', shadow: { effect: 'denied' } });
  });
  test('shadow only: always allowed', () => {
    const f = compileHttpRbac('t', { shadowRules: { action: 'DENY', policies: { s: onPath('/x') } } });
    assert.deepEqual(evaluateRbac(f, req({ uri: '/x' })), { allowed: true, shadow: { effect: 'denied', policy: 's' } });
  });
});

describe('what Envoy writes for the rest of the chain', () => {
  test('dynamic metadata keys, prefixed by the stat prefixes', () => {
    const f = compileHttpRbac('t', {
      rules: { action: 'DENY', policies: { d: onPath('/d') } },
      rules_stat_prefix: 'r_',
      shadow_rules: { action: 'DENY', policies: { 'istio-ext-authz-x': onPath('/d') } },
      shadow_rules_stat_prefix: 'istio_ext_authz_',
    });
    const d = evaluateRbac(f, req({ uri: '/d' }));
    assert.deepEqual(rbacDynamicMetadata(f, d), {
      istio_ext_authz_shadow_effective_policy_id: 'istio-ext-authz-x',
      istio_ext_authz_shadow_engine_result: 'denied',
      r_enforced_effective_policy_id: 'd',
      r_enforced_engine_result: 'denied',
    });
    assert.deepEqual(rbacDynamicMetadata(f, evaluateRbac(f, req({ uri: '/e' }))), { istio_ext_authz_shadow_engine_result: 'allowed', r_enforced_engine_result: 'allowed' });
  });
  test('response code details name the policy that denied, or none', () => {
    assert.equal(rbacResponseDetails({ allowed: false, matchedPolicy: 'ns[foo]-policy[deny all]-rule[0]' }), 'rbac_access_denied_matched_policy[ns[foo]-policy[deny_all]-rule[0]]');
    assert.equal(rbacResponseDetails({ allowed: false }), 'rbac_access_denied_matched_policy[none]');
  });
});

describe('per-route config', () => {
  test('replaces the filter config on its route; without rbac it checks nothing', () => {
    const pr = compileHttpRbacPerRoute('r', { '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute', rbac: { rules: { policies: { a: onPath('/a') } } } });
    assert.equal(evaluateRbac(pr, req({ uri: '/b' })).allowed, false);
    assert.deepEqual(evaluateRbac(compileHttpRbacPerRoute('r', {}), req()), { allowed: true });
  });
});

describe('network filter', () => {
  const any = { permissions: [{ destination_port: 80 }], principals: [{ authenticated: { principal_name: { safe_regex: { regex: '.*/ns/ns-1/.*' } } } }] };
  test('decides on the connection alone', () => {
    const f = compileNetworkRbac('n', { rules: { policies: { p: any } }, stat_prefix: 'tcp.' });
    const conn = { destinationIp: '10.0.0.1', destinationPort: 80, sourceIp: '10.0.0.2', peer: 'spiffe://cluster.local/ns/ns-1/sa/a' };
    assert.deepEqual(evaluateRbac(f, conn), { allowed: true, matchedPolicy: 'p' });
    assert.equal(evaluateRbac(f, { ...conn, peer: undefined }).allowed, false);
    assert.equal(f.enforcementType, 'ONE_TIME_ON_FIRST_BYTE');
  });
  test('refuses HTTP-only rules, and needs stat_prefix', () => {
    const http = { permissions: [{ or_rules: { rules: [{ header: { name: ':method', exact_match: 'GET' } }] } }], principals: [{ any: true }] };
    assert.throws(() => compileNetworkRbac('n', { rules: { policies: { p: http } }, stat_prefix: 's' }), /n\.rules\.policies\["p"\]\.permissions\[0\]\.or_rules\.rules\[0\]\.header: matches HTTP requests, but this is a network \(TCP\) RBAC filter/);
    const path = { permissions: [{ any: true }], principals: [{ url_path: { path: { exact: '/' } } }] };
    assert.throws(() => compileNetworkRbac('n', { shadow_rules: { policies: { p: path } }, stat_prefix: 's' }), /principals\[0\]\.url_path: matches HTTP requests/);
    assert.throws(() => compileNetworkRbac('n', { rules: {} }), /n\.stat_prefix: required/);
    assert.equal(compileNetworkRbac('n', { stat_prefix: 's', enforcement_type: 'CONTINUOUS', delay_deny: '1.5s' }).delayDenyMs, 1500);
  });
});

describe('reading the config', () => {
  test('snake_case and camelCase are both proto JSON', () => {
    const snake = compileHttpRbac('t', { shadow_rules: { policies: { p: { permissions: [{ not_rule: { url_path: { path: { exact: '/a' } } } }], principals: [{ not_id: { any: true } }] } } } });
    const camel = compileHttpRbac('t', { shadowRules: { policies: { p: { permissions: [{ notRule: { urlPath: { path: { exact: '/a' } } } }], principals: [{ notId: { any: true } }] } } } });
    assert.deepEqual(evaluateRbac(snake, req()), evaluateRbac(camel, req()));
    assert.throws(() => compileHttpRbac('t', { shadow_rules: {}, shadowRules: {} }), /given twice/);
  });
  test('unknown fields, matcher trees, audit loggers and other filter types are refused', () => {
    assert.throws(() => compileHttpRbac('t', { rules: {}, rulez: {} }), /t\.rulez: unknown or unsupported field/);
    assert.throws(() => compileHttpRbac('t', { matcher: {} }), /t\.matcher: RBAC matcher trees are not supported/);
    assert.throws(() => compileHttpRbac('t', { rules: { audit_logging_options: {} } }), /t\.rules\.audit_logging_options: audit loggers are not supported/);
    assert.throws(() => compileHttpRbac('t', { '@type': 'type.googleapis.com/x.Y' }), /t\.@type: expected/);
    assert.throws(() => compileRbacTypedConfig('t', { '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz' }), /not an RBAC filter/);
    assert.throws(() => compileHttpRbac('t', { rules: { policies: { p: { permissions: [{}], principals: [{ any: true }] } } } }), ConvertError);
    assert.equal(compileRbacTypedConfig('t', { '@type': RBAC_HTTP_TYPE }).kind, 'http');
  });
  test('the compiled filter is immutable', () => {
    const f = compileHttpRbac('t', { rules: { policies: { a: onPath('/a') } } });
    assert.ok(Object.isFrozen(f) && Object.isFrozen(f.rules) && Object.isFrozen(f.rules!.policies) && Object.isFrozen(f.rules!.policies[0]));
    assert.ok(Object.isFrozen(evaluateRbac(f, req({ uri: '/a' }))));
  });
});
