import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PoolScaler, wantedWorkers } from '../../src/jobs/pool-scaler.js';

const depth = (ready: number, running: number) => ({ ready, delayed: 0, running, workers: 0, freeSlots: 0 });
const bounds = { minWorkers: 1, maxWorkers: 4, concurrency: 2 };

test('wantedWorkers covers waiting and running runs per worker concurrency, within min/max', () => {
  assert.equal(wantedWorkers(depth(0, 0), bounds), 1);
  assert.equal(wantedWorkers(depth(3, 2), bounds), 3);
  assert.equal(wantedWorkers(depth(100, 0), bounds), 4);
});

test('the pool grows at once and shrinks only after the queue stayed short', async () => {
  const asked: number[] = [];
  const scaler = new PoolScaler(bounds, 50, (workers) => asked.push(workers));
  scaler.update(depth(6, 0));
  assert.deepEqual(asked, [3]);
  scaler.update(depth(0, 1));
  scaler.update(depth(0, 0));
  assert.deepEqual(asked, [3], 'no shrink before the delay');
  scaler.update(depth(6, 0)); // busy again: the shrink is called off
  await new Promise((resolve) => setTimeout(resolve, 80));
  assert.deepEqual(asked, [3]);
  scaler.update(depth(0, 0));
  await new Promise((resolve) => setTimeout(resolve, 80));
  assert.deepEqual(asked, [3, 1]);
  scaler.stop();
});
