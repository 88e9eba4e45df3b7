import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { appConfig, FIXTURE_APPS, freePort, TestProject, waitFor } from '../helpers/daemon.js';
import { httpGet } from '../helpers/http.js';

const projects: TestProject[] = [];
after(() => Promise.all(projects.map((p) => p.cleanup())));

test('the default policy adds a worker under load and removes it when idle', async () => {
  const scaling = { enabled: true, windowMs: 1_000, cooldownMs: 500, highElu: 0.5, lowElu: 0.1 };
  const p = await TestProject.create((port) => appConfig(port, 'hello.mjs', {}, { workers: 1, minWorkers: 1, maxWorkers: 2, scaling }));
  projects.push(p);
  p.start();
  assert.match((await httpGet(`${p.url}/burn?ms=5000`)).body, /burning/);
  await waitFor(() => p.workerPids().length === 2, 'a second worker while the first is busy', 30_000);
  assert.match(p.log(), /autoscaling web: 1 -> 2 workers \(mean ELU [\d.]+\)/);
  await waitFor(() => p.fullStatus().workers.length === 1, 'back to one worker when idle', 30_000);
  assert.match(p.log(), /autoscaling web: 2 -> 1 workers/);
});

test('a scaling policy from the config decides the count, kept within min and max', async () => {
  const port = await freePort();
  const p = new TestProject(port);
  projects.push(p);
  p.writeFile(
    'kobold.config.mjs',
    `export default {
      heartbeatIntervalMs: 200,
      services: { web: { port: ${port}, workers: 1, minWorkers: 1, maxWorkers: 3,
        scaling: { windowMs: 600, cooldownMs: 0, policy: ({ workers }) => workers + 10 } } },
      apps: [{ name: 'app', module: ${JSON.stringify(join(FIXTURE_APPS, 'hello.mjs'))} }],
    };`,
  );
  p.start();
  await waitFor(() => p.workerPids().length === 3, 'the policy to scale to the max of 3', 30_000);
  assert.match(p.log(), /autoscaling web: \d -> 3 workers/);
});
