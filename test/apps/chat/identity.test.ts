import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chatConfigSchema } from '../../../src/apps/chat/config.js';
import { Identity } from '../../../src/apps/chat/identity.js';
import type { ChatStore } from '../../../src/apps/chat/store.js';
import { signHubToken } from '../../../src/hub/auth.js';

const SECRET = 'chat-identity-test-secret-0123456789-abc';

test('a verified token is remembered until it expires, then refused as expired', async () => {
  const identity = new Identity(chatConfigSchema.parse({}), {} as ChatStore, SECRET);
  // `exp` is in whole seconds: 2 s from now leaves at least 1 s before it expires.
  const token = await signHubToken(SECRET, { sub: 'guest-ann', name: 'ann', roles: [], channels: [] }, 2);
  const expiresAt = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).exp * 1000;
  assert.deepEqual(await identity.authenticate(token), { id: 'guest-ann', name: 'ann', roles: [], guest: true });
  assert.equal(await identity.authenticate(token), await identity.authenticate(token), 'the second call answers from memory');
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiresAt - Date.now()) + 20));
  await assert.rejects(identity.authenticate(token), { code: 'KOBOLD_ERR_HUB_TOKEN_EXPIRED' });
});

test('only the exact token that passed is remembered: an altered one is checked and refused', async () => {
  const identity = new Identity(chatConfigSchema.parse({}), {} as ChatStore, SECRET);
  const token = await signHubToken(SECRET, { sub: 'guest-ann', name: 'ann', roles: [], channels: [] }, 600);
  await identity.authenticate(token);
  const [header, , signature] = token.split('.');
  const forged = [header, Buffer.from(JSON.stringify({ sub: 'admin', roles: ['admin'], exp: 9e9 })).toString('base64url'), signature].join('.');
  await assert.rejects(identity.authenticate(forged), { code: 'KOBOLD_ERR_HUB_TOKEN_INVALID' });
  await assert.rejects(identity.authenticate(token + 'x'), { code: 'KOBOLD_ERR_HUB_TOKEN_INVALID' });
});
