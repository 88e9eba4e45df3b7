import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { after, test } from 'node:test';
import { FloodControl } from '../../../src/apps/chat/flood.js';
import { createFloodLimiter, SharedFloodControl } from '../../../src/apps/chat/shared-flood.js';
import { createShmApi, removeDaemonSegments } from '../../../src/shm/app-api.js';
import { SharedTable } from '../../../src/shm/table.js';

const columns = { tat: { type: 'int' } } as const;
let counter = 0;

function table(capacity = 64): SharedTable<typeof columns> {
  const name = `kobold-test-chat-flood-${process.pid}-${++counter}`;
  after(() => SharedTable.unlink(name));
  return SharedTable.create(name, { capacity, keyMaxBytes: 128, columns });
}

/** Two "workers": two handles on one table, one clock (µs). */
function twoWorkers(rate: number, burst: number, capacity = 64) {
  const clock = { now: 1_000_000_000 };
  const shared = table(capacity);
  const other = SharedTable.open(shared.name) as SharedTable<typeof columns>;
  const make = (t: SharedTable<typeof columns>) => new SharedFloodControl(t, rate, burst, new FloodControl(rate, burst), () => {}, () => clock.now);
  return { clock, a: make(shared), b: make(other), table: shared };
}

test('a user spread over two workers gets the burst and the rate in total', () => {
  const { clock, a, b } = twoWorkers(2, 3);
  const takes = [a, b, a, b, a, b].map((worker) => worker.take('ann'));
  assert.deepEqual(takes, [true, true, true, false, false, false]);
  assert.equal(b.take('bob'), true, 'users have their own buckets');
  clock.now += 499_000;
  assert.equal(a.take('ann'), false);
  clock.now += 1000;
  assert.equal(b.take('ann'), true, 'one token every 500 ms');
  assert.equal(a.take('ann'), false);
  clock.now += 1_000_000;
  assert.deepEqual([b, a, b].map((worker) => worker.take('ann')), [true, true, false], 'two tokens per second');
  clock.now += 60_000_000;
  assert.deepEqual([a, b, a, b].map((worker) => worker.take('ann')), [true, true, true, false], 'an idle user gets the burst back, not more');
});

test('refused takes cost nothing, and a sustained sender gets exactly the rate', () => {
  const { clock, a, b } = twoWorkers(10, 5);
  let accepted = 0;
  // 10 s of a user trying every 10 ms through alternating workers: 5 burst + 100 over 10 s.
  for (let i = 0; i < 1000; i++) {
    if ((i % 2 === 0 ? a : b).take('ann')) accepted++;
    clock.now += 10_000;
  }
  assert.equal(accepted, 5 + 99);
});

test('a take that races another worker between its read and its increment corrects itself', () => {
  const { clock, a, table: shared } = twoWorkers(1, 2);
  const other = new SharedFloodControl(SharedTable.open(shared.name) as SharedTable<typeof columns>, 1, 2, new FloodControl(1, 2), () => {}, () => clock.now);
  // Worker b's take lands between a's read and a's increment, both on an idle user.
  const original = shared.getValue.bind(shared);
  let raced = false;
  shared.getValue = ((key: string, column: 'tat') => {
    const value = original(key, column);
    if (!raced) {
      raced = true;
      assert.equal(other.take('ann'), true);
    }
    return value;
  }) as typeof shared.getValue;
  assert.equal(a.take('ann'), true);
  shared.getValue = original;
  assert.equal(shared.getValue('ann', 'tat'), clock.now + 2_000_000, 'two takes: two intervals past now, the catch-up counted once');
  assert.equal(a.take('ann'), false, 'the burst of 2 is spent');
  clock.now += 1_000_000;
  assert.equal(other.take('ann'), true);
});

test('a row deleted by a sweep between the read and the increment is caught up again', () => {
  const { clock, a, table: shared } = twoWorkers(1, 1);
  assert.equal(a.take('ann'), true);
  clock.now += 5_000_000;
  const original = shared.getValue.bind(shared);
  shared.getValue = ((key: string, column: 'tat') => {
    const value = original(key, column);
    shared.delete(key);
    return value;
  }) as typeof shared.getValue;
  assert.equal(a.take('ann'), true);
  shared.getValue = original;
  assert.equal(shared.getValue('ann', 'tat'), clock.now + 1_000_000);
  assert.equal(a.take('ann'), false);
});

test('sweep drops full buckets only; a full table sends new users to the local buckets, reported once', () => {
  const clock = { now: 1_000_000_000 };
  const shared = table(16);
  const local = new FloodControl(1, 1, () => clock.now / 1000);
  let reports = 0;
  const flood = new SharedFloodControl(shared, 1, 1, local, () => reports++, () => clock.now);
  // 16 rows requested; the table has 4/3 slack, so fill it until it refuses.
  let users = 0;
  while (local.size === 0) assert.equal(flood.take(`u${users++}`), true);
  const overflowed = `u${users - 1}`;
  assert.equal(reports, 1);
  assert.equal(shared.has(overflowed), false, 'the overflowing user has no shared row');
  assert.equal(flood.take(overflowed), false, 'but a local bucket');
  assert.equal(flood.take(`u${users++}`), true);
  assert.equal(reports, 1, 'reported once');
  const before = shared.size;
  clock.now += 500_000;
  flood.sweep();
  assert.equal(shared.size, before, 'buckets still refilling are kept');
  clock.now += 500_000;
  flood.sweep();
  assert.equal(shared.size, 0);
  assert.equal(local.size, 0);
});

test('without shared memory, per-worker buckets with one warning', () => {
  const warnings: string[] = [];
  const flood = createFloodLimiter(undefined, 'chat', { ratePerSecond: 1, burst: 2, trackedUsers: 64 }, (m) => warnings.push(m));
  assert.ok(flood instanceof FloodControl);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /per worker/);
});

test('with shared memory, one table per instance and capacity, shared by handles in every worker', () => {
  const runDir = `${tmpdir()}/kobold-chat-flood-${process.pid}`;
  after(() => removeDaemonSegments(runDir));
  const warnings: string[] = [];
  const options = { ratePerSecond: 1, burst: 2, trackedUsers: 64 };
  const a = createFloodLimiter(createShmApi(runDir), 'chat', options, (m) => warnings.push(m));
  const b = createFloodLimiter(createShmApi(runDir), 'chat', options, (m) => warnings.push(m));
  const otherInstance = createFloodLimiter(createShmApi(runDir), 'chat2', options, (m) => warnings.push(m));
  assert.ok(a instanceof SharedFloodControl);
  assert.deepEqual([a.take('ann'), b.take('ann'), a.take('ann')], [true, true, false]);
  assert.equal(otherInstance.take('ann'), true, 'another chat instance has its own table');
  assert.deepEqual(warnings, []);
});
