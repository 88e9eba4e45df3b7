import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { isKoboldError } from '../../src/errors.js';
import { loadTaskModules, taskRegistry } from '../../src/jobs/registry.js';
import { defineTask } from '../../src/jobs/task.js';
import { fixtureTasks } from './helpers.js';

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

test('task modules load once and their tasks are indexed by name', async () => {
  const tasks = await loadTaskModules([fixtureTasks]);
  assert.ok(tasks.has('echo') && tasks.has('isolated'));
  assert.equal(tasks.get('isolated')!.isolation, 'fresh');
});

test('a module that fails, exports no task, or repeats a name is refused naming the module', async () => {
  await assert.rejects(loadTaskModules([fixture('broken.ts')]), (e) => isKoboldError(e, 'KOBOLD_ERR_JOBS_TASK_LOAD') && /broken\.ts: this module fails at import/.test(e.message));
  await assert.rejects(loadTaskModules([fixture('no-tasks.ts')]), (e) => isKoboldError(e, 'KOBOLD_ERR_JOBS_TASK_LOAD') && /exports no task/.test(e.message));
  await assert.rejects(loadTaskModules([fixture('missing.ts')]), (e) => isKoboldError(e, 'KOBOLD_ERR_JOBS_TASK_LOAD') && /missing\.ts/.test(e.message));
  const twin = (): ReturnType<typeof defineTask> => defineTask({ name: 'twin', args: z.object({}), run: () => undefined });
  assert.throws(() => taskRegistry([twin(), twin()]), (e) => isKoboldError(e, 'KOBOLD_ERR_JOBS_TASK_LOAD') && /"twin"/.test(e.message));
});
