import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { isKoboldError } from '../../src/errors.js';
import { backoffDelayMs, defineTask, isTaskDefinition, taskDefaults } from '../../src/jobs/task.js';
import { validateSchedule } from '../../src/jobs/schedule.js';

const base = { name: 'send-report', args: z.object({ to: z.string() }), run: () => undefined };

test('defineTask fills defaults, freezes and brands the definition', () => {
  const task = defineTask(base);
  assert.equal(task.timeoutMs, taskDefaults.timeoutMs);
  assert.equal(task.retries, 0);
  assert.equal(task.isolation, 'warm');
  assert.deepEqual(task.backoff, taskDefaults.backoff);
  assert.ok(Object.isFrozen(task));
  assert.ok(isTaskDefinition(task));
  assert.equal(isTaskDefinition({ ...task }), false);
  assert.throws(() => defineTask({ ...base, schedule: { cron: '* * * * *' } }), (error) => isKoboldError(error, 'KOBOLD_ERR_JOBS_TASK_DEFINITION') && error.params.field === 'schedule');
  const scheduled = defineTask({ ...base, args: z.object({ to: z.string().default('ops') }), schedule: { cron: '*/5 * * * *', timezone: 'Europe/Berlin' } });
  assert.deepEqual(scheduled.schedule, { cron: '*/5 * * * *', timezone: 'Europe/Berlin', overlap: 'forbid', missed: 'skip' });
});

test('defineTask names the bad field', () => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ name: '' }, 'name'],
    [{ name: 'has space' }, 'name'],
    [{ args: { type: 'object' } }, 'args'],
    [{ run: 'nope' }, 'run'],
    [{ timeoutMs: 0 }, 'timeoutMs'],
    [{ retries: -1 }, 'retries'],
    [{ retries: 1.5 }, 'retries'],
    [{ backoff: { type: 'linear' } }, 'backoff.type'],
    [{ backoff: { delayMs: -5 } }, 'backoff.delayMs'],
    [{ backoff: { delayMs: 1000, maxDelayMs: 10 } }, 'backoff.maxDelayMs'],
    [{ concurrency: -1 }, 'concurrency'],
    [{ isolation: 'thread' }, 'isolation'],
  ];
  for (const [override, field] of cases) {
    assert.throws(
      () => defineTask({ ...base, ...override } as never),
      (error) => isKoboldError(error, 'KOBOLD_ERR_JOBS_TASK_DEFINITION') && error.params.field === field,
      field,
    );
  }
});

test('a malformed schedule is refused with the field and the reason', () => {
  const cases: Array<[Record<string, unknown>, string, RegExp]> = [
    [{ cron: '* * bad' }, 'cron', /\* \* bad/],
    [{ cron: '61 * * * *' }, 'cron', /61/],
    [{ cron: '' }, 'cron', /cron expression/],
    [{ cron: '* * * * *', timezone: 'Mars/Base' }, 'timezone', /Mars\/Base/],
    [{ cron: '* * * * *', overlap: 'sometimes' }, 'overlap', /allow, forbid, replace/],
    [{ cron: '* * * * *', missed: 'all' }, 'missed', /skip, run-once/],
  ];
  for (const [schedule, field, reason] of cases) {
    assert.throws(
      () => validateSchedule('nightly', schedule as never),
      (error) => isKoboldError(error, 'KOBOLD_ERR_JOBS_BAD_SCHEDULE') && error.params.field === field && reason.test(error.message) && error.message.includes('"nightly"'),
      field,
    );
    assert.throws(() => defineTask({ ...base, schedule } as never), (error) => isKoboldError(error, 'KOBOLD_ERR_JOBS_BAD_SCHEDULE'));
  }
  assert.doesNotThrow(() => validateSchedule('nightly', { cron: '0 3 * * *', timezone: 'America/New_York', overlap: 'replace', missed: 'run-once' }));
});

test('backoff delays: fixed, and exponential doubling up to the cap', () => {
  assert.equal(backoffDelayMs({ type: 'fixed', delayMs: 50, maxDelayMs: 50 }, 5), 50);
  const exponential = { type: 'exponential' as const, delayMs: 100, maxDelayMs: 500 };
  assert.deepEqual([2, 3, 4, 5, 6].map((attempt) => backoffDelayMs(exponential, attempt)), [100, 200, 400, 500, 500]);
});
