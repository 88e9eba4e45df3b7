import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expandConfig } from '../../src/config/expand.js';
import { validateConfig } from '../../src/config/load.js';
import { expandJobs } from '../../src/jobs/expand.js';

function valid(input: unknown) {
  const result = validateConfig(input);
  if ('problems' in result) throw new Error(JSON.stringify(result.problems));
  return result.config;
}

test('task modules add the jobs singleton and the tasks pool with their built-in apps', () => {
  const config = expandConfig(valid({ jobs: { taskModules: ['tasks.ts'], pool: { minWorkers: 2, maxWorkers: 5, maxMemoryMb: 300 } } }), [expandJobs]);
  assert.equal(config.services.jobs?.role, 'singleton');
  assert.equal(config.services.jobs?.workers, 1);
  const tasks = config.services.tasks!;
  assert.deepEqual([tasks.role, tasks.minWorkers, tasks.maxWorkers, tasks.workers, tasks.limits.maxMemoryMb, tasks.scaling.enabled], ['pool', 2, 5, 2, 300, false]);
  assert.deepEqual(
    config.apps.filter((app) => app.service !== 'web').map((app) => [app.name, app.module, app.service]),
    [['jobs', 'kobold:jobs', 'jobs'], ['tasks', 'kobold:tasks', 'tasks']],
  );
});

test('without task modules nothing is added; a tasks service the user declared wins', () => {
  const off = expandConfig(valid({}), [expandJobs]);
  assert.deepEqual(Object.keys(off.services), ['web']);
  const tuned = expandConfig(valid({ jobs: { taskModules: ['t.ts'] }, services: { web: {}, tasks: { role: 'pool', minWorkers: 3, maxWorkers: 3 } } }), [expandJobs]);
  assert.equal(tuned.services.tasks?.minWorkers, 3);
});

test('bad jobs options are named by their path', () => {
  const paths = (input: unknown) => {
    const result = validateConfig(input);
    return 'problems' in result ? result.problems.map((problem) => problem.path) : [];
  };
  assert.deepEqual(paths({ jobs: { pool: { minWorkers: 4, maxWorkers: 2 } } }), ['jobs.pool.minWorkers']);
  assert.deepEqual(paths({ jobs: { apiKeys: ['short'] } }), ['jobs.apiKeys.0']);
  assert.deepEqual(paths({ jobs: { maxQueued: 0 } }), ['jobs.maxQueued']);
  assert.deepEqual(paths({ jobs: { retries: 3 } }), ['jobs']);
});
