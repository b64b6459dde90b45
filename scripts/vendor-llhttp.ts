// Re-vendors llhttp (the HTTP/1.1 parser Node and undici use), compiled to WebAssembly, from the
// pinned undici package: undici ships it as a base64 string in lib/llhttp/llhttp_simd-wasm.js.
// The sidecar loads the .wasm file from src/proxy/http1/llhttp/ and never imports undici's private
// files at run time. Run after changing undici's pinned version: node scripts/vendor-llhttp.ts
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const version = (require('undici/package.json') as { version: string }).version;
const wasm = require('undici/lib/llhttp/llhttp_simd-wasm.js') as Buffer;
const out = new URL('../src/proxy/http1/llhttp/llhttp_simd.wasm', import.meta.url);
fs.writeFileSync(out, wasm);
const sha = crypto.createHash('sha256').update(wasm).digest('hex');
console.log(`wrote ${out.pathname}: ${wasm.length} bytes from undici ${version}, sha256 ${sha}`);
