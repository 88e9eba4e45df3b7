// Two web workers' hubs (two HubNodes on two HTTP servers) over one log writer in a
// child process: what one worker's clients publish reaches the other's.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { signHubToken } from '../../src/hub/auth.js';
import { connectHub } from '../../src/hub/backends/socket.js';
import { resolveHubOptions } from '../../src/hub/options.js';
import type { Publication } from '../../src/hub/types.js';
import { startWriter, stopWriter } from './fixtures/writer.js';
import { RawClient, SECRET, startTestServer, TEST_HUB, type TestServer } from './harness.js';

describe('hub across two workers (socket backend)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kobold-hub-node-'));
  const socketPath = join(dir, 'hub.sock');
  let writer: Awaited<ReturnType<typeof startWriter>>;
  let workerA: TestServer;
  let workerB: TestServer;
  const clients: RawClient[] = [];
  const open = async (server: TestServer, token?: string) => {
    const client = await RawClient.open(server.ws);
    clients.push(client);
    await client.call('connect', token === undefined ? {} : { token });
    return client;
  };

  before(async () => {
    writer = await startWriter(socketPath, resolveHubOptions(TEST_HUB).namespaces);
    workerA = await startTestServer({ backend: await connectHub({ socketPath }) });
    workerB = await startTestServer({ backend: await connectHub({ socketPath }) });
  });
  after(async () => {
    for (const client of clients) client.close();
    await workerA.close();
    await workerB.close();
    await stopWriter(writer.child);
    rmSync(dir, { recursive: true, force: true });
  });

  test('a client on worker A receives, in order, what a client on worker B published', async () => {
    const reader = await open(workerA);
    await reader.call('subscribe', { channel: 'room:x' });
    const poster = await open(workerB, await signHubToken(SECRET, { sub: 'b1' }, 60));
    for (let i = 1; i <= 20; i++) void poster.call('publish', { channel: 'room:x', data: i });
    await reader.waitFor((frame) => frame.push === 'pub' && frame.data === 20);
    assert.deepEqual(reader.pubs('room:x').map((p) => p.data), Array.from({ length: 20 }, (_, i) => i + 1));
    assert.deepEqual(reader.pubs('room:x').map((p) => p.offset), Array.from({ length: 20 }, (_, i) => i + 1));
  });

  test('server-side subscribe on A sees server-side publish on B; history is shared', async () => {
    const seen: Publication[] = [];
    const stop = workerA.node.subscribe('news:srv', (publication) => seen.push(publication));
    await workerB.node.publish('news:srv', { n: 1 });
    for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    stop();
    assert.deepEqual(seen.map((p) => JSON.parse(p.data)), [{ n: 1 }]);
    const history = await workerA.node.history('news:srv');
    assert.equal(history.publications.length, 1);
  });

  test('presence across workers, de-duplicated by user; join/leave reach both', async () => {
    const token = await signHubToken(SECRET, { sub: 'u9', name: 'Una' }, 60);
    const watcher = await open(workerA);
    await watcher.call('subscribe', { channel: 'room:pres' });
    const onA = await open(workerA, token);
    const onB = await open(workerB, token);
    await onA.call('subscribe', { channel: 'room:pres' });
    await onB.call('subscribe', { channel: 'room:pres' });
    assert.deepEqual(await workerB.node.presence('room:pres'), [{ userId: 'u9', info: { name: 'Una' }, connections: 2 }]);
    assert.deepEqual(await workerA.node.presenceCounts('room:pres'), { clients: 3, users: 1 });
    onA.close();
    onB.close();
    const leave = await watcher.waitFor((frame) => frame.push === 'leave');
    assert.equal(leave.user.userId, 'u9');
    assert.equal(watcher.frames.filter((frame) => frame.push === 'join').length, 1);
  });

  test('disconnect(user) on worker B closes the user on worker A', async () => {
    const target = await open(workerA, await signHubToken(SECRET, { sub: 'kick' }, 60));
    await workerB.node.disconnect('kick', { reconnect: true });
    assert.equal(await target.waitForClose(), 3002);
  });
});
