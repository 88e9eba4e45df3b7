import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { segmentPrefix } from '../../src/shm/app-api.js';
import { FIXTURE_APPS, freePort, TestProject } from '../helpers/daemon.js';
import { httpGet } from '../helpers/http.js';

const projects: TestProject[] = [];
after(() => Promise.all(projects.map((p) => p.cleanup())));

test('ctx.shm: a table and a mutex shared by every worker; segments removed when the daemon stops', async () => {
  const port = await freePort();
  const p = new TestProject(port);
  projects.push(p);
  p.writeConfig({ services: { web: { port, workers: 2, scaling: { enabled: false } } }, apps: [{ name: 'counter', module: join(FIXTURE_APPS, 'shm-counter.mjs') }] });
  p.start();
  const pids = new Set<string>();
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let i = 0; i < 25; i += 1) {
        pids.add((await httpGet(`${p.url}/hit`)).body.trim());
        pids.add((await httpGet(`${p.url}/guarded`)).body.trim());
      }
    }),
  );
  assert.equal(pids.size, 2, 'both workers served');
  assert.deepEqual(JSON.parse((await httpGet(`${p.url}/count`)).body), { hits: 200, guarded: 200 });
  const prefix = segmentPrefix(join(p.dir, '.kobold'));
  assert.ok(readdirSync('/dev/shm').some((name) => name.startsWith(prefix)), 'segments exist while running');
  assert.equal(p.kobold(['stop']).code, 0);
  assert.deepEqual(readdirSync('/dev/shm').filter((name) => name.startsWith(prefix)), []);
});
