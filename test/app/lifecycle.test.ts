import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { FIXTURE_APPS, freePort, TestProject, waitFor } from '../helpers/daemon.js';
import { httpGet } from '../helpers/http.js';

const projects: TestProject[] = [];
after(() => Promise.all(projects.map((p) => p.cleanup())));

async function lifecycleProject(appConfig: Record<string, unknown>, app: Record<string, unknown> = {}): Promise<{ p: TestProject; trace: () => string[] }> {
  const port = await freePort();
  const p = new TestProject(port);
  projects.push(p);
  const traceFile = join(p.dir, 'trace.log');
  p.writeConfig({
    heartbeatIntervalMs: 200,
    services: { web: { port, workers: 1, scaling: { enabled: false } } },
    apps: [{ name: 'life', module: join(FIXTURE_APPS, 'lifecycle.mjs'), config: { traceFile, ...appConfig }, ...app }],
  });
  const trace = () => {
    try {
      return readFileSync(traceFile, 'utf8').trim().split('\n');
    } catch {
      return [];
    }
  };
  return { p, trace };
}

function eventsOf(lines: string[], pid: number): string[] {
  return lines.filter((line) => line.startsWith(`${pid} `)).map((line) => line.split(' ').slice(2).join(' '));
}

test('hooks run in order: setup, ready, drain, close; timers stop on drain; resources close last', async () => {
  const { p, trace } = await lifecycleProject({});
  p.start();
  const [pid] = p.workerPids();
  await waitFor(() => eventsOf(trace(), pid!).includes('tick'), 'a timer tick');
  p.kobold(['stop']);
  const events = eventsOf(trace(), pid!).filter((e) => e !== 'tick');
  assert.deepEqual(events, ['setup', 'ready', 'drain', 'close', 'resource-closed']);
  const afterDrain = eventsOf(trace(), pid!).slice(eventsOf(trace(), pid!).indexOf('drain'));
  assert.ok(!afterDrain.includes('tick'), 'no timer fired after drain');
});

test('a setup hook that outlives its timeout fails the start with a clear message', async () => {
  const { p } = await lifecycleProject({ hangInSetupMs: 5_000 }, { timeouts: { setupMs: 300 } });
  const result = p.kobold(['start']);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /app "life": setup hook did not finish within 300 ms/);
});

test('reload --config-only: an app with onConfig takes the new config in place; without it the worker is replaced', async () => {
  const { p, trace } = await lifecycleProject({ reconfigurable: true, greeting: 'one' });
  p.start();
  const [pid] = p.workerPids();
  const config = JSON.parse(readFileSync(join(p.dir, 'kobold.config.json'), 'utf8'));
  config.apps[0].config.greeting = 'two';
  p.writeConfig(config);
  const reload = p.kobold(['reload', '--config-only']);
  assert.equal(reload.code, 0, reload.stderr);
  assert.match(reload.stdout, /0 workers replaced, 1 reconfigured in place/);
  assert.deepEqual(p.workerPids(), [pid], 'same worker');
  assert.ok(eventsOf(trace(), pid!).includes('config two'));
  assert.match((await httpGet(p.url)).body, /"two"/);

  config.apps[0].config.reconfigurable = false; // the new worker registers no onConfig…
  config.apps[0].config.greeting = 'three';
  p.writeConfig(config);
  // …but the running one still has its hook, so this one is taken in place too:
  assert.match(p.kobold(['reload', '--config-only']).stdout, /1 reconfigured in place/);
  p.kobold(['reload']); // a full reload replaces the worker: now it has no onConfig
  const [second] = p.workerPids();
  config.apps[0].config.greeting = 'four';
  p.writeConfig(config);
  assert.match(p.kobold(['reload', '--config-only']).stdout, /1 workers replaced, 0 reconfigured in place/);
  assert.notDeepEqual(p.workerPids(), [second]);
  assert.match((await httpGet(p.url)).body, /"four"/);
});
