import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryBackend } from '../../src/hub/backends/memory.js';
import { namespace } from '../../src/hub/options.js';
import { brokerContract } from './broker.contract.js';

brokerContract('memory', async (namespaces) => {
  const backend = new MemoryBackend({ namespaces });
  return { open: async () => backend, close: () => backend.close() };
});

test('memory: idle streams with nothing kept are forgotten and come back with a new epoch', async () => {
  let now = 1_000;
  const backend = new MemoryBackend({ namespaces: [namespace({ name: 'n', historyTtlMs: 100 })], now: () => now, sweepIntervalMs: 10 });
  const first = await backend.publish('n:a', '1');
  now += 500;
  await new Promise((resolve) => setTimeout(resolve, 40));
  const history = await backend.history('n:a');
  assert.equal(history.position.offset, 0);
  assert.notEqual(history.position.epoch, first.epoch);
  await backend.close();
});
