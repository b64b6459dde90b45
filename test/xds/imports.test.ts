// Imports point inward (docs/architecture.md): the sidecar knows the control plane only through
// xDS, so what both sides share lives in src/xds/, which imports neither of them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from '../helpers.ts';

const SRC = path.join(ROOT, 'src');

/** Every relative import of every .ts file under src/, as [importer, imported], paths relative to src/. */
function imports(): [string, string][] {
  const out: [string, string][] = [];
  for (const rel of fs.readdirSync(SRC, { recursive: true }) as string[]) {
    if (!rel.endsWith('.ts')) continue;
    const text = fs.readFileSync(path.join(SRC, rel), 'utf8');
    for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm)) {
      out.push([rel, path.relative(SRC, path.resolve(SRC, path.dirname(rel), m[1]))]);
    }
  }
  return out;
}

const rules: { from: string; mustNotImport: string[]; why: string }[] = [
  { from: 'proxy/', mustNotImport: ['control/', 'cli/'], why: 'the sidecar knows the control plane only through xDS (shared parts go in src/xds/)' },
  { from: 'control/', mustNotImport: ['proxy/', 'cli/'], why: 'the control plane knows sidecars only through xDS' },
  { from: 'xds/', mustNotImport: ['control/', 'proxy/', 'cli/', 'api/'], why: 'src/xds/ is shared by both sides and depends on neither' },
  { from: 'api/', mustNotImport: ['control/', 'proxy/', 'cli/', 'xds/', 'util/'], why: 'src/api/ imports nothing of ours' },
];

test('imports point inward: the sidecar imports nothing from the control plane, and src/xds/ from neither', () => {
  const all = imports();
  assert.ok(all.some(([f, t]) => f.startsWith('proxy/') && t.startsWith('xds/')), 'the scan finds imports at all');
  const bad = all.flatMap(([f, t]) => rules.filter((r) => f.startsWith(r.from) && r.mustNotImport.some((p) => t.startsWith(p))).map((r) => `src/${f} imports src/${t}: ${r.why}`));
  assert.deepEqual(bad, []);
});
