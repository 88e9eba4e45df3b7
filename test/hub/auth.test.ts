import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import { isKoboldError } from '../../src/errors.js';
import { createTokenVerifier, signHubToken } from '../../src/hub/auth.js';

const secret = 'a-test-secret-that-is-long-enough-32b';
const verify = createTokenVerifier({ secret });
const b64 = (value: object | string) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

function handMade(header: object, payload: object, key = secret): string {
  const body = `${b64(header)}.${b64(payload)}`;
  return `${body}.${createHmac('sha256', key).update(body).digest('base64url')}`;
}

const invalid = (pattern: RegExp) => (error: unknown) =>
  isKoboldError(error, 'KOBOLD_ERR_HUB_TOKEN_INVALID') && error.closeCode === 3500 && pattern.test(error.message);

test('a valid token gives the user id, public info, roles, channels and expiry', async () => {
  const token = await signHubToken(secret, { sub: '42', name: 'Ann', roles: ['mod'], channels: ['room:vip'], info: { color: 'red' } }, 60);
  const principal = await verify(token);
  assert.equal(principal.userId, '42');
  assert.deepEqual(principal.info, { color: 'red', name: 'Ann' });
  assert.deepEqual(principal.roles, ['mod']);
  assert.deepEqual(principal.channels, ['room:vip']);
  assert.ok(principal.expiresAt! > Date.now());
});

test('an expired token is rejected as expired (close code 3003: get a new token, reconnect)', async () => {
  const token = handMade({ alg: 'HS256', typ: 'JWT' }, { sub: '1', exp: now() - 10 });
  await assert.rejects(verify(token), (error) => isKoboldError(error, 'KOBOLD_ERR_HUB_TOKEN_EXPIRED') && error.closeCode === 3003);
});

test('alg "none" (unsigned) is rejected', async () => {
  const token = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: '1', exp: now() + 60 })}.`;
  await assert.rejects(verify(token), invalid(/algorithm not allowed|unsigned/));
});

test('a token signed with another key is rejected', async () => {
  const token = handMade({ alg: 'HS256' }, { sub: '1', exp: now() + 60 }, 'another-secret-that-is-long-enough-32');
  await assert.rejects(verify(token), invalid(/signature does not match/));
});

test('another algorithm (HS512) is rejected', async () => {
  const body = `${b64({ alg: 'HS512' })}.${b64({ sub: '1', exp: now() + 60 })}`;
  const token = `${body}.${createHmac('sha512', secret).update(body).digest('base64url')}`;
  await assert.rejects(verify(token), invalid(/algorithm not allowed/));
});

test('an altered payload is rejected', async () => {
  const [header, , signature] = (await signHubToken(secret, { sub: '1' }, 60)).split('.');
  const token = `${header}.${b64({ sub: 'admin', exp: now() + 60 })}.${signature}`;
  await assert.rejects(verify(token), invalid(/signature does not match/));
});

test('a token without exp, without sub, or not a JWT at all is rejected, naming why', async () => {
  await assert.rejects(verify(handMade({ alg: 'HS256' }, { sub: '1' })), invalid(/exp/));
  await assert.rejects(verify(handMade({ alg: 'HS256' }, { exp: now() + 60 })), invalid(/sub/));
  await assert.rejects(verify(handMade({ alg: 'HS256' }, { sub: '1', exp: now() + 60, roles: 'admin' })), invalid(/roles/));
  await assert.rejects(verify('garbage'), invalid(/./));
  const lenient = createTokenVerifier({ secret, requireExpiry: false });
  assert.equal((await lenient(handMade({ alg: 'HS256' }, { sub: '1' }))).userId, '1');
});

test('a short secret is refused at setup', () => {
  assert.throws(() => createTokenVerifier({ secret: 'short' }), (error) => isKoboldError(error, 'KOBOLD_ERR_HUB_OPTIONS'));
});
