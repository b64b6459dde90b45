// @peculiar/x509, ready to use: it resolves its services with tsyringe, which needs the Reflect
// metadata API loaded first, and its crypto is Node's WebCrypto. Import X.509 from here.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';

export const crypto = webcrypto as unknown as Crypto;
x509.cryptoProvider.set(crypto);

export { x509 };
