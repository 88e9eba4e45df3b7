import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import Database from 'better-sqlite3';
import { isKoboldError } from '../../src/errors.js';
import { startHarness, waitFor } from './helpers.js';

test('a run goes queued -> running -> succeeded in a warm worker, with its output kept', async () => {
  const h = await startHarness();
  try {
    const [worker] = await h.addWorkers(1);
    const { run } = await h.dispatcher.enqueue({ task: 'echo', args: { text: 'hi' }, trigger: 'test' });
    assert.equal(run.state, 'queued');
    const done = await h.waitForState(run.id, ['succeeded']);
    assert.deepEqual(done.result, { echoed: 'hi', pid: worker!.pid });
    assert.equal(done.workerPid, worker!.pid);
    assert.equal(done.attempt, 1);
    assert.ok(done.startedAt! >= done.createdAt && done.finishedAt! >= done.startedAt! && done.durationMs! >= 0);

    const { run: chatty } = await h.dispatcher.enqueue({ task: 'chatty' });
    const finished = await h.waitForState(chatty.id, ['succeeded']);
    assert.deepEqual(finished.progress, { percent: 100, message: 'done' });
    const lines = h.store.logs(chatty.id).map((line) => [line.stream, line.level, line.message]);
    assert.deepEqual(lines, [
      ['log', 'info', 'starting {"step":1}'],
      ['stdout', 'info', 'to stdout'],
      ['stderr', 'error', 'to stderr'],
      ['stdout', 'info', 'no newline at the end'],
    ]);
  } finally { await h.close(); }
});

test('bad input is refused with a clear error: unknown task, bad args, oversize args, full queue', async () => {
  const h = await startHarness({ maxQueued: 2, maxArgsBytes: 100 });
  try {
    await assert.rejects(h.dispatcher.enqueue({ task: 'nope' }), (e) => isKoboldError(e, 'KOBOLD_ERR_JOBS_UNKNOWN_TASK') && e.status === 400 && /"nope"/.test(e.message));
    await assert.rejects(h.dispatcher.enqueue({ task: 'echo', args: { text: 5 } }), (e) => isKoboldError(e, 'KOBOLD_ERR_JOBS_BAD_ARGS') && /text/.test(e.message) && /expected string/.test(e.message));
    await assert.rejects(h.dispatcher.enqueue({ task: 'echo', args: { text: 'x'.repeat(200) } }), (e) => isKoboldError(e, 'KOBOLD_ERR_JOBS_ARGS_TOO_LARGE') && e.status === 413);
    await assert.rejects(h.dispatcher.enqueue({ task: 'echo', args: { text: 'x' }, priority: 1.5 }), (e) => isKoboldError(e, 'KOBOLD_ERR_BAD_REQUEST'));
    await h.dispatcher.enqueue({ task: 'echo', args: { text: 'a' } });
    await h.dispatcher.enqueue({ task: 'echo', args: { text: 'b' }, idempotencyKey: 'k' });
    await assert.rejects(h.dispatcher.enqueue({ task: 'echo', args: { text: 'c' } }), (e) => isKoboldError(e, 'KOBOLD_ERR_JOBS_QUEUE_FULL') && /2 runs waiting \(limit 2\)/.test(e.message));
    // A replay of an accepted enqueue still answers while the queue is full.
    assert.equal((await h.dispatcher.enqueue({ task: 'echo', args: { text: 'b' }, idempotencyKey: 'k' })).created, false);
    assert.equal(h.store.list().length, 2, 'nothing half-added');
  } finally { await h.close(); }
});

test('idempotency key: the second enqueue returns the first run', async () => {
  const h = await startHarness();
  try {
    const first = await h.dispatcher.enqueue({ task: 'echo', args: { text: 'a' }, idempotencyKey: 'order-17' });
    const second = await h.dispatcher.enqueue({ task: 'echo', args: { text: 'b' }, idempotencyKey: 'order-17' });
    assert.deepEqual([first.created, second.created, second.run.id], [true, false, first.run.id]);
    assert.equal(h.dispatcher.depth().ready, 1);
  } finally { await h.close(); }
});

