import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { signHubToken } from '../../../src/hub/auth.js';
import { WebSocket } from 'ws';
import { ClientList, countWrites, RawClient, SECRET, sleep, startTestServer, type TestServer } from '../harness.js';

describe('WebSocket transport', () => {
  let server: TestServer;
  const clients = new ClientList();
  const open = (token?: string) => clients.connected(server.ws, { token });
  before(async () => (server = await startTestServer()));
  after(async () => {
    clients.closeAll();
    await server.close();
  });

  test('subscribe with history, then live publications in order; all due in one turn leave in one socket write', async () => {
    for (let i = 1; i <= 3; i++) await server.node.publish('news:a', { i });
    const client = await open();
    const reply = await client.call('subscribe', { channel: 'news:a', history: 2 });
    assert.equal(reply.result.channel, 'news:a');
    assert.equal(reply.result.position.offset, 3);
    assert.deepEqual(reply.result.publications.map((p: any) => p.data.i), [2, 3]);
    const writes = countWrites(server.serverSocketOf(client.socket));
    const before = client.messages.length;
    for (let i = 4; i <= 13; i++) void server.node.publish('news:a', { i });
    await client.waitFor((frame) => frame.push === 'pub' && frame.data.i === 13);
    assert.deepEqual(client.pubs('news:a').map((p) => p.offset), [4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    assert.equal(client.messages.length - before, 10, 'one WebSocket message per publication');
    assert.equal(writes(), 1, 'ten publications in one turn leave in one write');
    const pub = client.pubs('news:a')[0];
    assert.equal(pub.epoch, reply.result.position.epoch);
    assert.ok(pub.time > 0);
  });

  test('publications of every frame-length class (7-bit, 16-bit, 64-bit lengths) arrive intact', async () => {
    const client = await open();
    await client.call('subscribe', { channel: 'news:sizes' });
    const texts = ['x', 'y'.repeat(200), 'z'.repeat(70_000), 'é€'.repeat(40)];
    for (const text of texts) await server.node.publish('news:sizes', { text });
    await client.waitFor((frame) => frame.push === 'pub' && frame.channel === 'news:sizes' && frame.data.text === texts[3]);
    assert.deepEqual(client.pubs('news:sizes').map((p) => p.data.text), texts);
  });

  test('resume since a position gets exactly what was missed; an old epoch or a moved window answers lost', async () => {
    const client = await open();
    const first = await client.call('subscribe', { channel: 'news:b' });
    const epoch = first.result.position.epoch;
    await client.call('unsubscribe', { channel: 'news:b' });
    for (let i = 1; i <= 4; i++) await server.node.publish('news:b', i);
    const resumed = await client.call('subscribe', { channel: 'news:b', since: { offset: 2, epoch } });
    assert.equal(resumed.result.lost, false);
    assert.deepEqual(resumed.result.publications.map((p: any) => p.data), [3, 4]);
    await client.call('unsubscribe', { channel: 'news:b' });
    for (let i = 5; i <= 12; i++) await server.node.publish('news:b', i);
    const lost = await client.call('subscribe', { channel: 'news:b', since: { offset: 4, epoch } });
    assert.equal(lost.result.lost, true, 'history keeps 5, offsets 5..7 are gone');
    const otherEpoch = await client.call('subscribe', { channel: 'news:b', since: { offset: 12, epoch: 'nope' } });
    assert.equal(otherEpoch.result.lost, true);
  });

  test('bad input gets an error frame naming the problem, and the connection stays open', async () => {
    const client = clients.add(await RawClient.open(server.ws));
    const expectError = async (send: () => void, code: string, pattern: RegExp) => {
      const seen = client.frames.length;
      send();
      const frame = await client.waitFor((f) => client.frames.indexOf(f) >= seen && f.error !== undefined);
      assert.equal(frame.error.code, code, JSON.stringify(frame));
      assert.match(frame.error.message, pattern);
    };
    await expectError(() => client.sendRaw('{"id":1,"cmd":"subscribe","channel":"news:a"}'), 'KOBOLD_ERR_HUB_NOT_CONNECTED', /connect/);
    await client.call('connect');
    await expectError(() => client.sendRaw('{nope'), 'KOBOLD_ERR_HUB_INVALID_JSON', /JSON/);
    await expectError(() => client.sendRaw('[1]'), 'KOBOLD_ERR_HUB_BAD_COMMAND', /JSON object/);
    await expectError(() => client.sendRaw('{"id":5,"cmd":"explode"}'), 'KOBOLD_ERR_HUB_UNKNOWN_COMMAND', /explode/);
    await expectError(() => client.sendRaw('{"id":6,"cmd":"subscribe","channel":7}'), 'KOBOLD_ERR_HUB_BAD_COMMAND', /channel/);
    await expectError(() => client.sendRaw(JSON.stringify({ id: 7, cmd: 'ping', pad: 'x'.repeat(2000) })), 'KOBOLD_ERR_HUB_TOO_LARGE', /exceeds the limit of 1024/);
    await expectError(() => client.sendRaw('{"id":8,"cmd":"subscribe","channel":"nowhere:x"}'), 'KOBOLD_ERR_HUB_UNKNOWN_NAMESPACE', /nowhere/);
    await expectError(() => client.sendRaw('{"id":9,"cmd":"subscribe","channel":"bad channel"}'), 'KOBOLD_ERR_HUB_BAD_CHANNEL', /bad channel/);
    await expectError(() => client.sendRaw('{"id":10,"cmd":"subscribe","channel":"vip:lounge"}'), 'KOBOLD_ERR_HUB_FORBIDDEN', /subscribe to "vip:lounge"/);
    await expectError(() => client.sendRaw('{"id":11,"cmd":"publish","channel":"news:a","data":1}'), 'KOBOLD_ERR_HUB_FORBIDDEN', /publish to/);
    await expectError(() => client.sendRaw('{"id":12,"cmd":"publish","channel":"room:a","data":1}'), 'KOBOLD_ERR_HUB_FORBIDDEN', /publish to/);
    await expectError(() => client.sendRaw('{"id":14,"cmd":"publish","channel":"room:a"}'), 'KOBOLD_ERR_HUB_BAD_COMMAND', /field "data"/);
    for (const channel of ['news:1', 'news:2', 'news:3']) await client.call('subscribe', { channel });
    await expectError(() => client.sendRaw('{"id":13,"cmd":"subscribe","channel":"news:4"}'), 'KOBOLD_ERR_HUB_TOO_MANY_SUBSCRIPTIONS', /limit is 3/);
    const pong = await client.call('ping');
    assert.deepEqual(pong.result, {});
    assert.equal(client.closeCode, null);
  });

  test('flooding gets flood errors, not a disconnect', async () => {
    const client = await open();
    client.sendRaw(Array.from({ length: 60 }, (_, i) => JSON.stringify({ id: 100 + i, cmd: 'ping' })).join('\n'));
    const flood = await client.waitFor((frame) => frame.error?.code === 'KOBOLD_ERR_HUB_FLOOD');
    assert.match(flood.error.message, /20 per second/);
    assert.ok(flood.id >= 100, 'the refused command is named by its id');
    assert.equal(client.closeCode, null);
  });

  test('an invalid token gets an error and close code 3500 (do not reconnect)', async () => {
    const client = clients.add(await RawClient.open(server.ws));
    client.sendRaw('{"id":1,"cmd":"connect","token":"not-a-jwt"}');
    const reply = await client.waitFor((frame) => frame.id === 1);
    assert.equal(reply.error.code, 'KOBOLD_ERR_HUB_TOKEN_INVALID');
    assert.equal(await client.waitForClose(), 3500);
  });

  test('tokens: roles and owner rules, publisher info on publications', async () => {
    const vip = await open(await signHubToken(SECRET, { sub: '7', name: 'Vic', roles: ['vip'] }, 60));
    assert.ok((await vip.call('subscribe', { channel: 'vip:lounge' })).result);
    assert.ok((await vip.call('subscribe', { channel: 'user:7' })).result);
    assert.equal((await vip.call('subscribe', { channel: 'user:8' })).error.code, 'KOBOLD_ERR_HUB_FORBIDDEN');
    await vip.call('subscribe', { channel: 'room:talk' });
    const published = await vip.call('publish', { channel: 'room:talk', data: { text: 'hi' } });
    assert.equal(published.result.offset, 1);
    const pub = await vip.waitFor((frame) => frame.push === 'pub' && frame.channel === 'room:talk');
    assert.deepEqual(pub.data, { text: 'hi' });
    assert.equal(pub.info.userId, '7');
    assert.deepEqual(pub.info.info, { name: 'Vic' });
  });

  test('presence and join/leave across connections, de-duplicated by user', async () => {
    const token = await signHubToken(SECRET, { sub: 'p1', name: 'Pat' }, 60);
    const watcher = await open();
    await watcher.call('subscribe', { channel: 'room:p' });
    const tab1 = await open(token);
    const tab2 = await open(token);
    await tab1.call('subscribe', { channel: 'room:p' });
    await tab2.call('subscribe', { channel: 'room:p' });
    const presence = await watcher.call('presence', { channel: 'room:p' });
    assert.deepEqual(presence.result.users, [{ userId: 'p1', info: { name: 'Pat' }, connections: 2 }]);
    assert.deepEqual(presence.result.counts, { clients: 3, users: 1 });
    tab1.close();
    await sleep(50);
    assert.equal(watcher.frames.filter((f) => f.push === 'leave').length, 0, 'one tab left, the user is still here');
    tab2.close();
    const leave = await watcher.waitFor((frame) => frame.push === 'leave');
    assert.deepEqual(leave.user, { userId: 'p1', info: { name: 'Pat' } });
    assert.equal(watcher.frames.filter((f) => f.push === 'join').length, 1);
  });

  test('disconnect(user) closes every connection of that user with 3501', async () => {
    const token = await signHubToken(SECRET, { sub: 'bad' }, 60);
    const a = await open(token);
    const b = await open(token);
    const bystander = await open();
    await server.node.disconnect('bad');
    assert.equal(await a.waitForClose(), 3501);
    assert.equal(await b.waitForClose(), 3501);
    assert.deepEqual((await bystander.call('ping')).result, {});
  });
});

describe('WebSocket command order', () => {
  test('commands in one message run in order (subscribe right after connect works)', async () => {
    const server = await startTestServer();
    const client = await RawClient.open(server.ws);
    try {
      client.sendRaw('{"id":1,"cmd":"connect"}\n{"id":2,"cmd":"subscribe","channel":"news:order"}');
      const reply = await client.waitFor((frame) => frame.id === 2);
      assert.equal(reply.error, undefined, JSON.stringify(reply));
      assert.equal(reply.result.channel, 'news:order');
    } finally {
      client.close();
      await server.close();
    }
  });
});

describe('WebSocket keep-alive', () => {
  test('a connection that answers no ping is terminated; one that answers stays', async () => {
    const server = await startTestServer({ hub: { namespaces: [{ name: 'news', subscribe: 'anyone' }], limits: { webSocketPingMs: 100 } } });
    const answering = await RawClient.open(server.ws);
    const silent = new WebSocket(server.ws, { autoPong: false });
    let silentClosed = false;
    silent.on('close', () => (silentClosed = true));
    try {
      await new Promise((resolve, reject) => {
        silent.once('open', resolve);
        silent.once('error', reject);
      });
      const deadline = Date.now() + 3000;
      while (!silentClosed && Date.now() < deadline) await sleep(20);
      assert.ok(silentClosed, 'the silent connection was terminated');
      assert.equal(answering.closeCode, null, 'the answering connection is still open');
      assert.ok((await answering.call('connect')).result);
    } finally {
      silent.terminate();
      answering.close();
      await server.close();
    }
  });
});
