// The processes a benchmark starts: launched with their stderr's tail kept for error messages,
// tracked so that every one is killed when the bench exits, however it exits.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { stopChild } from '../src/util/process.ts';

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

export interface Proc {
  label: string;
  proc: ChildProcess;
  stderrTail: string[];
}

/** Every process launched and not yet exited. */
export const running = new Set<Proc>();
process.on('exit', () => {
  for (const p of running) p.proc.kill('SIGKILL');
});

export function launch(label: string, cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): Proc {
  const proc = spawn(cmd, args, { cwd: ROOT, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const p: Proc = { label, proc, stderrTail: [] };
  running.add(p);
  readline.createInterface({ input: proc.stderr! }).on('line', (line) => {
    p.stderrTail.push(line);
    if (p.stderrTail.length > 30) p.stderrTail.shift();
  });
  proc.on('error', (e) => p.stderrTail.push(`spawn error: ${e.message}`));
  proc.on('exit', () => running.delete(p));
  return p;
}

/** SIGTERM, then SIGKILL after graceMs. */
export function stop(p: Proc, graceMs = 3000): Promise<void> {
  return stopChild(p.proc, graceMs);
}
