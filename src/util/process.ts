// Child process helpers shared by `weft up`, tests and benchmarks.
import type { ChildProcess } from 'node:child_process';

/** SIGTERM, then SIGKILL after graceMs; resolves when the process is gone. */
export function stopChild(proc: ChildProcess, graceMs = 3000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
    proc.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    proc.kill('SIGTERM');
  });
}
