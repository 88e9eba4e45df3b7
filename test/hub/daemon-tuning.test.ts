// The daemon's process-wide tuning for many idle hub connections: workers accepting
// connections themselves (clusterSchedulingPolicy: none) and a capped V8 young generation
// (workerMaxSemiSpaceMb, masterMaxSemiSpaceMb), checked on the real daemon.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { TestProject } from '../helpers/daemon.js';
import { apiCall, hubProjectConfig } from './daemon-helpers.js';
import { RawClient } from './harness.js';

let project: TestProject;
const clients: RawClient[] = [];

before(async () => {
  project = await TestProject.create((port) => ({ ...hubProjectConfig(port, { backend: 'socket' }), clusterSchedulingPolicy: 'none', workerMaxSemiSpaceMb: 1, masterMaxSemiSpaceMb: 2 }));
  project.start();
});

after(async () => {
  for (const client of clients) client.close();
  await project.cleanup();
});

const commandLine = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');

test('every worker runs with the young-generation cap, the master with its own', () => {
  const { pid: master, workers } = project.fullStatus();
  assert.ok(workers.length >= 3, 'two web workers and the hub writer');
  for (const { pid } of workers) {
    const argv = commandLine(pid);
    assert.ok(argv.includes('--max-semi-space-size=1'), `worker ${pid}: ${argv.join(' ')}`);
  }
  const argv = commandLine(master);
  assert.ok(argv.includes('--max-semi-space-size=2') && !argv.includes('--max-semi-space-size=1'), `master ${master}: ${argv.join(' ')}`);
});

test('with workers accepting connections themselves, WebSocket clients connect and receive publications', async () => {
  for (let i = 0; i < 4; i++) {
    const client = await RawClient.open(`ws://127.0.0.1:${project.port}/hub/ws`);
    clients.push(client);
    assert.equal((await client.call('connect', {})).error, undefined);
    assert.equal((await client.call('subscribe', { channel: 'room:tuned' })).error, undefined);
  }
  const published = await apiCall(`http://127.0.0.1:${project.port}`, 'publish', { channel: 'room:tuned', data: { n: 1 } });
  assert.equal(published.status, 200);
  for (const client of clients) {
    const push = await client.waitFor((frame) => frame.push === 'pub' && frame.channel === 'room:tuned');
    assert.deepEqual(push.data, { n: 1 });
  }
});
