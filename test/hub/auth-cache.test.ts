// The verified-token cache of createTokenVerifier: a token that passed is answered from the
// cache until it expires, by its exact text; failures are never kept; at most 1000 tokens.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createTokenVerifier, signHubToken } from '../../src/hub/auth.js';

const SECRET = 'a-test-secret-of-at-least-32-bytes!!';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('a verified token gives the same principal again; another token its own', async () => {
  const verify = createTokenVerifier({ secret: SECRET });
  const one = await signHubToken(SECRET, { sub: 'u1', roles: ['a'] }, 60);
  const two = await signHubToken(SECRET, { sub: 'u2' }, 60);
  const first = await verify(one);
  assert.equal(await verify(one), first);
  const other = await verify(two);
  assert.equal(other.userId, 'u2');
  assert.deepEqual(other.roles, []);
  assert.equal((await verify(one)).userId, 'u1');
});

test('a kept token is refused once it expires', async () => {
  const verify = createTokenVerifier({ secret: SECRET });
  // `exp` is in whole seconds: 2 s from now leaves at least 1 s before it expires.
  const token = await signHubToken(SECRET, { sub: 'u1' }, 2);
  const principal = await verify(token);
  assert.equal(await verify(token), principal);
  await sleep(Math.max(0, principal.expiresAt! - Date.now()) + 50);
  await assert.rejects(verify(token), { code: 'KOBOLD_ERR_HUB_TOKEN_EXPIRED' });
});

test('failures are not kept, and an altered token is refused after the real one passed', async () => {
  const verify = createTokenVerifier({ secret: SECRET });
  const token = await signHubToken(SECRET, { sub: 'u1' }, 60);
  await verify(token);
  for (let i = 0; i < 2; i++) await assert.rejects(verify(`${token}x`), { code: 'KOBOLD_ERR_HUB_TOKEN_INVALID' });
  const wrongKey = await signHubToken(`${SECRET}-other`, { sub: 'u1' }, 60);
  for (let i = 0; i < 2; i++) await assert.rejects(verify(wrongKey), /signature does not match/);
});

test('at most 1000 tokens are kept, the oldest going first', async () => {
  const verify = createTokenVerifier({ secret: SECRET });
  const tokens = await Promise.all(Array.from({ length: 1001 }, (_, i) => signHubToken(SECRET, { sub: `u${i}` }, 60)));
  const principals = [];
  for (const token of tokens) principals.push(await verify(token));
  assert.equal(await verify(tokens[1000]), principals[1000]);
  assert.equal(await verify(tokens[1]), principals[1]);
  const again = await verify(tokens[0]);
  assert.notEqual(again, principals[0]);
  assert.equal(again.userId, 'u0');
});
