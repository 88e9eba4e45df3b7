// Refresh mode over HTTP on 127.0.0.1: POST with a JSON body and GET with the query string
// give the same answers; bad input gets a clear 4xx error; bodies that arrive with their
// headers, late, in pieces, or pipelined behind each other on one connection all read right;
// on the shm backend, polls are answered from the ring while the hub writer cannot answer,
// and a kept up-to-date answer is never sent after a publication or to another principal.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { signHubToken } from '../../../src/hub/auth.js';
import { connectHubLog, ShmBackend } from '../../../src/hub/backends/shm.js';
import { resolveHubOptions } from '../../../src/hub/options.js';
import { UpToDateAnswers } from '../../../src/hub/transports/refresh.js';
import { removeRing, ringOptions, startRingWriter } from '../fixtures/ring.js';
import { stopWriter } from '../fixtures/writer.js';
import { SECRET, sleep, startTestServer, type TestServer } from '../harness.js';

const post = async (url: string, body: unknown, headers: Record<string, string> = {}) => {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as any };
};

const get = async (url: string, headers: Record<string, string> = {}) => {
  const response = await fetch(url, { headers });
  return { status: response.status, body: (await response.json()) as any };
};

const query = (channels: unknown) => `channels=${encodeURIComponent(JSON.stringify(channels))}`;

/** Writes `parts` to a raw connection (pausing between them) and collects what comes back until `done`. */
async function raw(port: number, parts: string[], done: (text: string) => boolean): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (text += chunk));
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  try {
    for (const part of parts) {
      socket.write(part);
      await sleep(30);
    }
    for (let i = 0; i < 200 && !done(text); i++) await sleep(10);
    return text;
  } finally {
    socket.destroy();
  }
}

