// The Gateway API project's own examples, run through Weft's validation of HTTPRoute, GRPCRoute
// and ReferenceGrant: every document of these kinds in examples/ (its standard examples) must be
// accepted, and every one under invalid-examples/standard/ rejected, with an error on the field the
// example is about. The experimental channel's invalid routes count where they test a
// standard-channel feature; those that test an experimental-only one are skipped, saying why.
// Other kinds in these files (Gateway, GatewayClass, TLSRoute, ...) are not Weft's: they are
// skipped and counted.
//
// This measures validation (what the CRDs accept), so it runs `inspect(obj, where, true)`: the
// fields Weft refuses because it cannot apply them yet (a ServiceImport backend, ...) are
// support.ts's business and tested in support.test.ts.
// The data lives outside the project (../shared/conformance); without it the suite is skipped.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { formatProblem, inspect } from '../../src/api/index.ts';

const ROOT = new URL('../../../shared/conformance/gateway-api/', import.meta.url);
const WEFT_KINDS = new Set(['HTTPRoute', 'GRPCRoute', 'ReferenceGrant']);

/**
 * Each invalid document, by "file#document", and the field it is invalid at, as Kubernetes places the
 * error (a CEL rule's error sits on the object that holds the rule). The files say why only by
 * their names; an error on that field or beneath it counts.
 */
const INVALID_AT: ReadonlyMap<string, string> = new Map([
  ['invalid-examples/standard/httproute/duplicate-header-match.yaml#1', 'spec.rules[0].matches[0].headers[1]'],
  ['invalid-examples/standard/httproute/duplicate-query-match.yaml#1', 'spec.rules[0].matches[0].queryParams[1]'],
  // CEL "Must have port for Service reference", on the backendRef.
  ['invalid-examples/standard/httproute/httproute-portless-backend.yaml#1', 'spec.rules[0].backendRefs[0]'],
  ['invalid-examples/standard/httproute/httproute-portless-service.yaml#1', 'spec.rules[0].backendRefs[0]'],
  ['invalid-examples/standard/httproute/invalid-backend-group.yaml#1', 'spec.rules[0].backendRefs[0].group'],
  ['invalid-examples/standard/httproute/invalid-backend-kind.yaml#1', 'spec.rules[0].backendRefs[0].kind'],
  ['invalid-examples/standard/httproute/invalid-backend-port.yaml#1', 'spec.rules[0].backendRefs[0].port'],
  // `remove` is a list-type set: "foo" twice.
  ['invalid-examples/standard/httproute/invalid-filter-duplicate-header.yaml#1', 'spec.rules[0].filters[0].requestHeaderModifier.remove[1]'],
  // CEL "RequestHeaderModifier filter cannot be repeated", on the list.
  ['invalid-examples/standard/httproute/invalid-filter-duplicate.yaml#1', 'spec.rules[0].filters'],
  // CEL "filter.requestHeaderModifier must be specified for RequestHeaderModifier filter.type", on the filter.
  ['invalid-examples/standard/httproute/invalid-filter-empty.yaml#1', 'spec.rules[0].filters[0]'],
  // CEL "filter.requestRedirect must be nil if the filter.type is not RequestRedirect" (and the above).
  ['invalid-examples/standard/httproute/invalid-filter-wrong-field.yaml#1', 'spec.rules[0].filters[0]'],
  ['invalid-examples/standard/httproute/invalid-header-name.yaml#1', 'spec.rules[0].matches[0].headers[0].name'],
  ['invalid-examples/standard/httproute/invalid-hostname.yaml#1', 'spec.hostnames[0]'],
  ['invalid-examples/standard/httproute/invalid-httpredirect-hostname.yaml#1', 'spec.rules[0].filters[0].requestRedirect.hostname'],
  ['invalid-examples/standard/httproute/invalid-method.yaml#1', 'spec.rules[0].matches[0].method'],
  // CEL "must only contain valid characters ...", on the path match.
  ['invalid-examples/standard/httproute/invalid-path-alphanum-specialchars-mix.yaml#1', 'spec.rules[0].matches[0].path'],
  ['invalid-examples/standard/httproute/invalid-path-specialchars.yaml#1', 'spec.rules[0].matches[0].path'],
  // CEL "RequestRedirect filter must not be used together with backendRefs", on the rule.
  ['invalid-examples/standard/httproute/invalid-request-redirect-with-backendref.yaml#1', 'spec.rules[0]'],
  // Header modifiers are standard; the pattern on their values (no CR, LF) is the experimental CRD's, and Weft's.
  ['invalid-examples/experimental/httproute/invalid-header-value.yaml#1', 'spec.rules[0].filters[0].responseHeaderModifier.add[0].value'],
  // ReferenceGrant: from, to and a from entry's namespace are required.
  ['invalid-examples/standard/referencegrant/missing-from.yaml#1', 'spec.from'],
  ['invalid-examples/standard/referencegrant/missing-ns.yaml#1', 'spec.from[0].namespace'],
  ['invalid-examples/standard/referencegrant/missing-to.yaml#1', 'spec.to'],
]);

const EXTERNAL_AUTH = 'tests the ExternalAuth filter, an experimental-channel feature: Weft reads the standard channel, where type ExternalAuth is refused as an unknown filter type';

