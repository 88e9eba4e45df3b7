import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { FIXTURE_APPS, freePort, TestProject, waitFor } from '../helpers/daemon.js';
import { httpGet } from '../helpers/http.js';

let p: TestProject;
before(async () => {
  const port = await freePort();
  p = new TestProject(port);
  p.writeConfig({
    heartbeatIntervalMs: 200,
    services: {
      web: {
        port,
        workers: 1,
        scaling: { enabled: false },
        http: { maxBodyBytes: 1_000, maxFileBytes: 2_000, maxFiles: 2, headersTimeoutMs: 500, requestTimeoutMs: 700, keepAliveTimeoutMs: 300, maxConnections: 5 },
      },
    },
    apps: [{ name: 'serving', module: join(FIXTURE_APPS, 'serving.mjs') }],
  });
  p.start();
});
after(() => p.cleanup());

function rawConnection(): Promise<{ socket: Socket; received: () => string; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(p.port, '127.0.0.1');
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => (data += chunk));
    const closed = new Promise<void>((r) => socket.on('close', () => r()));
    socket.on('error', () => {});
    socket.once('connect', () => resolve({ socket, received: () => data, closed }));
    socket.once('error', reject);
  });
}

function multipart(files: { name: string; bytes: number }[]): { body: Buffer; type: string } {
  const boundary = 'kobold-boundary';
  const parts = files.map((f) => Buffer.concat([Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="${f.name}"\r\ncontent-type: application/octet-stream\r\n\r\n`), Buffer.alloc(f.bytes, 97), Buffer.from('\r\n')]));
  return { body: Buffer.concat([...parts, Buffer.from(`--${boundary}--\r\n`)]), type: `multipart/form-data; boundary=${boundary}` };
}

async function post(path: string, body: string | Buffer, headers: Record<string, string> = {}) {
  const res = await fetch(`${p.url}${path}`, { method: 'POST', body: typeof body === 'string' ? body : new Uint8Array(body), headers });
  return { status: res.status, json: (await res.json()) as { error?: { code: string; message: string } } & Record<string, unknown> };
}

test('a body over maxBodyBytes is refused with 413, declared or chunked', async () => {
  const declared = await post('/echo', JSON.stringify({ text: 'x'.repeat(2_000) }), { 'content-type': 'application/json' });
  assert.equal(declared.status, 413);
  assert.deepEqual(declared.json.error, { code: 'KOBOLD_ERR_BODY_TOO_LARGE', message: 'request body exceeds 1000 bytes' });
  const chunks = new ReadableStream({
    start(controller) {
      for (let i = 0; i < 5; i += 1) controller.enqueue(new TextEncoder().encode('y'.repeat(400)));
      controller.close();
    },
  });
  const chunked = await fetch(`${p.url}/echo`, { method: 'POST', body: chunks, duplex: 'half' } as RequestInit);
  assert.equal(chunked.status, 413);
  const ok = await post('/echo', JSON.stringify({ text: 'fits' }));
  assert.deepEqual(ok.json, { body: { text: 'fits' } });
});

test('malformed JSON is a 400 that says so; an unknown route a 404; a throwing route a 500, all as JSON', async () => {
  const bad = await post('/echo', '{"text": ');
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error!.code, 'KOBOLD_ERR_BAD_REQUEST');
  assert.match(bad.json.error!.message, /request body is not valid JSON/);
  const missing = await httpGet(`${p.url}/nope`);
  assert.equal(missing.status, 404);
  assert.equal(JSON.parse(missing.body).error.code, 'KOBOLD_ERR_NOT_FOUND');
  const boom = await httpGet(`${p.url}/boom`);
  assert.equal(boom.status, 500);
  assert.deepEqual(JSON.parse(boom.body), { error: { code: 'KOBOLD_ERR_INTERNAL', message: 'internal error' } });
  assert.equal((await httpGet(p.url)).status, 200, 'the worker survived');
});

test('multipart uploads stream within the file and count limits', async () => {
  const ok = multipart([{ name: 'a.bin', bytes: 1_500 }, { name: 'b.bin', bytes: 10 }]);
  const accepted = await post('/upload', ok.body, { 'content-type': ok.type });
  assert.equal(accepted.status, 200);
  assert.deepEqual(accepted.json.files, [
    { field: 'file', filename: 'a.bin', bytes: 1_500 },
    { field: 'file', filename: 'b.bin', bytes: 10 },
  ]);
  const big = multipart([{ name: 'big.bin', bytes: 5_000 }]);
  const tooBig = await post('/upload', big.body, { 'content-type': big.type });
  assert.equal(tooBig.status, 413);
  const many = multipart([{ name: '1', bytes: 1 }, { name: '2', bytes: 1 }, { name: '3', bytes: 1 }]);
  const tooMany = await post('/upload', many.body, { 'content-type': many.type });
  assert.equal(tooMany.status, 400);
  assert.match(tooMany.json.error!.message, /more than 2 files/);
});

test('a client that sends its headers too slowly (slowloris) gets 408 and is disconnected', async () => {
  const { socket, received, closed } = await rawConnection();
  socket.write('GET / HTTP/1.1\r\nHost: x\r\n');
  const drip = setInterval(() => socket.write('X-Slow: 1\r\n'), 100);
  await closed;
  clearInterval(drip);
  assert.match(received(), /^HTTP\/1\.1 408 Request Timeout/);
  assert.match(received(), /request headers did not arrive within 500 ms/);
});

test('a request body that arrives too slowly gets 408 and the connection is closed', async () => {
  const { socket, received, closed } = await rawConnection();
  socket.write('POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":');
  await closed;
  assert.match(received(), /^HTTP\/1\.1 408 Request Timeout/);
  assert.match(received(), /the request body did not arrive within 700 ms/);
});

test('slow bodies started at different times are each cut at their deadline; a body completed in time is answered', async () => {
  const head = (length: number) => `POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;
  const first = await rawConnection();
  first.socket.write(`${head(100)}{"a":`);
  await new Promise((r) => setTimeout(r, 300));
  const second = await rawConnection();
  second.socket.write(`${head(100)}{"b":`);
  const inTime = await rawConnection();
  inTime.socket.write(`${head(7)}{"c":`);
  await new Promise((r) => setTimeout(r, 200));
  inTime.socket.write('1}');
  await Promise.all([first.closed, second.closed]);
  for (const { received } of [first, second]) {
    assert.match(received(), /^HTTP\/1\.1 408 Request Timeout/);
    assert.match(received(), /the request body did not arrive within 700 ms/);
  }
  assert.match(inTime.received(), /^HTTP\/1\.1 200 OK/);
  assert.match(inTime.received(), /\{"body":\{"c":1\}\}$/);
  inTime.socket.destroy();
});

test('on one connection, a request answered in time leaves the next request its own body deadline', async () => {
  const head = (length: number) => `POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;
  const { socket, received, closed } = await rawConnection();
  // Pipelined: the first is whole, the second's body stops halfway.
  socket.write(`${head(7)}{"c":1}${head(100)}{"a":`);
  await closed;
  assert.match(received(), /^HTTP\/1\.1 200 OK/);
  assert.match(received(), /\{"body":\{"c":1\}\}/);
  assert.match(received(), /HTTP\/1\.1 408 Request Timeout[^]*the request body did not arrive within 700 ms/);
});

test('an idle keep-alive connection is closed after keepAliveTimeoutMs', async () => {
  const { socket, received, closed } = await rawConnection();
  socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor(() => received().includes('hello from worker'), 'the response');
  await closed;
  assert.ok(!received().toLowerCase().includes('connection: close'), 'the server kept it alive, then timed it out');
});

test('connections beyond maxConnections per worker get a 503 and are closed', async () => {
  const held = await Promise.all(Array.from({ length: 5 }, () => rawConnection()));
  for (const { socket } of held) socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
  const extra = await rawConnection();
  await extra.closed;
  assert.match(extra.received(), /^HTTP\/1\.1 503 Service Unavailable/);
  assert.match(extra.received(), /too many connections to this worker \(max 5\)/);
  for (const { socket } of held) socket.destroy();
});
