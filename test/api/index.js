// `node --test test/api/` hands this folder to Node as one test file, and Node loads a folder
// through its index.js: Node does not look inside a folder named on the command line for test
// files. So load every *.test.ts here. (`node --test 'test/**/*.test.ts'` runs them directly.)
import { readdirSync } from 'node:fs';

const here = new URL('./', import.meta.url);
for (const file of readdirSync(here).filter((f) => f.endsWith('.test.ts')).sort()) {
  await import(new URL(file, here).href);
}
