// The jobs API over its UNIX socket: a JobsApiClient against serveJobsApi in this process.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { isKoboldError } from '../../src/errors.js';
import type { WatchEvent } from '../../src/jobs/api.js';
import { JobsApiClient } from '../../src/jobs/api-client.js';
import { serveJobsApi } from '../../src/jobs/api-socket.js';
import { startJobsService } from '../../src/jobs/service.js';
import { fixtureTasks } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'kobold-jobs-socket-'));
const socketPath = join(dir, 'jobs-api.sock');
const service = await startJobsService({ runDir: dir, taskModules: [fixtureTasks], drainTimeoutMs: 0 });
const server = await serveJobsApi(service.api, { socketPath, maxMessageBytes: 64 * 1024, logger: { error() {} } });
const client = new JobsApiClient(socketPath, { connectTimeoutMs: 200 });
after(async () => {
  client.close();
  await server.close();
  await service.close();
  rmSync(dir, { recursive: true, force: true });
});

test('the socket is private and the calls go through', async () => {
  assert.equal(statSync(socketPath).mode & 0o777, 0o600);
  const { run, created } = await client.enqueue({ task: 'echo', args: { text: 'x' }, delayMs: 60_000, trigger: 'cli' });
  assert.equal(created, true);
  assert.equal(run.state, 'delayed');
  assert.equal((await client.show(run.id)).trigger, 'cli');
  assert.deepEqual((await client.list({ states: ['delayed'] })).map((r) => r.id), [run.id]);

  const events: WatchEvent[] = [];
  const ended = new Promise<void>((resolve) => void client.watchRun(run.id, (event) => (events.push(event), event.type === 'end' && resolve())));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal((await client.cancel(run.id)).state, 'cancelled');
  await ended;
  assert.deepEqual(events.map((event) => event.type), ['state', 'state', 'end']);
  assert.ok((await client.logs(run.id)).length === 0);
});

test('errors arrive as the KoboldError the jobs worker threw', async () => {
  await assert.rejects(client.enqueue({ task: 'nope' }), (error) => isKoboldError(error, 'KOBOLD_ERR_JOBS_UNKNOWN_TASK') && error.status === 400);
  await assert.rejects(client.show(123_456), (error) => isKoboldError(error, 'KOBOLD_ERR_JOBS_RUN_NOT_FOUND'));
});

test('a malformed request gets a bad-request reply, not a dropped connection', async () => {
  const reply = await new Promise<string>((resolve) => {
    const socket = createConnection(socketPath, () => socket.write('{"kind":"show","seq":7,"id":"one"}\n'));
    socket.setEncoding('utf8');
    socket.once('data', (line: string) => {
      socket.destroy();
      resolve(line);
    });
  });
  const parsed = JSON.parse(reply) as { ack: number; ok: boolean; error: { code: string } };
  assert.deepEqual([parsed.ack, parsed.ok, parsed.error.code], [7, false, 'KOBOLD_ERR_BAD_REQUEST']);
});

test('a client with nothing listening fails with KOBOLD_ERR_JOBS_UNAVAILABLE', async () => {
  const lonely = new JobsApiClient(join(dir, 'nobody.sock'), { connectTimeoutMs: 100 });
  await assert.rejects(lonely.list(), (error) => isKoboldError(error, 'KOBOLD_ERR_JOBS_UNAVAILABLE') && error.status === 503);
});
