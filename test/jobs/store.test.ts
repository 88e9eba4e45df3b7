import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isKoboldError } from '../../src/errors.js';
import { RunStore, type NewRun } from '../../src/jobs/store.js';
import { canTransition, runStates, type RunState } from '../../src/jobs/states.js';

function openStore(options: Partial<ConstructorParameters<typeof RunStore>[1]> = {}): { store: RunStore; file: string; done(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'kobold-store-'));
  const file = join(dir, 'jobs.sqlite');
  const store = new RunStore(file, { maxLogLinesPerRun: 5, maxLogLineBytes: 20, ...options });
  return { store, file, done: () => { try { store.close(); } catch { /* already closed */ } rmSync(dir, { recursive: true, force: true }); } };
}

const newRun = (overrides: Partial<NewRun> = {}): NewRun => ({
  task: 'report', args: { n: 1 }, state: 'queued', maxAttempts: 1, priority: 0, runAt: 1000, trigger: 'test', createdAt: 1000, ...overrides,
});

// The moves a run may make; everything else must be refused.
const legal = new Set([
  'queued>running', 'queued>cancelled', 'delayed>queued', 'delayed>cancelled',
  'running>succeeded', 'running>failed', 'running>timed_out', 'running>cancelled', 'running>interrupted', 'running>queued', 'running>delayed',
  'failed>queued', 'timed_out>queued', 'cancelled>queued', 'interrupted>queued', 'interrupted>delayed',
]);

test('the state machine allows exactly the documented moves', () => {
  for (const from of runStates) for (const to of runStates) {
    assert.equal(canTransition(from, to), legal.has(`${from}>${to}`), `${from} -> ${to}`);
  }
});

test('the store applies legal transitions and refuses the others with a clear error', () => {
  const { store, done } = openStore();
  try {
    // Reach each state along a legal path, then try every move out of it.
    const paths: Record<RunState, RunState[]> = {
      queued: [], delayed: [], running: ['running'], succeeded: ['running', 'succeeded'], failed: ['running', 'failed'],
      timed_out: ['running', 'timed_out'], cancelled: ['cancelled'], interrupted: ['running', 'interrupted'],
    };
    for (const from of runStates) for (const to of runStates) {
      const { run } = store.insert(newRun({ state: from === 'delayed' ? 'delayed' : 'queued' }));
      for (const step of paths[from]) store.transition(run.id, step);
      assert.equal(store.require(run.id).state, from);
      if (legal.has(`${from}>${to}`)) {
        assert.equal(store.transition(run.id, to).state, to);
      } else {
        assert.throws(() => store.transition(run.id, to), (error) => isKoboldError(error, 'KOBOLD_ERR_JOBS_BAD_TRANSITION') && error.message.includes(`from ${from} to ${to}`));
        assert.equal(store.require(run.id).state, from);
      }
    }
  } finally { done(); }
});

test('a transition records its patch: times, worker, exit, result and error', () => {
  const { store, done } = openStore();
  try {
    const { run } = store.insert(newRun());
    store.transition(run.id, 'running', { attempt: 1, startedAt: 2000, workerPid: 42 });
    const failed = store.transition(run.id, 'failed', {
      finishedAt: 2500, durationMs: 500, exitCode: null, exitSignal: 'SIGKILL', error: { name: 'Error', message: 'boom', stack: 'Error: boom\n  at x' },
    });
    assert.deepEqual(
      { state: failed.state, attempt: failed.attempt, pid: failed.workerPid, signal: failed.exitSignal, duration: failed.durationMs, error: failed.error?.message, stack: failed.error?.stack },
      { state: 'failed', attempt: 1, pid: 42, signal: 'SIGKILL', duration: 500, error: 'boom', stack: 'Error: boom\n  at x' },
    );
    const { run: other } = store.insert(newRun());
    store.transition(other.id, 'running');
    assert.deepEqual(store.transition(other.id, 'succeeded', { result: { rows: [1, 2] } }).result, { rows: [1, 2] });
    assert.throws(() => store.require(9999), (error) => isKoboldError(error, 'KOBOLD_ERR_JOBS_RUN_NOT_FOUND'));
  } finally { done(); }
});

test('an idempotency key returns the first run', () => {
  const { store, done } = openStore();
  try {
    const first = store.insert(newRun({ idempotencyKey: 'k1' }));
    const second = store.insert(newRun({ idempotencyKey: 'k1', args: { n: 2 } }));
    assert.equal(first.created, true);
    assert.equal(second.created, false);
    assert.equal(second.run.id, first.run.id);
    assert.deepEqual(second.run.args, { n: 1 });
    assert.notEqual(store.insert(newRun({ idempotencyKey: 'k2' })).run.id, first.run.id);
  } finally { done(); }
});

test('markInterrupted turns runs left running into interrupted, and the records survive reopening', () => {
  const { store, file, done } = openStore();
  try {
    const { run: a } = store.insert(newRun());
    const { run: b } = store.insert(newRun());
    store.transition(a.id, 'running', { startedAt: 1500, attempt: 1 });
    store.close();
    const reopened = new RunStore(file, { maxLogLinesPerRun: 5, maxLogLineBytes: 20 });
    try {
      const interrupted = reopened.markInterrupted(3000);
      assert.deepEqual(interrupted.map((run) => [run.id, run.state, run.durationMs, run.error?.code]), [[a.id, 'interrupted', 1500, 'KOBOLD_ERR_JOBS_INTERRUPTED']]);
      assert.deepEqual(reopened.waiting().map((run) => run.id), [b.id]);
    } finally { reopened.close(); }
  } finally { done(); }
});

