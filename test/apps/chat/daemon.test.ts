// The chat app in the real daemon: 2 web workers and the hub writer, used as a browser
// would (page, client bundle, API, hub transports), flood control across both workers,
// and its history across `kobold restart`.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import { chatHubNamespaces } from '../../../src/apps/chat/app.js';
import { TestProject, waitFor } from '../../helpers/daemon.js';
import { ChatUser, until } from './harness.js';

const SECRET = 'chat-daemon-test-secret-chat-daemon-test';
const API_KEY = 'chat-daemon-api-key-0123456789';
const FLOOD = { ratePerSecond: 0.2, burst: 5 };

let project: TestProject;
const users: ChatUser[] = [];

before(async () => {
  project = await TestProject.create((port) => ({
    gracefulTimeoutMs: 10_000,
    heartbeatIntervalMs: 200,
    services: { web: { port, workers: 2, maxWorkers: 2, scaling: { enabled: false } } },
    apps: [{ name: 'chat', module: 'kobold:chat', config: { dataDir: 'chat-data', apiKey: API_KEY, flood: FLOOD } }],
    hub: { namespaces: chatHubNamespaces(), tokenSecret: SECRET, limits: { longPollTimeoutMs: 2000 } },
  }));
  project.start();
  await waitFor(async () => (await fetch(project.url + '/').catch(() => null))?.ok, 'the chat page');
});

after(async () => {
  for (const user of users) user.close();
  await project.cleanup();
});

test('the page, the client bundle and the API are served by the daemon', async () => {
  const page = await fetch(project.url + '/');
  assert.match(await page.text(), /<script type="module" src="\/chat\/assets\/chat.js">/);
  assert.equal((await fetch(project.url + '/chat/assets/chat.js')).status, 200);
  const client = await (await fetch(project.url + '/hub/client.js')).text();
  assert.match(client, /export\s*\{[^}]*HubClient/);
  assert.doesNotMatch(client, /export\s*\{[^}]*messagePack/, 'the default client leaves MessagePack out');
  const withMessagePack = await (await fetch(project.url + '/hub/client-msgpack.js')).text();
  assert.match(withMessagePack, /export\s*\{[^}]*messagePack/);
  const rooms = await (await fetch(project.url + '/chat/api/rooms')).json();
  assert.deepEqual(rooms.result.rooms.map((r: { name: string }) => r.name), ['lobby']);
});

/** A send on a connection of its own, so node:cluster hands each to the next web worker. */
function sendOnNewConnection(token: string, text: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ room: 'lobby', text });
    const req = request(
      project.url + '/chat/api/send',
      { method: 'POST', agent: false, headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function webRequests(): Map<number, number> {
  return new Map(project.fullStatus().workers.filter((w) => w.service === 'web' && w.state === 'ready').map((w) => [w.pid, w.requests]));
}

test('flood control counts a user once across both web workers', async () => {
  const dan = await ChatUser.guest(project.url, 'dan');
  users.push(dan);
  // /help counts like a message and publishes nothing, so the lobby's history stays as the next test expects.
  const before = webRequests();
  assert.equal(before.size, 2);
  const started = performance.now();
  const statuses = await Promise.all(Array.from({ length: 20 }, () => sendOnNewConnection(dan.token, '/help')));
  const elapsedSeconds = (performance.now() - started) / 1000;
  assert.deepEqual(new Set(statuses), new Set([200, 429]));
  const accepted = statuses.filter((status) => status === 200).length;
  // Per-worker buckets would accept a burst on each worker (10 of 20).
  assert.ok(accepted >= FLOOD.burst && accepted <= FLOOD.burst + Math.floor(elapsedSeconds * FLOOD.ratePerSecond), `${accepted} accepted in ${elapsedSeconds.toFixed(1)} s`);
  // Both workers took part (their request counters arrive with the heartbeat).
  const served = await waitFor(() => {
    const now = webRequests();
    const deltas = [...before].map(([pid, count]) => (now.get(pid) ?? count) - count);
    return deltas.reduce((a, b) => a + b, 0) >= 20 ? deltas : null;
  }, 'the workers\' request counters');
  assert.ok(served.every((delta) => delta > 0), `requests per worker: ${served.join(', ')}`);
  assert.doesNotMatch(project.log(), /flood control is per worker/);
});

test('two users chat through the daemon (any worker), and history survives kobold restart', async () => {
  const ann = await ChatUser.guest(project.url, 'ann');
  const bob = await ChatUser.guest(project.url, 'bob');
  users.push(ann, bob);
  const { joined } = await ann.ok('join', { room: 'lobby' });
  await ann.connect([{ channel: 'chat:lobby', since: joined.position }]);
  for (const n of [1, 2, 3, 4]) assert.equal((await bob.send('lobby', `hello ${n}`)).status, 200);
  await until(() => ann.events('chat:lobby').length === 4, 'four messages at ann');
  assert.deepEqual(
    ann.events('chat:lobby').map((e) => e.text),
    ['hello 1', 'hello 2', 'hello 3', 'hello 4'],
  );
  const system = await new ChatUser(project.url).call('system', { room: 'lobby', text: 'restarting' }, { 'x-api-key': API_KEY });
  assert.equal(system.status, 200);

  const restart = project.kobold(['restart']);
  assert.equal(restart.code, 0, restart.stderr + restart.stdout);
  await waitFor(async () => (await fetch(project.url + '/chat/api/rooms').catch(() => null))?.ok, 'the chat after the restart', 30_000);

  const cid = await ChatUser.guest(project.url, 'cid');
  users.push(cid);
  const after = await cid.ok('join', { room: 'lobby' });
  assert.deepEqual(
    after.joined.history.map((e: { text: string }) => e.text),
    ['hello 1', 'hello 2', 'hello 3', 'hello 4', 'restarting'],
  );
});
