import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { appConfig, isAlive, TestProject, waitFor } from '../helpers/daemon.js';
import { httpGet, keepAliveLoad } from '../helpers/http.js';

const projects: TestProject[] = [];
after(() => Promise.all(projects.map((p) => p.cleanup())));

test('no request fails under keep-alive load across reloads, USR2 and limit recycles', async () => {
  const p = await TestProject.create((port) => appConfig(port, 'hello.mjs', {}, { workers: 2, limits: { maxRequests: 3_000, maxRequestsJitter: 1_000 } }));
  projects.push(p);
  p.start();
  const load = keepAliveLoad(p.url, 8, 120_000);
  await new Promise((r) => setTimeout(r, 300));

  for (let i = 0; i < 2; i += 1) {
    const reload = await p.koboldAsync(['reload']);
    assert.equal(reload.code, 0, reload.stderr);
  }
  const beforeUsr2 = p.workerPids();
  p.signal('SIGUSR2');
  await waitFor(() => {
    const pids = p.workerPids();
    return pids.length === 2 && pids.every((pid) => !beforeUsr2.includes(pid));
  }, 'USR2 to replace every worker', 30_000);
  await waitFor(() => p.log().includes('recycling worker'), 'a maxRequests recycle under load', 60_000);

  const result = await load.stop();
  assert.deepEqual(result.errors.slice(0, 5), [], `failed requests: ${result.failed}`);
  assert.equal(result.failed, 0);
  assert.ok(result.ok > 1_000, `only ${result.ok} requests went through`);
  assert.ok(result.pids.size >= 6, `answers came from ${result.pids.size} workers`);
});

test('a graceful stop lets an in-flight slow request finish', async () => {
  const p = await TestProject.create((port) => appConfig(port, 'hello.mjs'));
  projects.push(p);
  p.start();
  const master = p.masterPid()!;
  const slow = httpGet(`${p.url}/slow?ms=1500`);
  await waitFor(() => p.fullStatus().workers.some((w) => w.state === 'ready'), 'status');
  await new Promise((r) => setTimeout(r, 200)); // the request is in flight
  const stop = p.koboldAsync(['stop']);
  const res = await slow;
  assert.equal(res.status, 200);
  assert.match(res.body, /slow done/);
  assert.equal((await stop).code, 0);
  assert.equal(isAlive(master), false);
});

test('a second TERM stops at once, without waiting for in-flight requests', async () => {
  const p = await TestProject.create((port) => appConfig(port, 'hello.mjs', { gracefulTimeoutMs: 60_000 }));
  projects.push(p);
  p.start();
  const master = p.masterPid()!;
  const slow = httpGet(`${p.url}/slow?ms=30000`).then(
    () => 'completed',
    () => 'cut off',
  );
  await new Promise((r) => setTimeout(r, 300));
  p.signal('SIGTERM');
  await waitFor(() => p.log().includes('stopping gracefully'), 'the graceful stop to begin');
  p.signal('SIGTERM');
  await waitFor(() => !isAlive(master), 'the master to exit', 10_000);
  assert.equal(await slow, 'cut off');
});
