import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { Dispatcher } from '../../src/jobs/dispatcher.js';
import { fillJobsOptions } from '../../src/jobs/options.js';
import { taskRegistry } from '../../src/jobs/registry.js';
import { Scheduler } from '../../src/jobs/scheduler.js';
import { RunStore } from '../../src/jobs/store.js';
import { defineTask, type OverlapPolicy, type MissedPolicy } from '../../src/jobs/task.js';
import { startHarness, waitFor } from './helpers.js';

const hourly = (overlap: OverlapPolicy = 'forbid', missed: MissedPolicy = 'skip', cron = '0 * * * *') =>
  defineTask({ name: 'wait', args: z.object({ ms: z.number().default(60_000) }), run: () => undefined, schedule: { cron, overlap, missed } });

test('a fire is leased once even with two schedulers on one store', async () => {
  const tasks = taskRegistry([hourly()]);
  const h = await startHarness({ tasks });
  // A second dispatcher and store on the same file, as another process would have.
  const settings = fillJobsOptions({ runDir: h.dir, socketPath: `${h.dir}/other.sock` });
  const otherStore = new RunStore(settings.storeFile, settings);
  const other = new Dispatcher({ store: otherStore, tasks, settings });
  await other.start();
  try {
    const a = new Scheduler({ store: h.store, dispatcher: h.dispatcher, tasks, owner: 'a' });
    const b = new Scheduler({ store: otherStore, dispatcher: other, tasks, owner: 'b' });
    const fireAt = Date.UTC(2026, 0, 1, 3);
    const outcomes = [a.fire('wait', fireAt), b.fire('wait', fireAt), a.fire('wait', fireAt)];
    assert.equal(outcomes[0]!.outcome, 'enqueued');
    assert.deepEqual(outcomes.slice(1), [{ outcome: 'taken' }, { outcome: 'taken' }]);
    assert.equal(h.store.list({ task: 'wait' }).length, 1);
    assert.equal(h.store.list({ task: 'wait' })[0]!.trigger, 'schedule');
    assert.equal(h.store.lastFireAt('wait'), fireAt);
  } finally {
    await other.close();
    otherStore.close();
    await h.close();
  }
});

test('overlap forbid skips a fire while a run is active; allow does not', async () => {
  for (const [overlap, expected] of [['forbid', 'skipped'], ['allow', 'enqueued']] as const) {
    const tasks = taskRegistry([hourly(overlap)]);
    const h = await startHarness({ tasks });
    try {
      const scheduler = new Scheduler({ store: h.store, dispatcher: h.dispatcher, tasks });
      assert.equal(scheduler.fire('wait', 1000).outcome, 'enqueued');
      assert.equal(scheduler.fire('wait', 2000).outcome, expected, overlap);
    } finally { await h.close(); }
  }
});

test('overlap replace cancels the running run and starts a new one', async () => {
  const tasks = taskRegistry([hourly('replace')]);
  const h = await startHarness({ tasks });
  try {
    await h.addWorkers(1);
    const scheduler = new Scheduler({ store: h.store, dispatcher: h.dispatcher, tasks });
    const first = scheduler.fire('wait', 1000);
    assert.equal(first.outcome, 'enqueued');
    const firstId = (first as { runId: number }).runId;
    await h.waitForState(firstId, ['running']);
    const second = scheduler.fire('wait', 2000) as { outcome: string; runId: number };
    assert.equal(second.outcome, 'enqueued');
    assert.equal((await h.waitForState(firstId, ['cancelled'])).error?.code, 'KOBOLD_ERR_JOBS_CANCELLED');
    await h.waitForState(second.runId, ['running']);
  } finally { await h.close(); }
});

test('missed while down: run-once fires the latest missed time once; skip fires nothing', async () => {
  for (const missed of ['run-once', 'skip'] as const) {
    const tasks = taskRegistry([hourly('allow', missed)]);
    const h = await startHarness({ tasks });
    try {
      const hour = 3_600_000;
      const lastFire = Math.floor(Date.now() / hour) * hour - 5 * hour;
      h.store.leaseFire('wait', lastFire, 'before-the-stop');
      const scheduler = new Scheduler({ store: h.store, dispatcher: h.dispatcher, tasks });
      scheduler.start();
      scheduler.stop();
      const runs = h.store.list({ task: 'wait' });
      if (missed === 'skip') {
        assert.equal(runs.length, 0);
      } else {
        assert.equal(runs.length, 1);
        assert.equal(h.store.lastFireAt('wait'), Math.floor(Date.now() / hour) * hour);
        // A second start finds nothing missed any more.
        scheduler.start();
        scheduler.stop();
        assert.equal(h.store.list({ task: 'wait' }).length, 1);
      }
    } finally { await h.close(); }
  }
});

test('a cron with seconds fires on time through the timer', async () => {
  const tasks = taskRegistry([hourly('allow', 'skip', '* * * * * *')]);
  const h = await startHarness({ tasks });
  const scheduler = new Scheduler({ store: h.store, dispatcher: h.dispatcher, tasks });
  try {
    scheduler.start();
    const run = await waitFor('a scheduled run', () => h.store.list({ task: 'wait' })[0], 3000);
    assert.equal(run.trigger, 'schedule');
    assert.equal(run.idempotencyKey, `schedule:wait:${h.store.lastFireAt('wait')}`);
    assert.equal(h.store.lastFireAt('wait')! % 1000, 0);
  } finally {
    scheduler.stop();
    await h.close();
  }
});
