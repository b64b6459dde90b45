// The bench's report (bench/report.ts) where a phase failed: the run's other figures are still
// written, and the failure is a FAIL row naming the phase and why, not a report that never appears.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderReport, verdicts, type BenchResult } from '../../bench/report.ts';

const base = (): BenchResult => ({
  date: new Date('2026-12-07T12:00:00Z'),
  machine: { nproc: 2, cpu: 'test cpu', memGB: 8, kernel: '6.1', node: 'v24.0.0', tools: {}, sidecarFlags: '--max-semi-space-size=1', loadavg: 0.1, busyBefore: 0.01, env: [] },
  setup: { rate: 1000, conns: 16, maxConns: 64, warmupS: 2, fixedS: 10, repeats: 3, pacedWarmupS: 2, maxWarmupS: 2, maxS: 6 },
  durationS: 10,
});

test('a phase that failed is a FAIL row naming it and why, and the report is still written', () => {
  const r = { ...base(), failed: [{ phase: 'scale', message: 'control plane scale: N=1000 in 10 namespaces: all proxies holding the changed route (change 1): not done within 15s;\n    worker 0: 500 of 500 not there yet' }] };
  const v = verdicts(r);
  const row = v.find((x) => x.target === 'the scale phase runs to its end');
  assert.ok(row, JSON.stringify(v));
  assert.equal(row.status, 'fail');
  assert.match(row.actual, /not done within 15s; worker 0: 500 of 500 not there yet/);
  const { text } = renderReport(r, 'hand-written text', '<!-- profile:begin -->\n<!-- profile:end -->');
  assert.match(text, /\*\*Phases that failed:\*\* scale/);
  assert.match(text, /\| the scale phase runs to its end \| control plane scale: N=1000 .* \| \*\*FAIL\*\* \|/);
  assert.match(text, /hand-written text/);
});

test('a run where every phase ran says nothing of failed phases', () => {
  const { text } = renderReport(base(), 'hand-written text', '<!-- profile:begin -->\n<!-- profile:end -->');
  assert.doesNotMatch(text, /Phases that failed|runs to its end/);
});