test('log lines are batched, numbered, truncated and bounded per run (the oldest go)', async () => {
  const { store, done } = openStore();
  try {
    const { run } = store.insert(newRun());
    for (let i = 1; i <= 8; i++) store.queueLog({ runId: run.id, at: i, attempt: 1, stream: 'log', level: 'info', message: `line ${i}` });
    store.queueLog({ runId: run.id, at: 9, attempt: 1, stream: 'stderr', level: 'error', message: 'x'.repeat(50) });
    assert.equal(store.require(run.id).logLines, 0, 'not written before the commit or a read of the lines');
    await new Promise((resolve) => setTimeout(resolve, 40));
    const lines = store.logs(run.id);
    assert.deepEqual(lines.map((line) => line.seq), [5, 6, 7, 8, 9]);
    assert.equal(lines[4]!.message, `${'x'.repeat(20)}… [truncated]`);
    assert.deepEqual(store.logs(run.id, { afterSeq: 7 }).map((line) => line.seq), [8, 9]);
    const record = store.require(run.id);
    assert.deepEqual([record.logLines, record.logDropped], [5, 4]);
    store.forgetRun(run.id);
    assert.equal(store.queueLog({ runId: run.id, at: 10, attempt: 2, stream: 'system', level: 'info', message: 'again' }).seq, 10);
  } finally { done(); }
});

test('list filters by state and task, newest first, with a cursor', () => {
  const { store, done } = openStore();
  try {
    const ids = [0, 1, 2, 3].map((i) => store.insert(newRun({ task: i % 2 ? 'odd' : 'even', state: i === 3 ? 'delayed' : 'queued' })).run.id);
    assert.deepEqual(store.list().map((run) => run.id), [...ids].reverse());
    assert.deepEqual(store.list({ task: 'odd' }).map((run) => run.id), [ids[3], ids[1]]);
    assert.deepEqual(store.list({ states: ['delayed'] }).map((run) => run.id), [ids[3]]);
    assert.deepEqual(store.list({ limit: 2, beforeId: ids[3] }).map((run) => run.id), [ids[2], ids[1]]);
    assert.equal(store.countActive('even'), 2);
  } finally { done(); }
});

test('retention deletes finished runs past the age and count limits, never active ones', () => {
  const { store, done } = openStore();
  try {
    const day = 86_400_000;
    const now = 100 * day;
    const finish = (finishedAt: number): number => {
      const { run } = store.insert(newRun());
      store.transition(run.id, 'running');
      store.transition(run.id, 'succeeded', { finishedAt });
      store.queueLog({ runId: run.id, at: finishedAt, attempt: 1, stream: 'log', level: 'info', message: 'x' });
      return run.id;
    };
    const old = finish(now - 10 * day);
    const recent = [finish(now - day), finish(now - day), finish(now - day)];
    const active = store.insert(newRun()).run.id;
    assert.equal(store.applyRetention({ maxAgeDays: 7, maxRuns: 2 }, now), 2);
    assert.equal(store.get(old), undefined);
    assert.equal(store.get(recent[0]!), undefined);
    assert.deepEqual(store.logs(old), []);
    assert.ok(store.get(recent[1]!) && store.get(recent[2]!) && store.get(active));
  } finally { done(); }
});

test('a schedule fire is leased once, and the last fire time is kept', () => {
  const { store, done } = openStore();
  try {
    assert.equal(store.lastFireAt('nightly'), null);
    assert.equal(store.leaseFire('nightly', 5000, 'a'), true);
    assert.equal(store.leaseFire('nightly', 5000, 'b'), false);
    assert.equal(store.leaseFire('nightly', 6000, 'b'), true);
    store.recordFireOutcome('nightly', 6000, 7, 'enqueued');
    assert.equal(store.lastFireAt('nightly'), 6000);
  } finally { done(); }
});

test('the writes of one turn are one transaction, committed at the end of the turn', async () => {
  const { store, file, done } = openStore();
  const reader = new Database(file, { readonly: true });
  const committedRuns = (): number => (reader.prepare('SELECT count(*) AS n FROM runs').get() as { n: number }).n;
  try {
    const before = store.commits;
    const ids = Array.from({ length: 100 }, () => store.insert(newRun()).run.id);
    for (const id of ids.slice(0, 10)) store.transition(id, 'running', { attempt: 1 });
    assert.equal(store.require(ids[0]!).state, 'running', 'this connection reads its own writes at once');
    assert.equal(committedRuns(), 0, 'another connection sees nothing before the commit');
    const order: string[] = [];
    store.afterCommit(() => order.push(`after: ${committedRuns()} runs committed`));
    await store.committed();
    assert.deepEqual(order, ['after: 100 runs committed']);
    assert.equal(committedRuns(), 100);
    assert.equal(store.commits, before + 1);
    // Nothing pending: waiters go on at once, and no empty transaction is committed.
    store.afterCommit(() => order.push('at once'));
    assert.deepEqual(order.slice(1), ['at once']);
    await store.committed();
    assert.equal(store.commits, before + 1);
  } finally {
    reader.close();
    done();
  }
});

test('commit() makes the pending writes durable now, for a read that must not see less', () => {
  const { store, file, done } = openStore();
  const reader = new Database(file, { readonly: true });
  try {
    const { run } = store.insert(newRun());
    store.queueLog({ runId: run.id, at: 1, attempt: 1, stream: 'log', level: 'info', message: 'hello' });
    store.commit();
    assert.equal((reader.prepare('SELECT log_lines FROM runs WHERE id = ?').get(run.id) as { log_lines: number }).log_lines, 1);
  } finally {
    reader.close();
    done();
  }
});
