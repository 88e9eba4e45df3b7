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
