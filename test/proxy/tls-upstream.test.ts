// The reasons a failed upstream handshake is reported with (errors.ts puts them in the 503): each
// OpenSSL verification code in plain words; an expired certificate is not "another CA's".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { handshakeFailure } from '../../src/proxy/tls/upstream.ts';

const failure = (code: string, message = code) => handshakeFailure(Object.assign(new Error(message), { code }));

test('expired and not-yet-valid server certificates say so; an unknown CA says it does not chain to the mesh roots', () => {
  assert.deepEqual(failure('CERT_HAS_EXPIRED'), { why: "the server's certificate has expired (CERT_HAS_EXPIRED)", stat: 'expired_server_certificate' });
  assert.equal(failure('CERT_NOT_YET_VALID').stat, 'server_certificate_not_yet_valid');
  assert.match(failure('SELF_SIGNED_CERT_IN_CHAIN').why, /does not chain to the mesh roots/);
  assert.match(failure('UNABLE_TO_VERIFY_LEAF_SIGNATURE').why, /does not chain to the mesh roots/);
  assert.equal(failure('ERR_TLS_SAN_MISMATCH', 'certificate for x is not one of y').why, 'certificate for x is not one of y');
});
