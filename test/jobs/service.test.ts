// Persistence across a graceful restart and across a SIGKILLed jobs process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunStore } from '../../src/jobs/store.js';
import { isAlive, killHost, startHost, waitFor, type Host } from './helpers.js';

const apiKey = 'test-key';

async function waitForRun(host: Host, id: number, states: string[], timeoutMs = 8000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await host.request('GET', `/api/jobs/${id}`);
    if (states.includes(body.run?.state)) return body.run;
    if (Date.now() > deadline) throw new Error(`run ${id} stayed ${body.run?.state}, wanted ${states.join('|')}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

test('a SIGKILLed jobs process: running runs become interrupted and are retried; queued runs survive', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kobold-jobs-kill-'));
  const hosts: Host[] = [];
  try {
    const first = await startHost(dir, apiKey, 2);
    hosts.push(first);
    const retried = (await first.request('POST', '/api/jobs', { task: 'interruptible' })).body.run;
    const once = (await first.request('POST', '/api/jobs', { task: 'wait', args: { ms: 60_000 } })).body.run; // no retries
    await waitForRun(first, retried.id, ['running']);
    await waitForRun(first, once.id, ['running']);
    // Both workers are busy: this one stays queued.
    const queued = (await first.request('POST', '/api/jobs', { task: 'echo', args: { text: 'still here' } })).body.run;
    first.child.kill('SIGKILL');
    await waitFor('host gone', () => first.child.exitCode !== null || first.child.signalCode !== null);
    // Its task workers lose the dispatcher, abort their runs and exit on their own.
    await waitFor('orphaned workers exit', () => first.workerPids.every((pid) => !isAlive(pid)), 5000);

    const second = await startHost(dir, apiKey, 2);
    hosts.push(second);
    const again = await waitForRun(second, retried.id, ['succeeded']);
    assert.equal(again.attempt, 2);
    assert.deepEqual(again.result, { attempt: 2 });
    const lines = (await second.request('GET', `/api/jobs/${retried.id}/logs`)).body.lines.map((line: any) => line.message);
    assert.ok(lines.some((line: string) => /cut off by a daemon stop/.test(line)), lines.join('\n'));
    // `wait` has no retries left: it stays interrupted, with the reason.
    const interrupted = await waitForRun(second, once.id, ['interrupted']);
    assert.equal(interrupted.error.code, 'KOBOLD_ERR_JOBS_INTERRUPTED');
    assert.deepEqual((await waitForRun(second, queued.id, ['succeeded'])).result.echoed, 'still here');
  } finally {
    hosts.forEach(killHost);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a graceful restart keeps queued and delayed runs; a run still going at the drain deadline is interrupted', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kobold-jobs-restart-'));
  const hosts: Host[] = [];
  try {
    const first = await startHost(dir, apiKey, 1);
    hosts.push(first);
    const busy = (await first.request('POST', '/api/jobs', { task: 'wait', args: { ms: 60_000 } })).body.run;
    await waitForRun(first, busy.id, ['running']);
    const queued = (await first.request('POST', '/api/jobs', { task: 'echo', args: { text: 'queued' } })).body.run;
    const soon = (await first.request('POST', '/api/jobs', { task: 'echo', args: { text: 'soon' }, delayMs: 1000 })).body.run;
    const later = (await first.request('POST', '/api/jobs', { task: 'echo', args: { text: 'later' }, delayMs: 600_000 })).body.run;
    assert.deepEqual([queued.state, soon.state, later.state], ['queued', 'delayed', 'delayed']);
    first.child.kill('SIGTERM');
    await waitFor('host stopped', () => first.child.exitCode !== null, 5000);
    assert.equal(first.child.exitCode, 0);

    const second = await startHost(dir, apiKey, 1);
    hosts.push(second);
    assert.equal((await waitForRun(second, busy.id, ['interrupted'])).error.code, 'KOBOLD_ERR_JOBS_INTERRUPTED');
    assert.equal((await waitForRun(second, queued.id, ['succeeded'])).result.echoed, 'queued');
    const done = await waitForRun(second, soon.id, ['succeeded']);
    assert.ok(done.startedAt >= soon.runAt, 'not before its runAt');
    assert.equal((await second.request('GET', `/api/jobs/${later.id}`)).body.run.state, 'delayed');
  } finally {
    hosts.forEach(killHost);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an acknowledged enqueue survives a SIGKILL right after the ack', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kobold-jobs-ack-'));
  const hosts: Host[] = [];
  try {
    const host = await startHost(dir, apiKey, 1);
    hosts.push(host);
    // Sent together, so that many share a commit; delayed, so that none runs meanwhile.
    const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => host.request('POST', '/api/jobs', { task: 'echo', args: { text: `${i}` }, delayMs: 600_000 })));
    host.child.kill('SIGKILL');
    assert.deepEqual(new Set(answers.map((answer) => answer.status)), new Set([201]));
    await waitFor('host gone', () => host.child.exitCode !== null || host.child.signalCode !== null);
    const store = new RunStore(join(dir, 'jobs.sqlite'), { maxLogLinesPerRun: 10, maxLogLineBytes: 100 });
    try {
      for (const { body } of answers) assert.equal(store.get(body.run.id)?.state, 'delayed', `run ${body.run.id} was acked`);
    } finally { store.close(); }
  } finally {
    hosts.forEach(killHost);
    rmSync(dir, { recursive: true, force: true });
  }
});
