// The names `weft get` and the admin API take for a kind: kubectl's, in any case.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveKind } from '../../src/api/kinds.ts';

test('a kind by its name, kubectl plural or short name, in any case', () => {
  const cases: [string, string | undefined][] = [
    ['ServiceEntry', 'ServiceEntry'],
    ['serviceentries', 'ServiceEntry'],
    ['se', 'ServiceEntry'],
    ['WorkloadEntry', 'WorkloadEntry'],
    ['workloadentries', 'WorkloadEntry'],
    ['WE', 'WorkloadEntry'],
    ['sidecar', 'Sidecar'],
    ['Sidecars', 'Sidecar'],
    ['pa', 'PeerAuthentication'],
    ['peerauthentications', 'PeerAuthentication'],
    ['vs', 'VirtualService'],
    ['virtualservices', 'VirtualService'],
    ['destinationrules', 'DestinationRule'],
    // The Gateway API's routes: no short names (kubectl has none), their name and plural.
    ['HTTPRoute', 'HTTPRoute'],
    ['httproute', 'HTTPRoute'],
    ['httproutes', 'HTTPRoute'],
    ['GRPCRoute', 'GRPCRoute'],
    ['grpcroute', 'GRPCRoute'],
    ['grpcroutes', 'GRPCRoute'],
    // ReferenceGrant: the Gateway API CRD's short name, its name and plural.
    ['refgrant', 'ReferenceGrant'],
    ['ReferenceGrant', 'ReferenceGrant'],
    ['referencegrants', 'ReferenceGrant'],
    // Telemetry: the CRD's short name is its own name; kubectl's plural.
    ['telemetry', 'Telemetry'],
    ['telemetries', 'Telemetry'],
    ['Telemetry', 'Telemetry'],
    ['rg', undefined],
    ['route', undefined],
    ['serviceentrys', undefined],
    ['sc', undefined],
    ['gateway', undefined],
  ];
  assert.deepEqual(cases.map(([name]) => [name, resolveKind(name)]), cases);
});
