// What the CLI prints of the mesh's own data (label values a sidecar reported, tapped paths) cannot
// drive the terminal: control characters become \u escapes (review defect: a sidecar's label value
// with ESC ] 52 wrote the operator's clipboard and ESC [ 2 J cleared the screen, through weft stat).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { printable, table } from '../../src/cli/common.ts';

test('control characters in table cells and tap lines are escaped; other text, accents included, is kept', () => {
  const hostile = 'unknown/\u001b]52;c;aGVsbG8=\u0007\u001b[2J\u009b';
  assert.equal(printable(hostile), 'unknown/\\u001b]52;c;aGVsbG8=\\u0007\\u001b[2J\\u009b');
  assert.equal(printable('café /p?q=1 -> spiffe://cluster.local/ns/a/sa/b'), 'café /p?q=1 -> spiffe://cluster.local/ns/a/sa/b');
  const out = table([['EDGE', 'RPS'], [`a -> ${hostile}`, '1.0']]);
  assert.ok(!/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/.test(out), JSON.stringify(out));
  assert.match(out, /a -> unknown\/\\u001b\]52/);
});
