// The `shm` backend's ring in the real daemon: the hub writer SIGKILLed mid-stream is
// replaced by one that continues the streams from the ring (clients see no gap and no
// resync), and a file-backed ring keeps history and positions across `kobold restart`.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { isAlive, type TestProject, waitFor } from '../helpers/daemon.js';
import { apiCall, publishReliably, startHubProject, TestClient } from './daemon-helpers.js';

let project: TestProject;
const clients: TestClient[] = [];
before(async () => {
  project = await startHubProject({ backend: 'shm', ring: { persistent: true, records: 4096 } });
});
after(async () => {
  for (const client of clients) client.close();
  await project.cleanup();
});

function hubWriterPid(): number {
  const writer = project.fullStatus().workers.find((worker) => worker.service === 'hub' && worker.state === 'ready');
  assert.ok(writer, 'a running hub writer');
  return writer.pid;
}

test('the hub writer SIGKILLed: the new one continues from the ring; websocket and refresh clients see every offset', async () => {
  const channel = 'room:writer-kill';
  const live = new TestClient(project.url, 'websocket');
  const polling = new TestClient(project.url, 'refresh');
  clients.push(live, polling);
  for (const client of [live, polling]) {
    client.subscribe(channel);
    await client.connected();
  }
  const first = await publishReliably(project.url, channel, 1);
  for (let i = 2; i <= 3; i++) await publishReliably(project.url, channel, i);
  const victim = hubWriterPid();
  process.kill(victim, 'SIGKILL');
  let last = first;
  for (let i = 4; i <= 6; i++) last = await publishReliably(project.url, channel, i);
  assert.equal(last.epoch, first.epoch, 'the stream kept its epoch');
  assert.equal(last.offset, 6);
  for (const client of [live, polling]) {
    await client.waitForOffsets(channel, 6, `every publication (${client.client.transport})`);
    assert.deepEqual(client.offsets(channel), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(client.resyncs, []);
  }
  assert.ok(!isAlive(victim));
  assert.notEqual(hubWriterPid(), victim);
});

test('with a persistent ring, history and positions survive `kobold restart`', async () => {
  const channel = 'room:persist';
  const first = await publishReliably(project.url, channel, 'a');
  await publishReliably(project.url, channel, 'b');
  const restart = project.kobold(['restart']);
  assert.equal(restart.code, 0, restart.stderr);
  assert.ok(existsSync(join(project.dir, '.kobold/hub.ring')));
  // The first requests may meet keep-alive connections to the stopped daemon.
  const history = await waitFor(() => apiCall(project.url, 'history', { channel, limit: 10 }).catch(() => null), 'the restarted daemon to answer');
  assert.equal(history.status, 200, JSON.stringify(history.body));
  assert.deepEqual(history.body.result.publications.map((p: { data: unknown }) => p.data), ['a', 'b']);
  assert.deepEqual(history.body.result.position, { offset: 2, epoch: first.epoch });
  const next = await publishReliably(project.url, channel, 'c');
  assert.deepEqual(next, { offset: 3, epoch: first.epoch });
});
