import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FloodControl } from '../../../src/apps/chat/flood.js';

test('a burst, then the sustained rate, per user; idle buckets are swept', () => {
  let now = 0;
  const flood = new FloodControl(2, 3, () => now);
  assert.deepEqual([1, 2, 3, 4].map(() => flood.take('ann')), [true, true, true, false]);
  assert.equal(flood.take('bob'), true, 'users have their own buckets');
  now = 499;
  assert.equal(flood.take('ann'), false);
  now = 1000;
  assert.deepEqual([1, 2, 3].map(() => flood.take('ann')), [true, true, false], 'two tokens per second');
  flood.sweep();
  assert.equal(flood.size, 2);
  now = 10_000;
  flood.sweep();
  assert.equal(flood.size, 0);
  assert.equal(flood.take('ann'), true);
});