function request(path: string, body: string, extra = ''): string {
  return `POST ${path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
}

const answers = (text: string) => text.split('HTTP/1.1 ').length - 1;

describe('refresh mode', () => {
  let server: TestServer;
  let port: number;
  before(async () => {
    server = await startTestServer({
      hub: {
        namespaces: [
          { name: 'news', subscribe: 'anyone', historySize: 5 },
          { name: 'vip', subscribe: 'user' },
        ],
        limits: { maxSubscriptionsPerConnection: 3, maxMessageBytes: 1024 },
      },
    });
    port = Number(new URL(server.http).port);
  });
  after(() => server.close());

  test('GET with the positions in the query string answers like POST', async () => {
    const first = await server.node.publish('news:q', 'a');
    await server.node.publish('news:q', 'b');
    const channels = { 'news:q': first, 'news:empty': null, 'nowhere:x': null };
    const byPost = await post(`${server.http}/hub/refresh`, { channels });
    const byGet = await get(`${server.http}/hub/refresh?_=${Date.now()}&${query(channels)}`);
    assert.equal(byGet.status, 200);
    assert.deepEqual(byGet.body, byPost.body);
    assert.deepEqual(byGet.body.channels['news:q'].publications.map((p: any) => p.data), ['b']);
    assert.deepEqual(byGet.body.channels['news:empty'].position.offset, 0);
    assert.equal(byGet.body.errors['nowhere:x'].code, 'KOBOLD_ERR_HUB_UNKNOWN_NAMESPACE');
  });

  test('a client up to date gets its position, no publications; one that is behind the window gets lost', async () => {
    const at = await server.node.publish('news:w', 1);
    const upToDate = await get(`${server.http}/hub/refresh?${query({ 'news:w': at })}`);
    assert.deepEqual(upToDate.body.channels['news:w'], { position: at, lost: false, publications: [] });
    for (let i = 2; i <= 8; i++) await server.node.publish('news:w', i);
    const behind = await post(`${server.http}/hub/refresh`, { channels: { 'news:w': at } });
    assert.equal(behind.body.channels['news:w'].lost, true);
    assert.deepEqual(behind.body.channels['news:w'].publications.map((p: any) => p.data), [4, 5, 6, 7, 8]);
  });

  test('a token in the body, the query string or an Authorization header identifies the client', async () => {
    const token = await signHubToken(SECRET, { sub: 'u1' }, 60);
    const channels = { 'vip:a': null };
    const anonymous = await get(`${server.http}/hub/refresh?${query(channels)}`);
    assert.equal(anonymous.body.errors['vip:a'].code, 'KOBOLD_ERR_HUB_FORBIDDEN');
    for (const answer of [
      await post(`${server.http}/hub/refresh`, { token, channels }),
      await post(`${server.http}/hub/refresh?token=${token}`, { channels }),
      await post(`${server.http}/hub/refresh`, { channels }, { authorization: `Bearer ${token}` }),
      await get(`${server.http}/hub/refresh?${query(channels)}&token=${token}`),
      await get(`${server.http}/hub/refresh?${query(channels)}`, { authorization: `Bearer ${token}` }),
    ]) {
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.body.errors, {});
      assert.equal(answer.body.channels['vip:a'].position.offset, 0);
    }
    const forged = await get(`${server.http}/hub/refresh?${query(channels)}&token=${token}x`);
    assert.equal(forged.status, 401);
    assert.equal(forged.body.error.code, 'KOBOLD_ERR_HUB_TOKEN_INVALID');
  });

  test('bad input gets a 4xx JSON error that names the problem', async () => {
    const cases: [Promise<{ status: number; body: any }>, number, string, RegExp][] = [
      [post(`${server.http}/hub/refresh`, '{"channels":'), 400, 'KOBOLD_ERR_HUB_INVALID_JSON', /invalid JSON/],
      [post(`${server.http}/hub/refresh`, ''), 400, 'KOBOLD_ERR_HUB_INVALID_JSON', /invalid JSON/],
      [post(`${server.http}/hub/refresh`, {}), 400, 'KOBOLD_ERR_HUB_BAD_COMMAND', /field "channels": required/],
      [post(`${server.http}/hub/refresh`, { channels: {}, since: 1 }), 400, 'KOBOLD_ERR_HUB_BAD_COMMAND', /field "since": unknown field/],
      [post(`${server.http}/hub/refresh`, { channels: { 'news:a': { offset: 1.5, epoch: 'e' } } }), 400, 'KOBOLD_ERR_HUB_BAD_COMMAND', /channels\.news:a\.offset/],
      [post(`${server.http}/hub/refresh`, { channels: { 'news:a': null, 'news:b': null, 'news:c': null, 'news:d': null } }), 400, 'KOBOLD_ERR_HUB_TOO_MANY_SUBSCRIPTIONS', /limit is 3/],
      [post(`${server.http}/hub/refresh`, { channels: {}, pad: 'x'.repeat(2000) }), 413, 'KOBOLD_ERR_HUB_TOO_LARGE', /limit of 1024 bytes/],
      [get(`${server.http}/hub/refresh`), 400, 'KOBOLD_ERR_HUB_BAD_COMMAND', /field "channels": required/],
      [get(`${server.http}/hub/refresh?channels=%7Bnope`), 400, 'KOBOLD_ERR_HUB_INVALID_JSON', /query parameter "channels"/],
      [get(`${server.http}/hub/refresh?${query({ 'news:a': { offset: -1, epoch: 'e' } })}`), 400, 'KOBOLD_ERR_HUB_BAD_COMMAND', /channels\.news:a\.offset/],
      [get(`${server.http}/hub/refresh?${query({})}&timeoutMs=soon`), 400, 'KOBOLD_ERR_HUB_BAD_COMMAND', /field "timeoutMs"/],
      [
        fetch(`${server.http}/hub/refresh`, { method: 'PUT', body: '{}' }).then(async (r) => ({ status: r.status, body: await r.json() })),
        400,
        'KOBOLD_ERR_HUB_BAD_COMMAND',
        /use POST .* or GET/,
      ],
    ];
    for (const [answer, status, code, message] of cases) {
      const { status: got, body } = await answer;
      assert.equal(got, status, `${code} ${message}: got ${JSON.stringify(body)}`);
      assert.equal(body.error.code, code);
      assert.match(body.error.message, message);
    }
  });

  test('a body that comes after its headers, or in pieces, is read whole', async () => {
    const at = await server.node.publish('news:slow', 'x');
    const body = JSON.stringify({ channels: { 'news:slow': { offset: 0, epoch: at.epoch } } });
    const head = request('/hub/refresh', body).slice(0, -body.length);
    const text = await raw(port, [head, body.slice(0, 10), body.slice(10)], (seen) => seen.includes('"publications"'));
    assert.match(text, /^HTTP\/1\.1 200/);
    assert.match(text, /"data":"x"/);
    const chunked = `POST /hub/refresh HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
    assert.match(await raw(port, [chunked], (seen) => seen.includes('"publications"')), /"data":"x"/);
    const huge = `POST /hub/refresh HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n800\r\n${'x'.repeat(0x800)}\r\n0\r\n\r\n`;
    assert.match(await raw(port, [huge], (seen) => seen.includes('}}')), /^HTTP\/1\.1 413[\s\S]*KOBOLD_ERR_HUB_TOO_LARGE/);
  });

  test('polls pipelined on one keep-alive connection are each answered, in order', async () => {
    const at = await server.node.publish('news:p', 'one');
    const bodies = [{ 'news:p': null }, { 'news:p': { offset: 0, epoch: at.epoch } }, { 'news:p': at }].map((channels) => JSON.stringify({ channels }));
    const text = await raw(port, [bodies.map((body) => request('/hub/refresh', body)).join('') + `GET /hub/refresh?${query({ 'news:p': at })} HTTP/1.1\r\nhost: x\r\n\r\n`], (seen) => answers(seen) === 4 && seen.endsWith('}}'));
    assert.equal(answers(text), 4);
    const jsons = text.split(/HTTP\/1\.1 200 OK[\s\S]*?\r\n\r\n/).slice(1).map((json) => JSON.parse(json).channels['news:p']);
    assert.deepEqual(jsons.map((c) => c.publications.length), [0, 1, 0, 0]);
    assert.deepEqual(jsons.map((c) => c.position), [at, at, at, at]);
  });
});

