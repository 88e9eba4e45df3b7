import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ChatStore } from '../../../src/apps/chat/store.js';

const dir = mkdtempSync(join(tmpdir(), 'kobold-chat-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const open = (errors: unknown[] = []) => new ChatStore(join(dir, 'chat.sqlite'), { storedPerRoom: 3, persistIntervalMs: 10_000, onError: (e) => errors.push(e) });
const event = (room: string, n: number) => ({ type: 'system' as const, id: `${room}-${n}`, room, text: `m${n}`, time: 1000 + n });

test('messages are written in batches, kept per room up to the bound, and read back in order by another connection', () => {
  const writer = open();
  const reader = open();
  for (let n = 1; n <= 5; n++) writer.append(event('a', n));
  writer.append(event('b', 1));
  assert.deepEqual(reader.recent('a', 10), [], 'nothing before the batch');
  writer.flush();
  assert.deepEqual(reader.recent('a', 10).map((e) => e.id), ['a-3', 'a-4', 'a-5']);
  assert.deepEqual(reader.recent('a', 2).map((e) => e.id), ['a-4', 'a-5']);
  assert.deepEqual(reader.recent('b', 10).map((e) => e.id), ['b-1']);
  writer.append(event('a', 5));
  writer.flush();
  assert.equal(reader.recent('a', 10).length, 3, 'a repeated id is stored once');
  writer.close();
  reader.close();
});

test('sanctions end by themselves; members, rooms and users', () => {
  const store = open();
  store.setSanction('a', 'u1', 'mute', 5000);
  assert.equal(store.sanctionUntil('a', 'u1', 'mute', 4999), 5000);
  assert.equal(store.sanctionUntil('a', 'u1', 'mute', 5000), undefined);
  assert.equal(store.sanctionUntil('a', 'u1', 'ban', 0), undefined);
  assert.equal(store.clearSanction('a', 'u1', 'mute'), true);
  assert.equal(store.clearSanction('a', 'u1', 'mute'), false);
  assert.equal(store.createRoom({ name: 'p', topic: '', private: true, owner: 'u1' }), true);
  assert.equal(store.createRoom({ name: 'p', topic: 'again', private: false, owner: 'u2' }), false);
  store.addMember('p', 'u1');
  assert.deepEqual(store.privateRoomsOf('u1'), ['p']);
  assert.deepEqual(store.publicRooms(), []);
  store.saveUser({ id: 'u1', name: 'Ann', guest: false }, 1);
  store.saveUser({ id: 'u2', name: 'ann', guest: true }, 2);
  assert.equal(store.userByName('ANN')?.id, 'u2', 'the most recently seen holder of a name');
  store.close();
});

test('with a shared change counter, reads are kept until any worker writes', () => {
  let count = 0;
  const changes = { read: () => count, bump: () => void count++ };
  const file = join(dir, 'cached.sqlite');
  const options = { storedPerRoom: 3, persistIntervalMs: 10_000, onError: () => {}, changes };
  const a = new ChatStore(file, options);
  const b = new ChatStore(file, options);
  const unshared = new ChatStore(file, { storedPerRoom: 3, persistIntervalMs: 10_000, onError: () => {} });
  a.createRoom({ name: 'lobby', topic: 'hi', private: false, owner: '' });
  assert.equal(b.room('lobby')?.topic, 'hi');
  assert.equal(b.sanctionUntil('lobby', 'ann', 'mute'), undefined);
  // A write that bypasses the counter is not seen: b answers from what it kept.
  unshared.setTopic('lobby', 'behind its back');
  unshared.setSanction('lobby', 'ann', 'mute', Date.now() + 60_000);
  assert.equal(b.room('lobby')?.topic, 'hi');
  assert.equal(b.sanctionUntil('lobby', 'ann', 'mute'), undefined);
  // A write through a store with the counter reaches every worker's next read.
  const until = Date.now() + 60_000;
  a.setSanction('lobby', 'bob', 'ban', until);
  assert.equal(b.sanctionUntil('lobby', 'bob', 'ban'), until);
  assert.equal(b.room('lobby')?.topic, 'behind its back');
  assert.equal(b.isMember('lobby', 'bob'), false);
  a.addMember('lobby', 'bob');
  assert.equal(b.isMember('lobby', 'bob'), true);
  assert.equal(b.sanctionUntil('lobby', 'bob', 'ban', until + 1), undefined, 'a kept sanction lapses at its end');
  a.clearSanction('lobby', 'bob', 'ban');
  assert.equal(b.sanctionUntil('lobby', 'bob', 'ban'), undefined);
  for (const store of [a, b, unshared]) store.close();
});
