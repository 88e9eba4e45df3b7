import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isKoboldError } from '../../src/errors.js';
import { fillJobsOptions, jobsDefaults } from '../../src/jobs/options.js';

test('defaults are filled and paths derived from the run dir', () => {
  const options = fillJobsOptions({ runDir: '/run/kobold' });
  assert.equal(options.socketPath, '/run/kobold/jobs.sock');
  assert.equal(options.storeFile, '/run/kobold/jobs.sqlite');
  assert.equal(options.maxQueued, jobsDefaults.maxQueued);
  assert.deepEqual(fillJobsOptions({ runDir: '/r', retention: { maxRuns: 5 } }).retention, { maxAgeDays: 7, maxRuns: 5 });
  assert.ok(Object.isFrozen(options));
});

test('a bad option is named in the error', () => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{}, 'runDir'],
    [{ runDir: '/r', maxQueued: 0 }, 'maxQueued'],
    [{ runDir: '/r', abortGraceMs: -1 }, 'abortGraceMs'],
    [{ runDir: '/r', retention: { maxRuns: 1.5 } }, 'retention.maxRuns'],
    [{ runDir: '/r', maxQueue: 5 }, 'maxQueue'],
  ];
  for (const [options, option] of cases) {
    assert.throws(() => fillJobsOptions(options as never), (error) => isKoboldError(error, 'KOBOLD_ERR_JOBS_OPTION') && error.params.option === option, option);
  }
});
