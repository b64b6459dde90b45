// bench/functions.ts reads callgrind's dumps (--dump-instr=yes) and names V8's generated code by
// node's perf map: a function's own instructions, never the inclusive cost of its calls.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PerfMap, callersOf, functionsOf } from '../../bench/functions.ts';

// A dump as callgrind writes one: compressed names (defined on first use, a cfn= line may define
// one first), positions absolute (0x...), relative (+n, -n) or repeated (*), and after calls= the
// call's inclusive cost, which is not the caller's own.
const DUMP = `# callgrind format
version: 1
pid: 4242
positions: instr line
events: Ir

ob=(1) /usr/bin/node
fl=(1) ???
fn=(1) v8::internal::Heap::Scavenge() [/usr/bin/node]
0x1000 0 10
+4 0 5
cfn=(2) memcpy
calls=3 0x2000 0
* 0 900
fn=(2)
0x2000 0 7
fn=(3) 0x00000000000a0010
0xa0010 0 20
+6 0 30
-2 0 1
cfn=(6) Builtins_StringEqual [/usr/bin/node]
calls=2 0x3000 0
+2 0 300
fn=(6)
0x3000 0 250
fn=(4) 0x00000000000b0000
0xb0004 0 40
fn=(5) 0x00000000000c0000
0xc0000 0 8
`;

test('self instructions per function: native names as callgrind has them, generated code named by the perf map, calls not counted in the caller', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-functions-test-'));
  try {
    const file = path.join(dir, 'callgrind.weft.1');
    fs.writeFileSync(file, DUMP);
    // Two entries at 0xa0000: the later one (code moved there since) names it.
    const map = new PerfMap(["a0000 40 JS:*'old file:///tmp/x/src/proxy/a.ts:1:1", "a0000 40 JS:*'writeLine :4:26", 'b0000 10 JS:*\'traceRequest file:///tmp/wt/src/proxy/http/trace-context.ts:58:29', ''].join('\n'));
    const f = functionsOf(file, map);
    assert.deepEqual(Object.fromEntries(f), {
      'v8::internal::Heap::Scavenge()': 15,
      'memcpy': 7,
      "JS:*'writeLine :4:26": 51,
      "JS:*'traceRequest src/proxy/http/trace-context.ts:58:29": 40,
      '(unnamed generated code)': 8,
      'Builtins_StringEqual': 250,
    });
    // Who calls what: the inclusive cost of the calls, by caller (generated code by the call's address), for names that start with a target.
    const callers = callersOf(file, map, new Set(['memcpy', 'Builtins_String', 'Builtins_Absent']));
    assert.deepEqual(Object.fromEntries([...callers].map(([t, by]) => [t, Object.fromEntries(by)])), {
      memcpy: { 'v8::internal::Heap::Scavenge()': 900 },
      Builtins_String: { "JS:*'writeLine :4:26": 300 },
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