/** A test server on the shm backend, with its own ring writer (`child`, SIGSTOP-able). */
async function withShmServer(run: (server: TestServer, child: ChildProcess) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'kobold-refresh-shm-'));
  const ring = ringOptions(dir);
  const input = {
    namespaces: [
      { name: 'news', subscribe: 'anyone' as const, historySize: 10 },
      { name: 'vip', subscribe: 'user' as const, historySize: 10 },
    ],
    limits: { longPollTimeoutMs: 10_000 },
  };
  const hub = resolveHubOptions(input);
  const socketPath = join(dir, 'hub.sock');
  const { child } = await startRingWriter(socketPath, hub.namespaces, ring);
  const backend = await connectHubLog({ socketPath, namespaces: hub.namespaces, requestTimeoutMs: 300 });
  const server = await startTestServer({ hub: input, backend });
  try {
    assert.ok(backend instanceof ShmBackend);
    await run(server, child);
  } finally {
    await server.close();
    await stopWriter(child);
    removeRing(ring);
    rmSync(dir, { recursive: true, force: true });
  }
}

test('on the shm backend, refresh and long-polls are answered from the ring while the writer is stopped', async () => {
  await withShmServer(async (server, child) => {
    const first = await server.node.publish('news:ring', 'a');
    const last = await server.node.publish('news:ring', 'b');
    child.kill('SIGSTOP');
    try {
      const byPost = await fetch(`${server.http}/hub/refresh`, { method: 'POST', body: JSON.stringify({ channels: { 'news:ring': first } }) });
      assert.equal(byPost.status, 200);
      const answer = (await byPost.json()) as any;
      assert.deepEqual(answer.channels['news:ring'].publications.map((p: any) => p.data), ['b']);
      const upToDate = (await (await fetch(`${server.http}/hub/refresh?${query({ 'news:ring': last })}`)).json()) as any;
      assert.deepEqual(upToDate.channels['news:ring'], { position: last, lost: false, publications: [] });
      const news = await Promise.race([fetch(`${server.http}/hub/poll?${query({ 'news:ring': first })}`).then((r) => r.json() as any), sleep(5_000).then(() => null)]);
      assert.ok(news !== null, 'a long-poll with news in the ring is answered at once');
      assert.deepEqual(news.channels['news:ring'].publications.map((p: any) => p.data), ['b']);
    } finally {
      child.kill('SIGCONT');
    }
  });
});

