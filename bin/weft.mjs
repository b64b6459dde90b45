// The weft CLI's entry point. It is plain JavaScript so that it can turn on Node's compile cache
// before any TypeScript loads: with a warm cache Node neither strips types again nor loads its
// type stripper, which saves about 20 MB of RSS in every sidecar (docs/performance.md) and
// makes every command start faster. The cache lives in Node's default place (os.tmpdir()) and
// is keyed by file contents, so an edited file is compiled afresh.
import module from 'node:module';

module.enableCompileCache?.();
await import('../src/cli/main.ts');
