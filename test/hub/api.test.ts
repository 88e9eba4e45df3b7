import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createApiHandler } from '../../src/hub/api.js';
import { MemoryBackend } from '../../src/hub/backends/memory.js';
import { HubNode } from '../../src/hub/node.js';
import { resolveHubOptions } from '../../src/hub/options.js';
import { isKoboldError } from '../../src/errors.js';

const API_KEY = 'api-key-0123456789abcdef';

describe('server HTTP API', () => {
  let server: Server;
  let node: HubNode;
  let base: string;
  const call = async (method: string, body: unknown, key: string | null = API_KEY) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (key !== null) headers.authorization = `apikey ${key}`;
    const response = await fetch(`${base}/api/${method}`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
    return { status: response.status, body: (await response.json()) as any };
  };

  before(async () => {
    const hub = resolveHubOptions({ namespaces: [{ name: 'room', presence: true }, { name: 'news' }] });
    node = new HubNode({ backend: new MemoryBackend({ namespaces: hub.namespaces }), hub });
    const handler = createApiHandler(node, { apiKey: API_KEY });
    server = createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await node.close();
    await new Promise((resolve) => server.close(resolve));
  });

  test('publish, broadcast and history', async () => {
    const published = await call('publish', { channel: 'news:a', data: { x: 1 } });
    assert.equal(published.status, 200);
    assert.equal(published.body.result.offset, 1);
    const broadcast = await call('broadcast', { channels: ['news:a', 'news:b'], data: 'all' });
    assert.equal(broadcast.body.result.positions['news:a'].offset, 2);
    assert.equal(broadcast.body.result.positions['news:b'].offset, 1);
    const history = await call('history', { channel: 'news:a', limit: 1 });
    assert.deepEqual(history.body.result.publications.map((p: any) => p.data), ['all']);
  });

  test('a broadcast with one bad channel publishes nothing', async () => {
    const bad = await call('broadcast', { channels: ['news:c', 'nowhere:x'], data: 1 });
    assert.equal(bad.status, 404);
    assert.equal(bad.body.error.code, 'KOBOLD_ERR_HUB_UNKNOWN_NAMESPACE');
    assert.equal((await node.history('news:c')).position.offset, 0);
  });

  test('presence and disconnect', async () => {
    await node.backend.addPresence('room:p', { clientId: 'c1', userId: 'u1' });
    const presence = await call('presence', { channel: 'room:p' });
    assert.deepEqual(presence.body.result, { users: [{ userId: 'u1', connections: 1 }], counts: { clients: 1, users: 1 } });
    const off = await call('presence', { channel: 'news:a' });
    assert.equal(off.body.error.code, 'KOBOLD_ERR_HUB_PRESENCE_DISABLED');
    assert.deepEqual((await call('disconnect', { user: 'u1' })).body, { result: {} });
  });

  test('a missing or wrong API key is 401; X-API-Key works too', async () => {
    assert.equal((await call('publish', { channel: 'news:a', data: 1 }, null)).status, 401);
    const wrong = await call('publish', { channel: 'news:a', data: 1 }, 'api-key-0123456789abcdeX');
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error.code, 'KOBOLD_ERR_HUB_API_KEY');
    const response = await fetch(`${base}/api/publish`, { method: 'POST', headers: { 'x-api-key': API_KEY }, body: '{"channel":"news:a","data":1}' });
    assert.equal(response.status, 200);
  });

  test('bad requests name the problem', async () => {
    const unknown = await call('explode', {});
    assert.equal(unknown.body.error.code, 'KOBOLD_ERR_HUB_UNKNOWN_COMMAND');
    const badField = await call('publish', { channel: 'news:a' });
    assert.match(badField.body.error.message, /field "data"/);
    const badJson = await call('publish', '{"channel":');
    assert.equal(badJson.status, 400);
    assert.equal(badJson.body.error.code, 'KOBOLD_ERR_HUB_INVALID_JSON');
    const badChannel = await call('publish', { channel: 'no spaces', data: 1 });
    assert.equal(badChannel.body.error.code, 'KOBOLD_ERR_HUB_BAD_CHANNEL');
    const get = await fetch(`${base}/api/publish`, { headers: { authorization: `apikey ${API_KEY}` } });
    assert.equal(get.status, 400);
  });

  test('a short API key is refused at setup', () => {
    assert.throws(() => createApiHandler(node, { apiKey: 'short' }), (error) => isKoboldError(error, 'KOBOLD_ERR_HUB_OPTIONS'));
  });
});
