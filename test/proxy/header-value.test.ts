// headerValue (http/edits.ts), which REQ() in access logs, hash keys, tracing and routing read a
// request's header through: every field of the name, joined by ",", whatever the strings are.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { headerValue } from '../../src/proxy/http/edits.ts';

/** A name as the codecs make it: a string of its own, not the literal the caller compares with. */
const wire = (s: string) => Buffer.from(s).toString('latin1');

test('headerValue: the fields of that name joined by ",", in order; names of the same length or prefixes do not match; none is undefined', () => {
  const h = [wire('x-request-id'), 'r1', wire('x-request-ix'), 'no', wire('x-request'), 'no', wire('accept'), 'a', wire('x-request-id'), 'r2', wire('x-request-id-2'), 'no'];
  assert.equal(headerValue(h, 'x-request-id'), 'r1,r2');
  assert.equal(headerValue(h, 'accept'), 'a');
  assert.equal(headerValue(h, 'x-forwarded-for'), undefined);
  assert.equal(headerValue(h, ''), undefined);
  assert.equal(headerValue([wire(''), 'empty'], ''), 'empty');
  assert.equal(headerValue([], 'accept'), undefined);
});