test('priorities and delayed runs: higher priority first, runAt respected', async () => {
  const h = await startHarness();
  try {
    const low = (await h.dispatcher.enqueue({ task: 'echo', args: { text: 'low' } })).run;
    const high = (await h.dispatcher.enqueue({ task: 'echo', args: { text: 'high' }, priority: 5 })).run;
    const later = (await h.dispatcher.enqueue({ task: 'echo', args: { text: 'later' }, delayMs: 300, priority: 10 })).run;
    assert.equal(later.state, 'delayed');
    await h.addWorkers(1);
    const [lowDone, highDone] = [await h.waitForState(low.id, ['succeeded']), await h.waitForState(high.id, ['succeeded'])];
    assert.ok(highDone.startedAt! <= lowDone.startedAt!, 'priority 5 ran before priority 0');
    const laterDone = await h.waitForState(later.id, ['succeeded']);
    assert.ok(laterDone.startedAt! >= later.runAt, 'not before its runAt');
  } finally { await h.close(); }
});

test('a task that throws is retried with backoff, then succeeds; errors keep their stack', async () => {
  const h = await startHarness();
  try {
    await h.addWorkers(1);
    const ok = (await h.dispatcher.enqueue({ task: 'flaky', args: { succeedOn: 3 } })).run;
    // Read the state and subscribe in the same tick, as watchers must: nothing happens in between.
    const states: string[] = [h.store.require(ok.id).state];
    h.dispatcher.subscribe(ok.id, (event) => { if (event.type === 'state') states.push(event.run.state); });
    const done = await h.waitForState(ok.id, ['succeeded']);
    assert.deepEqual(done.result, { attempt: 3 });
    assert.deepEqual(states, ['running', 'delayed', 'queued', 'running', 'delayed', 'queued', 'running', 'succeeded']);
    const system = h.store.logs(ok.id).filter((line) => line.stream === 'system').map((line) => line.message);
    assert.match(system[0]!, /attempt 1 of 4 failed: attempt 1 fails/);
    assert.match(system[1]!, /retrying in 30 ms/);
    assert.match(system[3]!, /retrying in 60 ms/);

    const never = (await h.dispatcher.enqueue({ task: 'flaky', args: { succeedOn: 99 } })).run;
    const failed = await h.waitForState(never.id, ['failed']);
    assert.equal(failed.attempt, 4);
    assert.equal(failed.error?.message, 'attempt 4 fails');
    assert.match(failed.error?.stack ?? '', /fixtures\/tasks\.ts/);
  } finally { await h.close(); }
});

test('per-task concurrency limit: runs of a limited task never overlap', async () => {
  const h = await startHarness();
  try {
    await h.addWorkers(2);
    const runs = await Promise.all([1, 2, 3].map(async () => (await h.dispatcher.enqueue({ task: 'single', args: { ms: 60 } })).run));
    const done = await Promise.all(runs.map((run) => h.waitForState(run.id, ['succeeded'])));
    for (let i = 1; i < done.length; i++) assert.ok(done[i]!.startedAt! >= done[i - 1]!.finishedAt!, `run ${i} started after run ${i - 1} finished`);
  } finally { await h.close(); }
});

test('isolation fresh: each run gets a new process, same protocol', async () => {
  const h = await startHarness();
  try {
    const a = (await h.dispatcher.enqueue({ task: 'isolated' })).run;
    const b = (await h.dispatcher.enqueue({ task: 'isolated' })).run;
    const [doneA, doneB] = [await h.waitForState(a.id, ['succeeded'], 10_000), await h.waitForState(b.id, ['succeeded'], 10_000)];
    const pids = [(doneA.result as { pid: number }).pid, (doneB.result as { pid: number }).pid];
    assert.notEqual(pids[0], pids[1]);
    assert.ok(!pids.includes(process.pid));
    assert.equal(doneA.workerPid, pids[0]);
  } finally { await h.close(); }
});

test('queue depth is reported for scaling', async () => {
  const depths: unknown[] = [];
  const h = await startHarness();
  try {
    // The harness has no onQueueDepth; read depth() directly as the callback would get it.
    await h.dispatcher.enqueue({ task: 'echo', args: { text: 'x' } });
    depths.push(h.dispatcher.depth());
    assert.deepEqual(depths[0], { ready: 1, delayed: 0, running: 0, workers: 0, freeSlots: 0 });
    await h.addWorkers(1, { concurrency: 3 });
    await waitFor('run done', () => h.dispatcher.depth().ready === 0 && h.dispatcher.depth().running === 0);
    assert.deepEqual(h.dispatcher.depth(), { ready: 0, delayed: 0, running: 0, workers: 1, freeSlots: 3 });
  } finally { await h.close(); }
});

