// The WebSocket transport in MessagePack (subprotocol kobold.msgpack), end to end against a
// real server: every frame both ways is binary and holds the JSON protocol's message.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pack } from 'msgpackr';
import { WebSocket } from 'ws';
import { signHubToken } from '../../../src/hub/auth.js';
import { ClientList, countWrites, RawClient, SECRET, sleep, startTestServer, type TestServer } from '../harness.js';

describe('WebSocket transport in MessagePack', () => {
  let server: TestServer;
  const clients = new ClientList();
  const open = (token?: string) => clients.connected(server.ws, { subprotocol: 'kobold.msgpack', token });
  before(async () => (server = await startTestServer()));
  after(async () => {
    clients.closeAll();
    await server.close();
  });

  test('the server confirms the subprotocol; history and live publications arrive as native values, one binary message each, in one write', async () => {
    for (let i = 1; i <= 3; i++) await server.node.publish('news:a', { i, at: [i, 'x'], half: i / 2 });
    const client = await open();
    assert.equal(client.socket.protocol, 'kobold.msgpack');
    const reply = await client.call('subscribe', { channel: 'news:a', history: 2 });
    assert.equal(reply.result.channel, 'news:a');
    assert.equal(reply.result.position.offset, 3);
    assert.deepEqual(reply.result.publications.map((p: any) => p.data), [
      { i: 2, at: [2, 'x'], half: 1 },
      { i: 3, at: [3, 'x'], half: 1.5 },
    ]);
    const writes = countWrites(server.serverSocketOf(client.socket));
    const before = client.frames.length;
    for (let i = 4; i <= 13; i++) void server.node.publish('news:a', { i });
    await client.waitFor((frame) => frame.push === 'pub' && frame.data.i === 13);
    assert.deepEqual(client.pubs('news:a').map((p) => p.offset), [4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    assert.equal(client.frames.length - before, 10, 'one WebSocket message per publication');
    assert.equal(writes(), 1, 'ten publications in one turn leave in one write');
    const pub = client.pubs('news:a')[0];
    assert.deepEqual(Object.keys(pub), ['push', 'channel', 'offset', 'epoch', 'time', 'data']);
    assert.equal(pub.epoch, reply.result.position.epoch);
    assert.ok(pub.time > 0);
    assert.ok(client.binary.every(Boolean), 'every message from the server is binary');
  });

  test('a JSON and a MessagePack subscriber of one channel each get the publication in their own format', async () => {
    const packed = await open();
    const json = clients.add(await RawClient.open(server.ws));
    await json.call('connect');
    await packed.call('subscribe', { channel: 'news:both' });
    await json.call('subscribe', { channel: 'news:both' });
    await server.node.publish('news:both', { text: 'é€', list: [1, null] });
    const viaPack = await packed.waitFor((frame) => frame.push === 'pub' && frame.channel === 'news:both');
    const viaJson = await json.waitFor((frame) => frame.push === 'pub' && frame.channel === 'news:both');
    assert.deepEqual(viaPack, viaJson);
    assert.deepEqual(viaPack.data, { text: 'é€', list: [1, null] });
  });

  test('publish, history, presence with join and leave, publisher info', async () => {
    const token = await signHubToken(SECRET, { sub: 'm1', name: 'Mo' }, 60);
    const watcher = await open();
    await watcher.call('subscribe', { channel: 'room:m' });
    const member = await open(token);
    await member.call('subscribe', { channel: 'room:m' });
    const join = await watcher.waitFor((frame) => frame.push === 'join');
    assert.deepEqual(join.user, { userId: 'm1', info: { name: 'Mo' } });
    const published = await member.call('publish', { channel: 'room:m', data: { text: 'hi', n: 2 ** 40, f: 0.25, flags: [true, false, null] } });
    assert.deepEqual(Object.keys(published.result), ['offset', 'epoch']);
    assert.equal(published.result.offset, 1);
    const pub = await watcher.waitFor((frame) => frame.push === 'pub' && frame.channel === 'room:m');
    assert.deepEqual(pub.data, { text: 'hi', n: 2 ** 40, f: 0.25, flags: [true, false, null] });
    assert.equal(pub.info.userId, 'm1');
    assert.deepEqual(pub.info.info, { name: 'Mo' });
    const history = await watcher.call('history', { channel: 'room:m', limit: 5 });
    assert.equal(history.result.lost, false);
    assert.deepEqual(history.result.publications.map((p: any) => p.data.text), ['hi']);
    const presence = await watcher.call('presence', { channel: 'room:m' });
    assert.deepEqual(presence.result.users, [{ userId: 'm1', info: { name: 'Mo' }, connections: 1 }]);
    assert.deepEqual(presence.result.counts, { clients: 2, users: 1 });
    member.close();
    const leave = await watcher.waitFor((frame) => frame.push === 'leave');
    assert.deepEqual(leave.user, { userId: 'm1', info: { name: 'Mo' } });
  });

  test('bad input gets a MessagePack error frame naming the problem, and the connection stays open', async () => {
    const client = clients.add(await RawClient.open(server.ws, 'kobold.msgpack'));
    const expectError = async (send: () => void, code: string, pattern: RegExp, id?: number) => {
      const seen = client.frames.length;
      send();
      const frame = await client.waitFor((f) => client.frames.indexOf(f) >= seen && f.error !== undefined);
      assert.equal(frame.error.code, code, JSON.stringify(frame));
      assert.match(frame.error.message, pattern);
      assert.equal(frame.id, id);
    };
    await expectError(() => client.send({ id: 1, cmd: 'subscribe', channel: 'news:a' }), 'KOBOLD_ERR_HUB_NOT_CONNECTED', /connect/, 1);
    await client.call('connect');
    await expectError(() => client.socket.send(Buffer.from([0x92, 0x01])), 'KOBOLD_ERR_HUB_BAD_COMMAND', /not valid MessagePack/);
    await expectError(() => client.socket.send(Buffer.from([0xc1, 0xff, 0x00])), 'KOBOLD_ERR_HUB_BAD_COMMAND', /MessagePack/);
    await expectError(() => client.socket.send('{"id":2,"cmd":"ping"}'), 'KOBOLD_ERR_HUB_BAD_COMMAND', /text messages are not read on a kobold\.msgpack connection/);
    await expectError(() => client.send([1]), 'KOBOLD_ERR_HUB_BAD_COMMAND', /JSON object/);
    await expectError(() => client.send({ id: 3, cmd: 'explode' }), 'KOBOLD_ERR_HUB_UNKNOWN_COMMAND', /explode/, 3);
    await expectError(() => client.send({ id: 4, cmd: 'subscribe', channel: 7 }), 'KOBOLD_ERR_HUB_BAD_COMMAND', /field "channel"/, 4);
    await expectError(() => client.send({ id: 5, cmd: 'publish', channel: 'room:a', data: { at: new Date(0) } }), 'KOBOLD_ERR_HUB_BAD_COMMAND', /field "data\.at": a Date/, 5);
    await expectError(() => client.send({ id: 6, cmd: 'ping', pad: 'x'.repeat(2000) }), 'KOBOLD_ERR_HUB_TOO_LARGE', /exceeds the limit of 1024/);
    await expectError(() => client.send({ id: 7, cmd: 'subscribe', channel: 'vip:lounge' }), 'KOBOLD_ERR_HUB_FORBIDDEN', /subscribe to "vip:lounge"/, 7);
    assert.deepEqual((await client.call('ping')).result, {});
    assert.ok(client.binary.every(Boolean), 'errors come as MessagePack too');
    assert.equal(client.closeCode, null);
  });

  test('an invalid token gets an error and close code 3500', async () => {
    const client = clients.add(await RawClient.open(server.ws, 'kobold.msgpack'));
    client.send({ id: 1, cmd: 'connect', token: 'not-a-jwt' });
    const reply = await client.waitFor((frame) => frame.id === 1);
    assert.equal(reply.error.code, 'KOBOLD_ERR_HUB_TOKEN_INVALID');
    for (let i = 0; i < 200 && client.closeCode === null; i++) await sleep(10);
    assert.equal(client.closeCode, 3500);
  });

  test('a JSON connection gets an error for a binary message, naming the subprotocol', async () => {
    const client = clients.add(await RawClient.open(server.ws));
    assert.equal(client.socket.protocol, '');
    await client.call('connect');
    client.socket.send(pack({ id: 1, cmd: 'ping' }));
    const error = await client.waitFor((frame) => frame.error !== undefined);
    assert.equal(error.error.code, 'KOBOLD_ERR_HUB_BAD_COMMAND');
    assert.match(error.error.message, /binary messages are read only on a connection that chose the kobold\.msgpack subprotocol/);
    assert.deepEqual((await client.call('ping')).result, {});
  });

  test('a subprotocol the hub does not speak is not confirmed, so the client refuses the handshake', async () => {
    const socket = new WebSocket(server.ws, 'kobold.protobuf');
    const failure = await new Promise<Error>((resolve, reject) => {
      socket.once('open', () => reject(new Error('opened')));
      socket.once('error', resolve);
    });
    assert.match(failure.message, /no subprotocol/i);
    socket.terminate();
  });
});
