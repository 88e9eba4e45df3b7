import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { appConfig, TestProject, waitFor } from '../helpers/daemon.js';
import { httpGet } from '../helpers/http.js';

const projects: TestProject[] = [];
after(() => Promise.all(projects.map((p) => p.cleanup())));

async function oneWorker(limits: Record<string, number>): Promise<{ p: TestProject; first: number }> {
  const p = await TestProject.create((port) => appConfig(port, 'hello.mjs', {}, { workers: 1, minWorkers: 1, limits }));
  projects.push(p);
  p.start();
  return { p, first: p.workerPids()[0]! };
}

async function replaced(p: TestProject, first: number, reason: RegExp): Promise<void> {
  await waitFor(() => {
    const pids = p.workerPids();
    return pids.length === 1 && pids[0] !== first;
  }, `worker ${first} to be recycled`);
  assert.match(p.log(), reason);
  assert.equal((await httpGet(p.url)).status, 200);
}

test('maxRequests recycles a worker after its requests', async () => {
  const { p, first } = await oneWorker({ maxRequests: 20 });
  for (let i = 0; i < 25; i += 1) assert.equal((await httpGet(p.url)).status, 200);
  await replaced(p, first, /recycling worker \d+ \(web\): maxRequests \(\d+ >= 20\)/);
});

test('maxMemoryMb recycles a worker whose RSS grew past it', async () => {
  const { p, first } = await oneWorker({ maxMemoryMb: 200 });
  assert.equal((await httpGet(`${p.url}/alloc?mb=250`)).status, 200);
  await replaced(p, first, /maxMemoryMb \(rss [\d.]+ MB > 200 MB\)/);
});

test('maxIdleMs recycles a worker that served nothing for that long', async () => {
  const { p, first } = await oneWorker({ maxIdleMs: 1_000 });
  await replaced(p, first, /maxIdleMs \(idle \d+ ms\)/);
});

test('maxLifetimeMs recycles a worker that has run that long', async () => {
  const { p, first } = await oneWorker({ maxLifetimeMs: 1_500 });
  await replaced(p, first, /maxLifetimeMs \(up \d+ ms\)/);
});
