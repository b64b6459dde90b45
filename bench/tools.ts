// The bench's outside tools (load generators, haproxy): found on PATH, or installed with apt-get
// when missing (as root; a fresh machine has none of them).
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BenchError } from './proc.ts';

/** Command -> the Debian package that has it. */
export const PACKAGES = { haproxy: 'haproxy', hey: 'hey', wrk: 'wrk', h2load: 'nghttp2-client', valgrind: 'valgrind' } as const;
export type Tool = keyof typeof PACKAGES;

const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

export function which(cmd: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    if (!dir) continue;
    const f = path.join(dir, cmd);
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return f;
    } catch {}
  }
  return undefined;
}

function aptInstall(pkgs: string[]): boolean {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  return spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { stdio: 'inherit', env }).status === 0;
}

/** The paths of the tools asked for, installing the missing ones with apt-get. */
export function ensureTools<T extends Tool>(wanted: T[]): Record<T, string> {
  let missing = wanted.filter((t) => !which(t));
  if (missing.length) {
    const pkgs = [...new Set(missing.map((t) => PACKAGES[t]))];
    if (process.getuid?.() !== 0) throw new BenchError(`${missing.join(' and ')} not installed, and the bench is not root so it cannot install them; run: sudo apt-get install -y ${pkgs.join(' ')}`);
    log(`installing ${pkgs.join(' ')} with apt-get`);
    if (!aptInstall(pkgs)) {
      log('apt-get install failed; running apt-get update and trying again');
      spawnSync('apt-get', ['update'], { stdio: 'inherit' });
      aptInstall(pkgs);
    }
    missing = wanted.filter((t) => !which(t));
    if (missing.length) throw new BenchError(`could not install ${missing.join(' and ')} with apt-get (see its output above)`);
  }
  return Object.fromEntries(wanted.map((t) => [t, which(t)!])) as Record<T, string>;
}

/** The installed version of a Debian package, or "unknown". */
export function packageVersion(pkg: string): string {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Version}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout ? r.stdout.trim() : 'unknown';
}
