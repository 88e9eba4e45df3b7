// The client is importable by package name in Node (package.json "exports"), as the docs say.
import assert from 'node:assert/strict';
import { test } from 'node:test';

test('kobold/client and kobold/client/msgpack resolve to the built client', async () => {
  const { HubClient } = (await import('kobold/client')) as typeof import('../../src/client/index.js');
  assert.equal(typeof HubClient, 'function');
  const client = new HubClient({ url: 'http://127.0.0.1:9/hub' });
  assert.equal(client.transport, null);
  const { messagePack } = (await import('kobold/client/msgpack')) as typeof import('../../src/client/msgpack.js');
  assert.deepEqual(messagePack.unpack(messagePack.pack({ a: [1, 'two'] })), { a: [1, 'two'] });
});
