// The admin API's token: every request that changes the mesh carries it (Authorization: Bearer),
// so that a process that can reach the admin port cannot change config by that alone. Made on
// first start, 32 random bytes, kept in the data directory as admin.token, readable by its owner
// only; the CLI reads it from there (or WEFT_ADMIN_TOKEN).
import path from 'node:path';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readOrCreateSecretFile } from '../secret-file.ts';

export const ADMIN_TOKEN_FILE = 'admin.token';

/** The data directory's admin token, made (mode 0600) if there is none. */
export function loadOrCreateAdminToken(dataDir: string): string {
  return readOrCreateSecretFile(path.join(dataDir, ADMIN_TOKEN_FILE), () => randomBytes(32).toString('base64url'));
}

/** Does an Authorization header carry this token? (A comparison that takes the same time whatever matches.) */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer ([A-Za-z0-9_-]{1,256})$/.exec(header ?? '');
  if (!m) return false;
  const a = Buffer.from(m[1]);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}
