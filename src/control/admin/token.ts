// The admin API's token: every request that changes the mesh carries it (Authorization: Bearer),
// so that a process that can reach the admin port cannot change config by that alone. Made on
// first start, 32 random bytes, kept in the data directory as admin.token, readable by its owner
// only; the CLI reads it from there (or WEFT_ADMIN_TOKEN).
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes, timingSafeEqual } from 'node:crypto';

export const ADMIN_TOKEN_FILE = 'admin.token';

/** The data directory's admin token, made (mode 0600) if there is none. */
export function loadOrCreateAdminToken(dataDir: string): string {
  const file = path.join(dataDir, ADMIN_TOKEN_FILE);
  try {
    const t = fs.readFileSync(file, 'utf8').trim();
    if (t) return t;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const token = randomBytes(32).toString('base64url');
  try {
    // 'wx': another control plane on the same directory may have made one meanwhile; then its stands.
    fs.writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
    return token;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return fs.readFileSync(file, 'utf8').trim();
    throw e;
  }
}

/** Does an Authorization header carry this token? (A comparison that takes the same time whatever matches.) */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer ([A-Za-z0-9_-]{1,256})$/.exec(header ?? '');
  if (!m) return false;
  const a = Buffer.from(m[1]);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}
