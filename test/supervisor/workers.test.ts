import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { appConfig, isAlive, TestProject, waitFor } from '../helpers/daemon.js';
import { httpGet } from '../helpers/http.js';

const projects: TestProject[] = [];
after(() => Promise.all(projects.map((p) => p.cleanup())));

async function project(file: string, service: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Promise<TestProject> {
  const p = await TestProject.create((port) => appConfig(port, file, extra, service));
  projects.push(p);
  return p;
}

test('a crashed worker is replaced and counted as a restart', async () => {
  const p = await project('hello.mjs');
  p.start();
  const [victim, survivor] = p.workerPids();
  process.kill(victim!, 'SIGKILL');
  const status = await waitFor(() => {
    const s = p.fullStatus();
    const ready = s.workers.filter((w) => w.state === 'ready');
    return ready.length === 2 && !ready.some((w) => w.pid === victim) ? s : null;
  }, 'a replacement worker');
  assert.ok(status.workers.some((w) => w.pid === survivor), 'the other worker was left alone');
  assert.equal(status.services[0]!.restarts, 1);
  assert.equal(status.workers.find((w) => w.pid !== survivor)!.restarts, 1);
  assert.match(p.log(), /crashed \(SIGKILL\); restarting in \d+ ms/);
});

test('a hung worker stops sending heartbeats, is killed and replaced', async () => {
  const p = await project('hello.mjs', { workers: 1, minWorkers: 1 }, { heartbeatTimeoutMs: 1_000 });
  p.start();
  const [hung] = p.workerPids();
  assert.equal((await httpGet(`${p.url}/hang`)).status, 200);
  await waitFor(() => !isAlive(hung!), 'the hung worker to be killed');
  const [fresh] = await waitFor(() => {
    const pids = p.workerPids();
    return pids.length === 1 && pids[0] !== hung ? pids : null;
  }, 'its replacement');
  assert.match((await httpGet(p.url)).body, new RegExp(`worker ${fresh}`));
  assert.match(p.log(), /sent no heartbeat for \d+ ms; killing it/);
});

test('TTIN adds a web worker and TTOU removes one, within min and max', async () => {
  const p = await project('hello.mjs', { workers: 2, minWorkers: 1, maxWorkers: 3 });
  p.start();
  p.signal('SIGTTIN');
  await waitFor(() => p.workerPids().length === 3, '3 workers');
  p.signal('SIGTTIN'); // already at max
  await waitFor(() => p.log().includes('stays at 3'), 'the max to hold');
  // One signal at a time: the kernel merges a signal sent while the same one is still pending.
  p.signal('SIGTTOU');
  await waitFor(() => p.log().includes('scaling web: 3 -> 2 workers'), 'the first TTOU');
  p.signal('SIGTTOU');
  await waitFor(() => p.fullStatus().workers.length === 1, 'down to 1 worker');
  p.signal('SIGTTOU'); // already at min
  await waitFor(() => p.log().includes('stays at 1'), 'the min to hold');
  assert.equal(p.fullStatus().workers.length, 1);
});

test('a worker that keeps crashing soon after start marks its service failing, not a restart storm', async () => {
  const p = await project('crash-soon.mjs', {
    workers: 1,
    restart: { crashLimit: 3, crashWindowMs: 30_000, backoffInitialMs: 50, backoffMaxMs: 60_000 },
  });
  const started = p.kobold(['start'], { CRASH_AFTER_MS: '300' });
  assert.equal(started.code, 0, started.stderr);
  const status = await waitFor(() => {
    const s = p.fullStatus();
    return s.services[0]!.failing !== null ? s : null;
  }, 'the service to be marked failing');
  assert.match(status.services[0]!.failing!, /3 workers crashed within 30000 ms of starting/);
  assert.match(p.kobold(['status']).stdout, /web \d\/1 FAILING/);
  assert.match(p.log(), /SERVICE web FAILING/);
  // With the backoff at its 60 s maximum, no further worker is started during this test.
  const restarts = status.services[0]!.restarts;
  await new Promise((r) => setTimeout(r, 1_000));
  assert.equal(p.fullStatus().services[0]!.restarts, restarts);
});