/** Invalid documents of the experimental channel that test a feature the standard channel does not have. */
const EXPERIMENTAL_ONLY: ReadonlyMap<string, string> = new Map([
  ['invalid-examples/experimental/httproute/invalid-filter-externalauth-bad-http-path.yaml#1', EXTERNAL_AUTH],
  ['invalid-examples/experimental/httproute/invalid-filter-externalauth-empty.yaml#1', EXTERNAL_AUTH],
  ['invalid-examples/experimental/httproute/invalid-filter-externalauth-no-protocol.yaml#1', EXTERNAL_AUTH],
]);

interface Doc {
  readonly id: string; // "examples/basic-http.yaml#3"
  readonly kind: string;
  readonly value: unknown;
}

/** The .yaml files below `dir`, as paths relative to ROOT, sorted. */
function yamlFiles(dir: string): string[] {
  return readdirSync(new URL(`${dir}/`, ROOT), { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? yamlFiles(`${dir}/${e.name}`) : e.name.endsWith('.yaml') ? [`${dir}/${e.name}`] : []))
    .sort();
}

function documentsIn(dir: string): Doc[] {
  return yamlFiles(dir).flatMap((file) => {
    const docs = parseAllDocuments(readFileSync(new URL(file, ROOT), 'utf8'), { merge: true });
    assert.ok(Array.isArray(docs), `${file}: could not read`);
    return docs.flatMap((doc, i): Doc[] => {
      assert.deepEqual(doc.errors, [], `${file}#${i + 1}: YAML errors`);
      const value: unknown = doc.toJS();
      if (value === null || value === undefined) return [];
      const kind = typeof value === 'object' && 'kind' in value ? String(value.kind) : '?';
      return [{ id: `${file}#${i + 1}`, kind, value }];
    });
  });
}

/** "Gateway 12, GatewayClass 5, ..." */
function countKinds(docs: Doc[]): string {
  const counts = new Map<string, number>();
  for (const d of docs) counts.set(d.kind, (counts.get(d.kind) ?? 0) + 1);
  return [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `${k} ${n}`).join(', ');
}

const problemsOf = (d: Doc) => inspect(d.value, d.id, true).problems;

function assertAcceptedDoc(d: Doc): void {
  assert.deepEqual(problemsOf(d).map(formatProblem), [], 'a valid example was rejected');
}

function assertRejectedAt(d: Doc, at: string): void {
  const problems = problemsOf(d);
  assert.ok(problems.length > 0, `an invalid example was accepted (it is invalid at ${at})`);
  const concerns = (path: string) => path === at || path.startsWith(`${at}.`) || path.startsWith(`${at}[`);
  assert.ok(problems.some((p) => concerns(p.path)), `expected an error on ${at} (or beneath it), got:\n${problems.map(formatProblem).join('\n')}`);
}

if (!existsSync(fileURLToPath(ROOT))) {
  test('Gateway API conformance data', (t) => {
    t.skip(`conformance data absent: ${fileURLToPath(ROOT)} not found (it is present in CI)`);
  });
} else {
  const examples = documentsIn('examples');
  const invalid = documentsIn('invalid-examples');
  const validDocs = examples.filter((d) => WEFT_KINDS.has(d.kind));
  const invalidDocs = invalid.filter((d) => WEFT_KINDS.has(d.kind));

  describe('Gateway API conformance: examples/ (every HTTPRoute, GRPCRoute and ReferenceGrant accepted)', () => {
    test('other kinds are not Weft kinds: skipped', (t) => {
      t.diagnostic(`${validDocs.length} documents (${countKinds(validDocs)}); skipped ${examples.length - validDocs.length} documents of other kinds: ${countKinds(examples.filter((d) => !WEFT_KINDS.has(d.kind)))}`);
      for (const kind of WEFT_KINDS) assert.ok(validDocs.some((d) => d.kind === kind), `no ${kind} found: has the data moved?`);
    });
    for (const d of validDocs) test(`${d.id} ${d.kind}`, () => assertAcceptedDoc(d));
  });

  describe('Gateway API conformance: invalid-examples/ (every HTTPRoute, GRPCRoute and ReferenceGrant rejected, on its field)', () => {
    test('other kinds are not Weft kinds: skipped', (t) => {
      t.diagnostic(`${invalidDocs.length} documents (${countKinds(invalidDocs)}); skipped ${invalid.length - invalidDocs.length} documents of other kinds: ${countKinds(invalid.filter((d) => !WEFT_KINDS.has(d.kind)))}`);
      assert.ok(invalidDocs.some((d) => d.id.startsWith('invalid-examples/standard/httproute/')), 'no standard invalid route found: has the data moved?');
      assert.ok(invalidDocs.some((d) => d.id.startsWith('invalid-examples/standard/referencegrant/')), 'no standard invalid ReferenceGrant found: has the data moved?');
    });
    for (const d of invalidDocs) {
      const experimentalOnly = EXPERIMENTAL_ONLY.get(d.id);
      test(`${d.id} ${d.kind}`, experimentalOnly ? { skip: experimentalOnly } : {}, () => {
        const at = INVALID_AT.get(d.id);
        assert.ok(at, `${d.id}: add the field it is invalid at to INVALID_AT (or, for an experimental-only feature, a reason to EXPERIMENTAL_ONLY)`);
        assertRejectedAt(d, at);
      });
    }
  });
}
