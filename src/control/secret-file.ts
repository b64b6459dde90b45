// A secret the control plane keeps in its data directory (the admin token, the CA's
// key-encryption key): read if it is there, else made once and written readable by its owner only.
import fs from 'node:fs';

/**
 * The trimmed content of `file`; if there is no such file, `make()`'s, written there first (mode
 * 0600). Of two control planes on one directory making it at once, the first one's stands, and
 * both return it.
 */
export function readOrCreateSecretFile(file: string, make: () => string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  try {
    fs.writeFileSync(file, `${make()}\n`, { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  return fs.readFileSync(file, 'utf8').trim();
}
