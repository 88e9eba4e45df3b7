import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Doorbell, DoorbellSubscription } from '../../src/shm/doorbell.js';
import { followRing } from '../../src/shm/follow.js';
import { SharedRing } from '../../src/shm/ring.js';
import { uniqueName } from './helpers.js';

function socketPath(): string {
  const path = join(tmpdir(), `${uniqueName('bell')}.sock`);
  after(() => rmSync(path, { force: true }));
  return path;
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

test('rings are coalesced to one per event-loop turn for each subscriber', async () => {
  const path = socketPath();
  const bell = await Doorbell.listen(path);
  const counts = [0, 0];
  const subscriptions = counts.map((_, i) => new DoorbellSubscription(path, () => counts[i]++));
  await until(() => bell.subscribers === 2 && counts.every((count) => count === 1), 'both subscribers (rung once when accepted)');
  bell.ring();
  bell.ring();
  bell.ring();
  await until(() => counts.every((count) => count === 2), 'one ring each');
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(counts, [2, 2]);
  for (const subscription of subscriptions) subscription.close();
  await bell.close();
});

test('the writer rings a subscriber when it accepts it: what was written before that is read', async () => {
  const path = socketPath();
  const bell = await Doorbell.listen(path);
  // A bare socket: its connect completes before the writer accepts it, and nothing else rings.
  const socket = connect(path);
  const firstBytes = await new Promise<Buffer>((resolve, reject) => {
    socket.once('data', resolve);
    socket.once('error', reject);
  });
  assert.equal(firstBytes.length, 1);
  socket.destroy();
  await bell.close();
});

test('a subscriber reconnects when the writer comes back, and a stale socket file is replaced', async () => {
  const path = socketPath();
  writeFileSync(path, '');
  let rings = 0;
  const subscription = new DoorbellSubscription(path, () => rings++, { retryMs: 10 });
  const first = await Doorbell.listen(path);
  await until(() => subscription.connected, 'first connection');
  await first.close();
  await until(() => !subscription.connected, 'disconnection');
  const before = rings;
  const second = await Doorbell.listen(path);
  await until(() => subscription.connected && rings > before, 'reconnection rings');
  await assert.rejects(Doorbell.listen(path), /EADDRINUSE/);
  subscription.close();
  await second.close();
});

test('followRing delivers what the writer appends after each ring', async () => {
  const name = uniqueName('ring');
  after(() => SharedRing.unlink(name));
  const ring = SharedRing.create(name, { recordSize: 16, capacity: 64 });
  const path = socketPath();
  const bell = await Doorbell.listen(path);
  const writer = ring.writer();
  writer.write('before');
  const received: string[] = [];
  const follower = followRing(ring, path, (payload) => received.push(Buffer.from(payload).toString()), { from: 'oldest' });
  await until(() => received.length === 1, 'the record written before following');
  writer.writeMany(['a', 'b']);
  bell.ring();
  await until(() => received.length === 3, 'the records after the ring');
  assert.deepEqual(received, ['before', 'a', 'b']);
  follower.close();
  await bell.close();
});
