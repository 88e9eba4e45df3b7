import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { runExitCodes, type WatchEvent } from '../../src/jobs/api.js';
import { startJobsService, type JobsService } from '../../src/jobs/service.js';
import { fixtureTasks, forkTaskWorker, waitFor } from './helpers.js';

const apiKey = 'secret-key';

async function withService(body: (ctx: { service: JobsService; call: (method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<{ status: number; body: any; headers: Headers }> }) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'kobold-jobs-api-'));
  const service = await startJobsService({ runDir: dir, taskModules: [fixtureTasks], apiKeys: [apiKey], maxQueued: 5, abortGraceMs: 100, drainTimeoutMs: 0 });
  const server: Server = createServer((req, res) => void (service.handleHttp(req, res) || res.writeHead(404).end()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const worker: ChildProcess = forkTaskWorker(service.settings.socketPath);
  worker.on('exit', (code, signal) => service.workerExited(worker.pid!, code, signal));
  try {
    await waitFor('worker', () => service.dispatcher.depth().workers === 1, 10_000);
    await body({
      service,
      async call(method, path, payload, headers = {}) {
        const response = await fetch(`http://127.0.0.1:${port}${path}`, {
          method,
          headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', ...headers },
          ...(payload !== undefined && { body: typeof payload === 'string' ? payload : JSON.stringify(payload) }),
        });
        const text = await response.text();
        return { status: response.status, headers: response.headers, body: response.headers.get('content-type') === 'application/json' ? JSON.parse(text) : text };
      },
    });
  } finally {
    worker.kill('SIGKILL');
    server.close();
    await service.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('HTTP API: enqueue, show, list, logs, cancel, retry, with API key and clear errors', async () => {
  await withService(async ({ call }) => {
    assert.equal((await call('GET', '/api/jobs', undefined, { authorization: '' })).status, 401);
    const wrong = await call('GET', '/api/jobs', undefined, { authorization: 'Bearer nope' });
    assert.deepEqual([wrong.status, wrong.body.error.code], [401, 'KOBOLD_ERR_UNAUTHORIZED']);
    assert.equal((await call('GET', '/api/jobs', undefined, { authorization: '', 'x-api-key': apiKey })).status, 200);

    const created = await call('POST', '/api/jobs', { task: 'chatty' }, { 'idempotency-key': 'once' });
    assert.equal(created.status, 201);
    const id = created.body.run.id;
    const replay = await call('POST', '/api/jobs', { task: 'chatty' }, { 'idempotency-key': 'once' });
    assert.deepEqual([replay.status, replay.body.created, replay.body.run.id], [200, false, id]);

    const deadline = Date.now() + 5000;
    let shown;
    do shown = (await call('GET', `/api/jobs/${id}`)).body.run;
    while (shown.state !== 'succeeded' && Date.now() < deadline);
    assert.equal(shown.state, 'succeeded');
    assert.equal(shown.result, 'ok');
    const logs = await call('GET', `/api/jobs/${id}/logs?after=1`);
    assert.deepEqual(logs.body.lines.map((line: any) => line.seq), [2, 3, 4]);

    const bad: Array<[unknown, number, string, RegExp]> = [
      [{ task: 'nope' }, 400, 'KOBOLD_ERR_JOBS_UNKNOWN_TASK', /nope/],
      [{ task: 'echo', args: { text: 1 } }, 400, 'KOBOLD_ERR_JOBS_BAD_ARGS', /text/],
      [{ task: 'echo', args: { text: 'x' }, extra: 1 }, 400, 'KOBOLD_ERR_BAD_REQUEST', /extra/],
      [{ task: 'echo', args: { text: 'x' }, runAt: 'tomorrow' }, 400, 'KOBOLD_ERR_BAD_REQUEST', /runAt/],
      ['{not json', 400, 'KOBOLD_ERR_BAD_REQUEST', /not JSON/],
      [{ task: 'echo', args: { text: 'x'.repeat(70_000) } }, 413, 'KOBOLD_ERR_JOBS_ARGS_TOO_LARGE', /over the limit/],
    ];
    for (const [payload, status, code, message] of bad) {
      const answer = await call('POST', '/api/jobs', payload);
      assert.deepEqual([answer.status, answer.body.error.code], [status, code], JSON.stringify(payload).slice(0, 80));
      assert.match(answer.body.error.message, message);
    }
    assert.equal((await call('GET', '/api/jobs/999')).status, 404);
    assert.equal((await call('GET', '/api/jobs/abc')).status, 400);
    assert.equal((await call('GET', '/api/jobs?state=weird')).status, 400);

    // The worker is busy with a long run; later ones wait and can be cancelled or fill the queue.
    const long = (await call('POST', '/api/jobs', { task: 'wait', args: { ms: 60_000 } })).body.run;
    const waiting = [];
    for (let i = 0; i < 5; i++) waiting.push((await call('POST', '/api/jobs', { task: 'echo', args: { text: `${i}` }, runAt: new Date(Date.now() + 60_000).toISOString() })).body.run);
    assert.equal(waiting[0].state, 'delayed');
    const full = await call('POST', '/api/jobs', { task: 'echo', args: { text: 'x' } });
    assert.deepEqual([full.status, full.body.error.code, full.headers.get('retry-after')], [503, 'KOBOLD_ERR_JOBS_QUEUE_FULL', '1']);

    const list = await call('GET', '/api/jobs?state=delayed&task=echo&limit=2');
    assert.deepEqual(list.body.runs.map((run: any) => run.id), [waiting[4].id, waiting[3].id]);
    const page2 = await call('GET', `/api/jobs?state=delayed&limit=2&before=${list.body.next}`);
    assert.deepEqual(page2.body.runs.map((run: any) => run.id), [waiting[2].id, waiting[1].id]);

    const cancelWaiting = await call('POST', `/api/jobs/${waiting[0].id}/cancel`);
    assert.deepEqual([cancelWaiting.status, cancelWaiting.body.run.state], [200, 'cancelled']);
    const cancelRunning = await call('POST', `/api/jobs/${long.id}/cancel`);
    assert.equal(cancelRunning.status, 202);
    const again = await call('POST', `/api/jobs/${waiting[0].id}/cancel`);
    assert.deepEqual([again.status, again.body.error.code], [409, 'KOBOLD_ERR_JOBS_BAD_TRANSITION']);
    const retried = await call('POST', `/api/jobs/${waiting[0].id}/retry`);
    assert.deepEqual([retried.status, retried.body.run.state], [200, 'queued']);
    assert.equal((await call('POST', `/api/jobs/${id}/retry`)).status, 409, 'a succeeded run is not retried');
  });
});

test('watchRun replays kept lines then streams to the end; --wait exit codes follow the outcome', async () => {
  await withService(async ({ service, call }) => {
    const { run } = await service.dispatcher.enqueue({ task: 'flaky', args: { succeedOn: 2 } });
    const events: WatchEvent[] = [];
    await new Promise<void>((resolve) => {
      void service.api.watchRun(run.id, (event) => {
        events.push(event);
        if (event.type === 'end') resolve();
      });
    });
    const end = events.at(-1) as Extract<WatchEvent, { type: 'end' }>;
    assert.equal(end.run.state, 'succeeded');
    assert.equal(runExitCodes[end.run.state], 0);
    assert.ok(events.some((event) => event.type === 'log' && /attempt 1 of 4 failed/.test(event.line.message)));

    // Watching a finished run replays its lines and ends at once.
    const replay: WatchEvent[] = [];
    service.api.watchRun(run.id, (event) => replay.push(event));
    assert.deepEqual(replay.map((event) => event.type), [...replay.slice(0, -1).map(() => 'log'), 'end']);

    // The same stream over HTTP, as JSON lines.
    const failing = (await service.dispatcher.enqueue({ task: 'crash', args: { code: 9 } })).run;
    const streamed = await call('GET', `/api/jobs/${failing.id}/logs?follow=1`);
    const lines = (streamed.body as string).trim().split('\n').map((line) => JSON.parse(line));
    const last = lines.at(-1);
    assert.deepEqual([last.type, last.run.state, last.run.exitCode], ['end', 'failed', 9]);
    assert.equal(runExitCodes[last.run.state as 'failed'], 1);
  });
});
