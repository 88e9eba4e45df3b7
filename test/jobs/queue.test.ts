import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RunQueue } from '../../src/jobs/queue.js';

test('ready runs come out by priority, then creation order, skipping tasks that cannot run', () => {
  const queue = new RunQueue();
  queue.addReady({ id: 1, task: 'a', priority: 0, runAt: 0 });
  queue.addReady({ id: 2, task: 'b', priority: 5, runAt: 0 });
  queue.addReady({ id: 3, task: 'a', priority: 5, runAt: 0 });
  queue.addReady({ id: 4, task: 'b', priority: 0, runAt: 0 });
  assert.equal(queue.take(() => true)?.id, 2);
  assert.equal(queue.take((task) => task === 'b')?.id, 4, 'a blocked task does not hold up another');
  assert.equal(queue.take(() => true)?.id, 3);
  assert.equal(queue.take(() => false), undefined);
  assert.equal(queue.readySize, 1);
  assert.equal(queue.remove(1)?.id, 1);
  assert.equal(queue.size, 0);
});

test('delayed runs become due in runAt order', () => {
  const queue = new RunQueue();
  queue.addDelayed({ id: 1, task: 'a', priority: 0, runAt: 300 });
  queue.addDelayed({ id: 2, task: 'a', priority: 9, runAt: 100 });
  queue.addDelayed({ id: 3, task: 'a', priority: 0, runAt: 200 });
  assert.equal(queue.nextDueAt(), 100);
  assert.deepEqual(queue.takeDue(250).map((run) => run.id), [2, 3]);
  assert.equal(queue.remove(1)?.id, 1);
  assert.equal(queue.nextDueAt(), undefined);
});
