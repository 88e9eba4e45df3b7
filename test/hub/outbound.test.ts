import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Disconnects, type DisconnectReason } from '../../src/hub/disconnect.js';
import { OutboundQueue, type Transport } from '../../src/hub/outbound.js';
import type { Publication } from '../../src/hub/types.js';

/** A transport that records writes and whose buffer level the test sets. */
class FakeTransport implements Transport {
  readonly name = 'websocket';
  readonly format = 'websocket';
  writes: Buffer[][] = [];
  buffered = 0;
  closedWith: DisconnectReason | null = null;
  private drain: (() => void) | null = null;
  bufferedBytes = () => this.buffered;
  onDrain(listener: () => void) {
    this.drain = listener;
  }
  writeMany(frames: readonly Buffer[]) {
    this.writes.push([...frames]);
  }
  close(disconnect: DisconnectReason) {
    this.closedWith = disconnect;
  }
  drained() {
    this.buffered = 0;
    const drain = this.drain;
    this.drain = null;
    drain?.();
  }
}

const turn = () => new Promise((resolve) => setImmediate(resolve));
const pub = (channel: string, offset: number): Publication => ({ channel, offset, epoch: 'e', data: 'x'.repeat(90), time: 1 });
const frame = (p: Publication) => Buffer.from(`${p.channel}#${p.offset}`.padEnd(100));
const gapFrame = (channel: string, last: { offset: number }) => Buffer.from(`gap ${channel} ${last.offset}`);
const limits = { maxQueueBytes: 1000, writeHighWaterBytes: 500, slowConsumerPolicy: 'drop' as const, writeDelayMs: 0 };

test('all frames queued in one turn leave in one writeMany', async () => {
  const transport = new FakeTransport();
  const queue = new OutboundQueue(transport, limits, { gapFrame, overflowed: () => assert.fail('no overflow') });
  for (let i = 1; i <= 5; i++) queue.push(frame(pub('a', i)));
  assert.equal(transport.writes.length, 0, 'nothing is written before the turn ends');
  await turn();
  assert.equal(transport.writes.length, 1);
  assert.equal(transport.writes[0].length, 5);
  queue.push(frame(pub('a', 6)));
  await turn();
  assert.equal(transport.writes.length, 2);
});

test('a transport over its high-water mark gets nothing until it drains', async () => {
  const transport = new FakeTransport();
  transport.buffered = 10_000;
  const queue = new OutboundQueue(transport, limits, { gapFrame, overflowed: () => assert.fail('no overflow') });
  queue.push(frame(pub('a', 1)));
  await turn();
  assert.equal(transport.writes.length, 0);
  queue.push(frame(pub('a', 2)));
  await turn();
  assert.equal(transport.writes.length, 0);
  transport.drained();
  assert.deepEqual(transport.writes[0].map(String).map((s) => s.trim()), ['a#1', 'a#2']);
});

test('slow consumer, policy drop: the oldest publications go, a gap marker per channel says where to resume, memory stays bounded', async () => {
  const transport = new FakeTransport();
  transport.buffered = 10_000;
  const queue = new OutboundQueue(transport, limits, { gapFrame, overflowed: () => assert.fail('policy is drop') });
  const control = Buffer.from('reply-frame');
  queue.push(control);
  for (let i = 1; i <= 30; i++) {
    queue.push(frame(pub('a', i)), pub('a', i));
    queue.push(frame(pub('b', i)), pub('b', i));
    assert.ok(queue.queuedBytes <= limits.maxQueueBytes + 100);
  }
  await turn();
  transport.drained();
  const written = transport.writes.flat().map((b) => b.toString().trim());
  assert.equal(written[0], 'reply-frame', 'frames that are not publications are never dropped');
  assert.ok(written.includes('a#30') && written.includes('b#30'), 'the newest are kept');
  assert.ok(!written.includes('a#1'), 'the oldest are dropped');
  const gaps = written.filter((w) => w.startsWith('gap'));
  assert.ok(gaps.includes('gap a 0') && gaps.includes('gap b 0'), `gap markers: ${gaps}`);
});

test('slow consumer, policy disconnect: the connection is closed (3001, reconnect)', () => {
  const transport = new FakeTransport();
  transport.buffered = 10_000;
  let overflowed = 0;
  const queue = new OutboundQueue(transport, { ...limits, slowConsumerPolicy: 'disconnect' }, { gapFrame, overflowed: () => overflowed++ });
  for (let i = 1; i <= 11; i++) queue.push(frame(pub('a', i)), pub('a', i));
  assert.equal(overflowed, 1);
  assert.equal(Disconnects.slowConsumer.code, 3001);
  assert.equal(Disconnects.slowConsumer.reconnect, true);
});

test('with a write delay, frames queued over several turns within it leave in one writeMany', async (t) => {
  // The delay's clock is mocked, so no real time decides what has left yet.
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const transport = new FakeTransport();
  const queue = new OutboundQueue(transport, { ...limits, writeDelayMs: 1000 }, { gapFrame, overflowed: () => assert.fail('no overflow') });
  const other = new FakeTransport();
  const otherQueue = new OutboundQueue(other, { ...limits, writeDelayMs: 1000 }, { gapFrame, overflowed: () => assert.fail('no overflow') });
  queue.push(frame(pub('a', 1)), pub('a', 1));
  await turn();
  otherQueue.push(frame(pub('b', 1)), pub('b', 1));
  queue.push(frame(pub('a', 2)), pub('a', 2));
  await turn();
  t.mock.timers.tick(999);
  assert.equal(transport.writes.length + other.writes.length, 0, 'nothing leaves before the delay');
  t.mock.timers.tick(1);
  assert.equal(transport.writes.length, 1);
  assert.deepEqual(transport.writes[0].map(String).map((s) => s.trim()), ['a#1', 'a#2']);
  assert.equal(other.writes.length, 1, 'every queue that asked within the delay is flushed by the same timer');
});