test('on the shm backend, a kept up-to-date answer gives way at once to a publication, on GET and POST alike', async () => {
  await withShmServer(async (server) => {
    const other = await server.node.publish('news:other', 'o');
    let at = await server.node.publish('news:kept', 0);
    for (let i = 1; i <= 3; i++) {
      const url = `${server.http}/hub/refresh?${query({ 'news:kept': at, 'news:other': other })}`;
      const body = { channels: { 'news:kept': at, 'news:other': other } };
      for (let n = 0; n < 3; n++) {
        assert.deepEqual((await get(url)).body.channels['news:kept'], { position: at, lost: false, publications: [] });
        assert.deepEqual((await post(`${server.http}/hub/refresh`, body)).body.channels['news:kept'], { position: at, lost: false, publications: [] });
      }
      const next = await server.node.publish('news:kept', i);
      for (const answer of [await get(url), await post(`${server.http}/hub/refresh`, body)]) {
        assert.deepEqual(answer.body.channels['news:kept'].publications.map((p: any) => p.data), [i]);
        assert.deepEqual(answer.body.channels['news:kept'].position, next);
        assert.deepEqual(answer.body.channels['news:other'], { position: other, lost: false, publications: [] });
      }
      at = next;
    }
  });
});

test('on the shm backend, answers to polls with a token are never kept for anyone else, and bad input is still refused', async () => {
  await withShmServer(async (server) => {
    const token = await signHubToken(SECRET, { sub: 'u1' }, 60);
    const at = await server.node.publish('vip:a', 'v');
    const url = `${server.http}/hub/refresh?${query({ 'vip:a': at })}`;
    const body = { channels: { 'vip:a': at } };
    for (let n = 0; n < 2; n++) {
      assert.deepEqual((await get(url, { authorization: `Bearer ${token}` })).body.errors, {});
      assert.deepEqual((await post(`${server.http}/hub/refresh`, body, { authorization: `Bearer ${token}` })).body.errors, {});
      assert.deepEqual((await post(`${server.http}/hub/refresh?token=${token}`, body)).body.errors, {});
    }
    assert.equal((await get(url)).body.errors['vip:a'].code, 'KOBOLD_ERR_HUB_FORBIDDEN');
    assert.equal((await post(`${server.http}/hub/refresh`, body)).body.errors['vip:a'].code, 'KOBOLD_ERR_HUB_FORBIDDEN');
    const forged = await get(url, { authorization: `Bearer ${token}x` });
    assert.equal(forged.status, 401);
    assert.equal(forged.body.error.code, 'KOBOLD_ERR_HUB_TOKEN_INVALID');
    const news = { 'news:b': await server.node.publish('news:b', 'n') };
    assert.equal((await get(`${server.http}/hub/refresh?${query(news)}`)).status, 200);
    assert.equal((await get(`${server.http}/hub/refresh?${query(news)}`, { authorization: `Bearer ${token}x` })).status, 401);
    const bad = await get(`${server.http}/hub/refresh?${query(news)}&timeoutMs=soon`);
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /field "timeoutMs"/);
  });
});

describe('UpToDateAnswers', () => {
  const versions = new Map<string, number>();
  const heads = { headVersion: (channel: string) => versions.get(channel) ?? -1 };
  const req = (url: string, headers: Record<string, string> = {}) => ({ method: 'GET', url, headers }) as unknown as IncomingMessage;

  test('an answer is given again while its channels keep their versions, and forgotten when one moves', () => {
    const answers = new UpToDateAnswers(heads);
    versions.set('a', 1).set('b', 7);
    const key = answers.keyOf(req('/hub/refresh?x'), '')!;
    answers.set(key, ['a', 'b'], answers.versionsOf(['a', 'b']), '{"ok":1}');
    assert.equal(answers.get(key)?.body.toString(), '{"ok":1}');
    assert.equal(answers.get(key)?.headers['Content-Length'], 8);
    assert.equal(answers.get(answers.keyOf(req('/hub/refresh?y'), '')!), null);
    versions.set('b', 8);
    assert.equal(answers.get(key), null);
    assert.equal(answers.size, 0);
  });

  test('requests with an Authorization header or a long text are not kept; at most 1000 answers, the oldest going first', () => {
    const answers = new UpToDateAnswers(heads);
    assert.equal(answers.keyOf(req('/hub/refresh?x', { authorization: 'Bearer t' }), ''), null);
    assert.equal(answers.keyOf(req(`/hub/refresh?${'x'.repeat(3000)}`), ''), null);
    assert.notEqual(answers.keyOf(req('/hub/refresh'), 'x'.repeat(1000)), null);
    for (let i = 0; i < 1005; i++) answers.set(`k${i}`, [], [], `${i}`);
    assert.equal(answers.size, 1000);
    assert.equal(answers.get('k4'), null);
    assert.equal(answers.get('k5')?.body.toString(), '5');
    assert.equal(answers.get('k1004')?.body.toString(), '1004');
  });
});