test('a worker with concurrency 2 runs two async runs at once, each with its own output', async () => {
  const h = await startHarness();
  try {
    const [worker] = await h.addWorkers(1, { concurrency: 2 });
    const a = (await h.dispatcher.enqueue({ task: 'chatty' })).run;
    const b = (await h.dispatcher.enqueue({ task: 'single', args: { ms: 100 } })).run;
    const c = (await h.dispatcher.enqueue({ task: 'chatty' })).run;
    assert.deepEqual([a, b, c].map((run) => h.store.require(run.id).state), ['running', 'running', 'queued']);
    const done = await Promise.all([a, b, c].map((run) => h.waitForState(run.id, ['succeeded'])));
    assert.ok(done.every((run) => run.workerPid === worker!.pid));
    for (const run of [a, c]) assert.deepEqual(h.store.logs(run.id).map((line) => line.stream), ['log', 'stdout', 'stderr', 'stdout']);
    assert.deepEqual(h.store.logs(b.id), []);
  } finally { await h.close(); }
});

test('a worker with a run limit drains and exits; other workers take the rest', async () => {
  const h = await startHarness();
  try {
    const [limited] = await h.addWorkers(1, { maxRuns: 2 });
    const runs = await Promise.all([1, 2].map(async (i) => (await h.dispatcher.enqueue({ task: 'echo', args: { text: `${i}` } })).run));
    await Promise.all(runs.map((run) => h.waitForState(run.id, ['succeeded'])));
    await waitFor('the limited worker exits', () => limited!.exitCode !== null, 5000);
    assert.equal(limited!.exitCode, 0);
    const third = (await h.dispatcher.enqueue({ task: 'echo', args: { text: '3' } })).run;
    assert.equal(h.store.require(third.id).state, 'queued');
    const [fresh] = await h.addWorkers(1);
    assert.equal((await h.waitForState(third.id, ['succeeded'])).workerPid, fresh!.pid);
  } finally { await h.close(); }
});

test('enqueues of one turn share one commit, and each ack comes only once its run is committed', async () => {
  const h = await startHarness({ maxQueued: 1000 });
  const reader = new Database(`${h.dir}/jobs.sqlite`, { readonly: true });
  const committed = reader.prepare('SELECT state FROM runs WHERE id = ?');
  try {
    const before = h.store.commits;
    const acks = Array.from({ length: 200 }, (_, i) =>
      h.dispatcher.enqueue({ task: 'echo', args: { text: `${i}` } }).then(({ run }) => {
        // Read through another connection: what the file holds, not this process's transaction.
        assert.equal((committed.get(run.id) as { state: string } | undefined)?.state, 'queued', `run ${run.id} is committed when acked`);
        return run.id;
      }),
    );
    assert.equal(h.store.commits, before, 'nothing committed within the turn');
    const ids = await Promise.all(acks);
    assert.equal(new Set(ids).size, 200);
    assert.equal(h.store.commits, before + 1, 'one commit for the whole turn');
  } finally {
    reader.close();
    await h.close();
  }
});

test('a run reaches its worker only once its start is committed', async () => {
  const h = await startHarness();
  const reader = new Database(`${h.dir}/jobs.sqlite`, { readonly: true });
  const socket = connect(`${h.dir}/jobs.sock`);
  try {
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    socket.write(`${JSON.stringify({ kind: 'hello', pid: process.pid, concurrency: 1, tasks: ['echo'] })}\n`);
    await waitFor('the worker', () => h.dispatcher.depth().workers === 1);
    const stateWhenReceived = new Promise<string>((resolve) => {
      let text = '';
      socket.setEncoding('utf8').on('data', (chunk: string) => {
        text += chunk;
        const line = text.split('\n')[0]!;
        if (!text.includes('\n')) return;
        const message = JSON.parse(line) as { kind: string; runId: number };
        resolve((reader.prepare('SELECT state FROM runs WHERE id = ?').get(message.runId) as { state: string }).state);
        socket.write(`${JSON.stringify({ kind: 'result', runId: message.runId, value: 'done' })}\n`);
      });
    });
    const { run } = await h.dispatcher.enqueue({ task: 'echo', args: { text: 'x' } });
    assert.equal(await stateWhenReceived, 'running');
    assert.equal((await h.waitForState(run.id, ['succeeded'])).result, 'done');
  } finally {
    socket.destroy();
    reader.close();
    await h.close();
  }
});
