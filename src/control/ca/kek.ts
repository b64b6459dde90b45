// The key-encryption key that seals the CA root's private key in the store: WEFT_CA_KEK (32
// bytes, base64), else ca.kek in the control plane's data directory, made on first start (mode
// 0600). It is not in the store, so a copy of the store (or a remote one: etcd) does not give away
// the root's key.
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { readOrCreateSecretFile } from '../secret-file.ts';
import { CaError } from './ca.ts';

export const KEK_FILE = 'ca.kek';

export function loadOrCreateKek(dataDir: string, env: NodeJS.ProcessEnv = process.env): Buffer {
  if (env.WEFT_CA_KEK) {
    const k = Buffer.from(env.WEFT_CA_KEK.trim(), 'base64');
    if (k.length !== 32) throw new CaError(`WEFT_CA_KEK must be 32 bytes in base64, not ${k.length}`);
    return k;
  }
  const file = path.join(dataDir, KEK_FILE);
  const k = Buffer.from(readOrCreateSecretFile(file, () => randomBytes(32).toString('base64')), 'base64');
  if (k.length !== 32) throw new CaError(`${file} must hold 32 bytes in base64, not ${k.length}`);
  return k;
}
