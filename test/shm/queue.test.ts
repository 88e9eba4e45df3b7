import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { isKoboldError } from '../../src/errors.js';
import { SharedQueue } from '../../src/shm/queue.js';
import { requireNative } from '../../src/shm/segment.js';
import { killFixtures, startFixture, uniqueName } from './helpers.js';

after(killFixtures);

function withQueue(capacity = 16, maxMessageBytes = 64): SharedQueue {
  const name = uniqueName('queue');
  after(() => SharedQueue.unlink(name));
  return SharedQueue.create(name, { capacity, maxMessageBytes });
}

function texts(queue: SharedQueue, type: number): string[] {
  const out: string[] = [];
  for (let message = queue.tryReceive(type); message !== undefined; message = queue.tryReceive(type)) out.push(`${message.type}:${message.payload}`);
  return out;
}

test('receive by type: 0 takes the oldest, N the oldest of type N, -N the lowest type <= N', () => {
  const queue = withQueue();
  for (const [type, text] of [[5, 'a'], [2, 'b'], [9, 'c'], [2, 'd'], [1, 'e'], [5, 'f']] as const) queue.trySend(type, text);
  assert.equal(queue.size, 6);
  assert.deepEqual(texts(queue, 2), ['2:b', '2:d']);
  assert.equal(queue.tryReceive(3), undefined);
  assert.deepEqual(`${queue.tryReceive(-6)?.payload}`, 'e', 'lowest type <= 6 is 1');
  assert.deepEqual(`${queue.tryReceive(-6)?.payload}`, 'a', 'then the oldest of type 5');
  assert.equal(queue.tryReceive(-4), undefined);
  assert.deepEqual(texts(queue, 0), ['9:c', '5:f']);
  assert.equal(queue.size, 0);
});

test('a full queue throws on trySend, and send waits for room', async () => {
  const queue = withQueue(2);
  queue.trySend(1, 'x');
  queue.trySend(1, new Uint8Array([1, 2, 3]));
  assert.throws(() => queue.trySend(1, 'y'), (error) => isKoboldError(error, 'KOBOLD_ERR_SHM_QUEUE_FULL'));
  await assert.rejects(queue.send(1, 'y', { timeoutMs: 30 }), (error) => isKoboldError(error, 'KOBOLD_ERR_SHM_QUEUE_FULL'));
  const sending = queue.send(4, 'waited', { timeoutMs: 5000 });
  setTimeout(() => queue.tryReceive(), 20);
  await sending;
  assert.deepEqual(texts(queue, 0), ['1:\u0001\u0002\u0003', '4:waited']);
});

test('bad types and oversize payloads are refused', () => {
  const queue = withQueue(4, 8);
  assert.throws(() => queue.trySend(0, 'x'), (error) => isKoboldError(error, 'KOBOLD_ERR_SHM_OPTION'));
  assert.throws(() => queue.trySend(1.5, 'x'), (error) => isKoboldError(error, 'KOBOLD_ERR_SHM_OPTION'));
  assert.throws(() => queue.trySend(1, '123456789'), (error) => isKoboldError(error, 'KOBOLD_ERR_SHM_TOO_LARGE'));
  assert.equal(queue.size, 0);
});

test('receive waits across processes, returns undefined on timeout and on abort', async () => {
  const queue = withQueue();
  const peer = startFixture('queue-peer', [queue.name, 'send-later']);
  await peer.next('ready');
  assert.equal(await queue.receive(7, { timeoutMs: 20 }), undefined);
  const receiving = queue.receive(-7, { timeoutMs: 10_000 });
  peer.child.send('go');
  const message = await receiving;
  assert.equal(message?.type, 7);
  assert.equal(message?.payload.toString(), 'late');
  const controller = new AbortController();
  const aborted = queue.receive(0, { signal: controller.signal });
  setTimeout(() => controller.abort(), 10);
  assert.equal(await aborted, undefined);
});

test('a receiver in another process gets only the type it asked for', async () => {
  const queue = withQueue();
  const peer = startFixture('queue-peer', [queue.name, 'receive']);
  await peer.next('ready');
  queue.trySend(1, 'not this');
  queue.trySend(3, 'this one');
  const received = await peer.next<{ type: number; text: string }>('received');
  assert.equal(received.type, 3);
  assert.equal(received.text, 'this one');
  assert.deepEqual(texts(queue, 0), ['1:not this']);
});

test('a queue whose lock holder died mid-send is rebuilt from its slots, in arrival order', async () => {
  const queue = withQueue(8);
  for (const text of ['one', 'two', 'three']) queue.trySend(1, text);
  queue.tryReceive();
  queue.trySend(2, 'four');
  // Simulate a sender killed halfway: it holds the lock and has unlinked the lists.
  const dead = startFixture('queue-peer', [queue.name, 'receive']);
  await dead.next('ready');
  dead.kill('SIGKILL');
  await dead.exited();
  const { buffer, fd } = requireNative().map(`/${queue.name}`, false, 0, false);
  requireNative().release(fd);
  const words = new Int32Array(buffer);
  words[5] = dead.child.pid!; // lock word
  words[11] = -1; // first
  words[12] = -1; // last
  words[6] = 0; // count
  assert.deepEqual(texts(queue, 0), ['1:two', '1:three', '2:four']);
  queue.trySend(3, 'five');
  assert.deepEqual(texts(queue, 0), ['3:five']);
});
