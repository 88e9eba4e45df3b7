import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDuration } from '../../../src/apps/chat/moderation.js';

test('durations: s, m, h, d; anything else is not a duration', () => {
  assert.equal(parseDuration('30s'), 30_000);
  assert.equal(parseDuration('10m'), 600_000);
  assert.equal(parseDuration('2H'), 7_200_000);
  assert.equal(parseDuration('7d'), 7 * 86_400_000);
  for (const bad of ['', '10', 'm', '0m', '-5m', '1.5h', '10 m', '999999d', 'forever']) assert.equal(parseDuration(bad), null, bad);
});
