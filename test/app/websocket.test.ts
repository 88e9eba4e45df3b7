import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { WebSocket } from 'ws';
import { FIXTURE_APPS, freePort, TestProject, waitFor } from '../helpers/daemon.js';

const projects: TestProject[] = [];
after(() => Promise.all(projects.map((p) => p.cleanup())));

async function project(websocket: Record<string, unknown>, workers = 1): Promise<TestProject> {
  const port = await freePort();
  const p = new TestProject(port);
  projects.push(p);
  p.writeConfig({
    heartbeatIntervalMs: 200,
    services: { web: { port, workers, maxWorkers: 2, scaling: { enabled: false }, websocket } },
    apps: [{ name: 'serving', module: join(FIXTURE_APPS, 'serving.mjs') }],
  });
  p.start();
  return p;
}

interface Client {
  ws: WebSocket;
  messages: string[];
  closed: Promise<{ code: number; reason: string }>;
}

function open(url: string): Promise<Client> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const messages: string[] = [];
    ws.on('message', (data) => messages.push(String(data)));
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.on('close', (code, reason) => r({ code, reason: String(reason) })));
    ws.once('open', () => resolve({ ws, messages, closed }));
    ws.once('error', reject);
  });
}

test('a WebSocket route echoes on the same port as HTTP; an unknown path is refused with 404', async () => {
  const p = await project({});
  const client = await open(`ws://127.0.0.1:${p.port}/ws/echo`);
  client.ws.send('ping 1');
  await waitFor(() => client.messages.includes('ping 1'), 'the echo');
  assert.match(client.messages[0]!, /hello from worker \d+/);
  client.ws.close();
  await assert.rejects(open(`ws://127.0.0.1:${p.port}/ws/nope`), /Unexpected server response: 404/);
});

test('a message over maxPayloadBytes closes the connection with 1009', async () => {
  const p = await project({ maxPayloadBytes: 100 });
  const client = await open(`ws://127.0.0.1:${p.port}/ws/echo`);
  client.ws.send('x'.repeat(500));
  assert.equal((await client.closed).code, 1009);
});

test('slow consumer policy "drop": messages past the send buffer are dropped and counted', async () => {
  const p = await project({ sendBufferBytes: 64 * 1024, slowConsumer: 'drop' });
  const client = await open(`ws://127.0.0.1:${p.port}/ws/flood/65536/200`);
  await waitFor(() => client.messages.some((m) => m.startsWith('sent ')), 'the summary');
  const [, sent, dropped] = /sent (\d+) dropped (\d+)/.exec(client.messages.find((m) => m.startsWith('sent '))!)!.map(Number);
  assert.ok(dropped! > 0, 'some were dropped');
  assert.equal(sent! + dropped!, 200);
  client.ws.close();
});

test('slow consumer policy "close": the connection is closed with 1008', async () => {
  const p = await project({ sendBufferBytes: 64 * 1024, slowConsumer: 'close' });
  const client = await open(`ws://127.0.0.1:${p.port}/ws/flood/65536/200`);
  const { code, reason } = await client.closed;
  assert.equal(code, 1008);
  assert.match(reason, /slow consumer/);
});

test('on reload, clients get close 1012 and reconnect to a live worker', async () => {
  const p = await project({}, 2);
  const clients = await Promise.all(Array.from({ length: 6 }, () => open(`ws://127.0.0.1:${p.port}/ws/echo`)));
  await waitFor(() => clients.every((c) => c.messages.length > 0), 'greetings');
  const before = new Set(clients.map((c) => c.messages[0]));
  const reload = p.koboldAsync(['reload']);
  const codes = await Promise.all(clients.map((c) => c.closed.then((closed) => closed.code)));
  assert.deepEqual(new Set(codes), new Set([1012]));
  const again = await open(`ws://127.0.0.1:${p.port}/ws/echo`);
  await waitFor(() => again.messages.length > 0, 'a greeting from a new worker');
  assert.ok(!before.has(again.messages[0]), 'answered by a new worker');
  again.ws.send('still here');
  await waitFor(() => again.messages.includes('still here'), 'the echo');
  again.ws.close();
  assert.equal((await reload).code, 0);
});

test('keepalive: a client that stops answering pings is terminated; one that answers stays', async () => {
  const p = await project({ pingIntervalMs: 200 });
  const silent = new WebSocket(`ws://127.0.0.1:${p.port}/ws/echo`, { autoPong: false });
  // Listened to at once: the first ping (and the close) may come while the other client opens.
  let pings = 0;
  silent.on('ping', () => (pings += 1));
  const closed = new Promise<number>((resolve) => silent.on('close', (c) => resolve(c)));
  const answering = await open(`ws://127.0.0.1:${p.port}/ws/echo`);
  const code = await closed;
  assert.equal(code, 1006, 'terminated without a close frame');
  assert.ok(pings >= 1);
  assert.equal(answering.ws.readyState, WebSocket.OPEN, 'the answering client is still connected');
  answering.ws.close();
});
