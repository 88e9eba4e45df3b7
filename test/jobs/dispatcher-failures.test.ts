// How runs end when things go wrong: cancel, timeouts, workers that die mid-run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { isKoboldError } from '../../src/errors.js';
import { taskRegistry } from '../../src/jobs/registry.js';
import { defineTask } from '../../src/jobs/task.js';
import { startHarness, waitFor } from './helpers.js';

test('cancel: a queued run at once, a running one through its abort signal', async () => {
  const h = await startHarness();
  try {
    const queued = (await h.dispatcher.enqueue({ task: 'echo', args: { text: 'x' } })).run;
    assert.equal(h.dispatcher.cancel(queued.id).state, 'cancelled');
    assert.throws(() => h.dispatcher.cancel(queued.id), (e) => isKoboldError(e, 'KOBOLD_ERR_JOBS_BAD_TRANSITION'));
    const [worker] = await h.addWorkers(1);
    const running = (await h.dispatcher.enqueue({ task: 'wait', args: {} })).run;
    await h.waitForState(running.id, ['running']);
    h.dispatcher.cancel(running.id);
    const cancelled = await h.waitForState(running.id, ['cancelled']);
    assert.equal(cancelled.error?.code, 'KOBOLD_ERR_JOBS_CANCELLED');
    assert.equal(worker!.exitCode, null, 'a task that honours abort keeps its worker');
    // The same worker takes the next run.
    const next = (await h.dispatcher.enqueue({ task: 'echo', args: { text: 'again' } })).run;
    assert.equal((await h.waitForState(next.id, ['succeeded'])).workerPid, worker!.pid);
  } finally { await h.close(); }
});

test('timeout: a task that ignores abort gets its worker TERMed; one that ignores TERM gets KILLed', async () => {
  const h = await startHarness();
  try {
    const [first] = await h.addWorkers(1);
    const stubborn = (await h.dispatcher.enqueue({ task: 'stubborn' })).run;
    const timedOut = await h.waitForState(stubborn.id, ['timed_out']);
    assert.equal(timedOut.error?.code, 'KOBOLD_ERR_JOBS_TIMEOUT');
    await waitFor('worker exit', () => first!.exitCode !== null || first!.signalCode !== null);
    assert.match(h.store.logs(stubborn.id).map((l) => l.message).join('\n'), /SIGTERM to worker/);

    await h.addWorkers(1);
    const proof = (await h.dispatcher.enqueue({ task: 'sigterm-proof' })).run;
    const killed = await h.waitForState(proof.id, ['timed_out']);
    assert.equal(killed.exitSignal, 'SIGKILL');
    assert.match(h.store.logs(proof.id).map((l) => l.message).join('\n'), /SIGKILL/);
  } finally { await h.close(); }
});

test('a timed-out attempt is retried per policy, then ends timed_out', async () => {
  const h = await startHarness();
  try {
    const [worker] = await h.addWorkers(1);
    const run = (await h.dispatcher.enqueue({ task: 'slow-timeout' })).run;
    const done = await h.waitForState(run.id, ['timed_out']);
    assert.equal(done.attempt, 2);
    assert.equal(worker!.exitCode, null, 'the task honoured abort, so its worker lives on');
  } finally { await h.close(); }
});

test('a worker that dies mid-run: the run fails with its exit code or signal', async () => {
  const h = await startHarness();
  try {
    await h.addWorkers(2);
    const exited = (await h.dispatcher.enqueue({ task: 'crash', args: { code: 3 } })).run;
    const failed = await h.waitForState(exited.id, ['failed']);
    assert.equal(failed.exitCode, 3);
    assert.equal(failed.error?.code, 'KOBOLD_ERR_JOBS_WORKER_LOST');
    assert.match(failed.error!.message, /exit code 3/);
    const killed = (await h.dispatcher.enqueue({ task: 'self-kill' })).run;
    const lost = await h.waitForState(killed.id, ['failed']);
    assert.equal(lost.exitSignal, 'SIGKILL');
    assert.match(lost.error!.message, /killed by SIGKILL/);
  } finally { await h.close(); }
});

test('a fresh process that cannot start fails the attempt with its exit and stderr', async () => {
  const fresh = defineTask({ name: 'isolated', args: z.object({}), isolation: 'fresh', run: () => null });
  const broken = fileURLToPath(new URL('./fixtures/broken.ts', import.meta.url));
  const h = await startHarness({ tasks: taskRegistry([fresh]), taskModules: [broken] });
  try {
    const run = (await h.dispatcher.enqueue({ task: 'isolated' })).run;
    const failed = await h.waitForState(run.id, ['failed'], 10_000);
    assert.equal(failed.attempt, 1);
    assert.match(failed.error!.message, /exited before it was ready \(exit code 2\).*this module fails at import/s);
  } finally { await h.close(); }
});
