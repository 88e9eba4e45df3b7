// The client library in Node against an in-process hub server.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { pathToFileURL } from 'node:url';
import { buildClientBundle } from '../../src/client/build.js';
import { type ClientPublication, HubClient, HubClientError, type HubClientOptions } from '../../src/client/index.js';
import { messagePack } from '../../src/client/msgpack.js';
import type { WebSocketConstructor } from '../../src/client/transports/websocket.js';
import { signHubToken } from '../../src/hub/auth.js';
import { MemoryBackend } from '../../src/hub/backends/memory.js';
import type { HistoryQuery, HistoryResult, PresenceEntry } from '../../src/hub/types.js';
import { KoboldError } from '../../src/errors.js';
import { resolveHubOptions } from '../../src/hub/options.js';
import { SECRET, startTestServer, type TestServer } from '../hub/harness.js';

const HUB = {
  namespaces: [
    { name: 'room', presence: true, subscribe: 'anyone' as const, publish: 'user' as const, seePresence: 'anyone' as const, seeHistory: 'anyone' as const },
    { name: 'news', subscribe: 'anyone' as const, historySize: 50 },
  ],
  limits: { longPollTimeoutMs: 1000 },
};

/** `ws`'s WebSocket, keeping each message's data as the client received it. */
type RecordingWebSocket = WebSocket & { received: unknown[] };

function recordingWebSocket(sockets: RecordingWebSocket[]): WebSocketConstructor {
  return class extends WebSocket {
    readonly received: unknown[] = [];
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      sockets.push(this);
      this.addEventListener('message', (event) => this.received.push(event.data));
    }
  } as unknown as WebSocketConstructor;
}

async function until(predicate: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !predicate(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.ok(predicate(), `timed out waiting for ${what}`);
}

/** A memory backend whose history and presence are unreachable for a channel's first reads, as while the hub writer is replaced. */
class BriefOutageBackend extends MemoryBackend {
  readonly historyFailures = new Map<string, number>();
  readonly presenceFailures = new Map<string, number>();

  override historyNow(channel: string, query: HistoryQuery = {}): HistoryResult {
    failFirst(this.historyFailures, channel);
    return super.historyNow(channel, query);
  }

  override addPresenceNow(channel: string, entry: PresenceEntry): void {
    failFirst(this.presenceFailures, channel);
    super.addPresenceNow(channel, entry);
  }
}

/** Throws the two errors of a hub writer that does not answer, alternately, while `failures` counts down. */
function failFirst(failures: Map<string, number>, channel: string): void {
  const left = failures.get(channel) ?? 0;
  if (left === 0) return;
  failures.set(channel, left - 1);
  throw left % 2 === 0
    ? new KoboldError('KOBOLD_ERR_HUB_TIMEOUT', { op: 'history', timeoutMs: 5000 })
    : new KoboldError('KOBOLD_ERR_HUB_UNAVAILABLE', { reason: 'the test cut the writer off' });
}

/** Runs `body` against a hub server on a BriefOutageBackend, closed afterwards. */
async function withOutageServer(body: (outage: TestServer, backend: BriefOutageBackend) => Promise<void>): Promise<void> {
  const backend = new BriefOutageBackend({ namespaces: resolveHubOptions(HUB).namespaces });
  const outage = await startTestServer({ hub: HUB, backend });
  try {
    await body(outage, backend);
  } finally {
    await outage.close();
  }
}

describe('hub client', () => {
  let server: TestServer;
  let noWebSocket: TestServer;
  const clients: HubClient[] = [];
  const client = (base: TestServer, options: Partial<HubClientOptions> = {}) => {
    const created = new HubClient({
      url: `${base.http}/hub`,
      WebSocket: WebSocket as unknown as WebSocketConstructor,
      backoffMs: { min: 20, max: 200 },
      refreshIntervalMs: 50,
      ...options,
    });
    clients.push(created);
    return created;
  };
  before(async () => {
    server = await startTestServer({ hub: HUB });
    noWebSocket = await startTestServer({ hub: HUB, webSocket: false });
  });
  after(async () => {
    for (const c of clients) c.close();
    await server.close();
    await noWebSocket.close();
  });

  for (const transport of ['websocket', 'sse', 'longpoll', 'refresh'] as const) {
    test(`${transport}: receives publications in order, publishes, reads history and presence`, async () => {
      const token = await signHubToken(SECRET, { sub: `u-${transport}` }, 60);
      const c = client(server, { transports: [transport], token });
      await c.connect();
      assert.equal(c.transport, transport);
      const channel = `room:${transport}`;
      const seen: ClientPublication[] = [];
      c.subscribe(channel, (publication) => seen.push(publication));
      await until(() => c.position(channel) !== undefined, 'the subscription');
      for (let i = 1; i <= 5; i++) await server.node.publish(channel, { i });
      const mine = await c.publish(channel, { i: 6 });
      assert.equal(mine.offset, 6);
      await until(() => seen.length === 6, 'six publications');
      assert.deepEqual(seen.map((p) => (p.data as { i: number }).i), [1, 2, 3, 4, 5, 6]);
      assert.equal(seen[5].info?.userId, `u-${transport}`);
      const history = await c.history(channel, { limit: 2 });
      assert.deepEqual(history.publications.map((p) => p.offset), [5, 6]);
      const presence = await c.presence(channel);
      assert.equal(typeof presence.counts.clients, 'number');
    });
  }

  for (const transport of ['websocket', 'sse'] as const) {
    test(`${transport}: channels subscribed before connect() are in place once it resolves`, async () => {
      const c = client(server, { transports: [transport] });
      const seen: unknown[] = [];
      c.subscribe(`news:before-${transport}`, (publication) => seen.push(publication.data));
      await c.connect();
      await server.node.publish(`news:before-${transport}`, 'first');
      await until(() => seen.length === 1, 'the publication');
      assert.deepEqual(seen, ['first']);
      assert.equal(c.position(`news:before-${transport}`)?.offset, 1);
    });
  }

  test('sse: subscribing while the first stream is still opening keeps SSE and gets the channel', async () => {
    const c = client(noWebSocket, { transports: ['sse', 'longpoll'] });
    const connecting = c.connect();
    const seen: unknown[] = [];
    c.subscribe('news:early', (publication) => seen.push(publication.data));
    await connecting;
    await until(() => c.position('news:early') !== undefined, 'the subscription');
    assert.equal(c.transport, 'sse', 'no fall back to long-polling');
    await noWebSocket.node.publish('news:early', 'hello');
    await until(() => seen.length === 1, 'the publication');
  });

  test('falls back to SSE when the WebSocket endpoint is refused', async () => {
    const c = client(noWebSocket);
    await c.connect();
    assert.equal(c.transport, 'sse');
    const seen: unknown[] = [];
    c.subscribe('news:fallback', (publication) => seen.push(publication.data));
    await until(() => c.position('news:fallback') !== undefined, 'the subscription');
    await noWebSocket.node.publish('news:fallback', 'via sse');
    await until(() => seen.length === 1, 'a publication');
    assert.deepEqual(seen, ['via sse']);
  });

  test('falls back to long-polling when neither WebSocket nor SSE works', async () => {
    const brokenFetch: typeof fetch = (input, init) =>
      String(input).includes('/sse') ? Promise.reject(new TypeError('blocked by proxy')) : fetch(input, init);
    const c = client(noWebSocket, { fetch: brokenFetch });
    await c.connect();
    assert.equal(c.transport, 'longpoll');
  });

  test('resumes after the connection drops: nothing lost, nothing twice', async () => {
    const c = client(server, { transports: ['websocket'] });
    await c.connect();
    const seen: number[] = [];
    c.subscribe('news:resume', (publication) => seen.push(publication.data as number));
    await until(() => c.position('news:resume') !== undefined, 'the subscription');
    for (let i = 1; i <= 3; i++) await server.node.publish('news:resume', i);
    await until(() => seen.length === 3, 'the first three');
    server.dropWebSockets();
    await until(() => c.state === 'connecting', 'the drop');
    for (let i = 4; i <= 8; i++) await server.node.publish('news:resume', i);
    await until(() => seen.length === 8, 'the missed five');
    await server.node.publish('news:resume', 9);
    await until(() => seen.length === 9, 'the next live one');
    assert.deepEqual(seen, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(c.state, 'connected');
  });

  test('polls are GETs while their URL is short, POSTs past 2,000 characters; both deliver', async () => {
    const requests: string[] = [];
    const recordingFetch: typeof fetch = (input, init) => {
      const url = String(input);
      if (url.includes('/refresh')) requests.push(`${init?.method ?? 'GET'} ${url.length > 2000 ? 'long' : 'short'}`);
      return fetch(input, init);
    };
    const c = client(server, { transports: ['refresh'], fetch: recordingFetch });
    const seen: unknown[] = [];
    c.subscribe('news:poll-method', (publication) => seen.push(publication.data));
    await c.connect();
    await until(() => c.position('news:poll-method') !== undefined, 'the subscription');
    assert.deepEqual(new Set(requests), new Set(['GET short']));
    requests.length = 0;
    for (let i = 0; i < 40; i++) c.subscribe(`news:a-channel-with-a-rather-long-name-${i}`, () => {});
    await until(() => requests.length >= 2, 'two polls with 41 channels');
    assert.deepEqual(new Set(requests), new Set(['POST short']), 'the URL would be too long: POST');
    await server.node.publish('news:poll-method', 'after the switch');
    await until(() => seen.length === 1, 'the publication');
  });

  test('close() while an attempt is opening ends the client: no further attempt, connect() rejects', async () => {
    const sockets: RecordingWebSocket[] = [];
    let polls = 0;
    const countingFetch: typeof fetch = (input, init) => {
      polls++;
      return fetch(input, init);
    };
    for (const options of [{ transports: ['websocket'] as const, WebSocket: recordingWebSocket(sockets) }, { transports: ['refresh'] as const, fetch: countingFetch }]) {
      const c = client(server, { ...options, transports: [...options.transports] });
      const states: string[] = [];
      c.on('state', (state) => states.push(state));
      const connecting = c.connect(); // the attempt is under way (socket opening or request sent) when close() comes
      c.close();
      const settled = await Promise.race([connecting.then(() => 'resolved', (error: unknown) => error), new Promise((resolve) => setTimeout(resolve, 2000, 'still pending'))]);
      assert.ok(settled instanceof HubClientError, `connect() after close(): ${String(settled)}`);
      assert.equal(settled.code, 'CLOSED');
      assert.equal(settled.message, 'the client was closed before it connected');
      // Backoff is 10–20 ms for the first retry: a client that came back would have tried again by now.
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.deepEqual(states, ['connecting', 'closed'], options.transports[0]);
      assert.equal(c.transport, null);
    }
    assert.equal(sockets.length, 1, 'one WebSocket, the one closed while opening');
    assert.equal(polls, 1, 'one refresh request, the one aborted');
  });

  test('a stream whose history was lost raises resync', async () => {
    const c = client(server, { transports: ['websocket'] });
    await c.connect();
    await server.node.publish('news:lost', 1);
    const resyncs: string[] = [];
    c.on('resync', (channel) => resyncs.push(channel));
    c.subscribe('news:lost', () => {}, { since: { offset: 1, epoch: 'an-old-epoch' } });
    await until(() => resyncs.length === 1, 'the resync');
    assert.equal(c.position('news:lost')?.offset, 1);
  });

  test('a refused channel reports an error event', async () => {
    const c = client(server, { transports: ['websocket'] });
    await c.connect();
    const errors: string[] = [];
    c.on('error', (_channel, error) => errors.push(error.code));
    c.subscribe('nowhere:x', () => {});
    await until(() => errors.length === 1, 'the error');
    assert.deepEqual(errors, ['KOBOLD_ERR_HUB_UNKNOWN_NAMESPACE']);
  });

  test('a channel refused because the hub writer does not answer is tried again with backoff, on every transport, with no error event', async () => {
    await withOutageServer(async (outage, backend) => {
      for (const transport of ['websocket', 'sse', 'longpoll', 'refresh'] as const) {
        const channel = `news:outage-${transport}`;
        const { epoch } = await outage.node.publish(channel, 'before');
        const c = client(outage, { transports: [transport] });
        await c.connect();
        const errors: string[] = [];
        c.on('error', (_channel, error) => errors.push(error.code));
        const seen: unknown[] = [];
        backend.historyFailures.set(channel, 2);
        c.subscribe(channel, (publication) => seen.push(publication.data), { since: { offset: 0, epoch } });
        await until(() => seen.length === 1, `${transport}: the channel after the outage`);
        assert.equal(backend.historyFailures.get(channel), 0, `${transport}: both refusals were met`);
        await outage.node.publish(channel, 'after');
        await until(() => seen.length === 2, `${transport}: a live publication`);
        assert.deepEqual(seen, ['before', 'after']);
        assert.deepEqual(errors, []);
      }
    });
  });

  test('long-polling does not poll in a loop while a channel waits to be tried again', async () => {
    await withOutageServer(async (outage, backend) => {
      const c = client(outage, { transports: ['longpoll'] });
      await c.connect();
      let polls = 0;
      outage.server.on('request', () => (polls += 1));
      const channel = 'news:long-outage';
      backend.historyFailures.set(channel, 1_000_000);
      c.subscribe(channel, () => {});
      await new Promise((resolve) => setTimeout(resolve, 500));
      // The backoff (20 ms doubling to 200 ms) allows about six attempts in 500 ms, two polls each.
      assert.ok(polls <= 40, `${polls} polls in 500 ms`);
      assert.ok(backend.historyFailures.get(channel)! < 1_000_000, 'the channel was tried');
    });
  });

  test('a subscription whose presence the writer did not take is retried whole: the client ends up in presence', async () => {
    await withOutageServer(async (outage, backend) => {
      const channel = 'room:outage-presence';
      const c = client(outage, { transports: ['websocket'], token: await signHubToken(SECRET, { sub: 'u-outage' }, 60) });
      await c.connect();
      backend.presenceFailures.set(channel, 1);
      c.subscribe(channel, () => {});
      await until(() => c.position(channel) !== undefined, 'the subscription');
      assert.equal(backend.presenceFailures.get(channel), 0);
      assert.deepEqual((await outage.node.presence(channel)).map((user) => user.userId), ['u-outage']);
    });
  });

  test('websocket in MessagePack: the subprotocol is chosen, every message is binary, and nothing is lost across a drop', async () => {
    const sockets: RecordingWebSocket[] = [];
    const token = await signHubToken(SECRET, { sub: 'u-msgpack' }, 60);
    const c = client(server, { transports: ['websocket'], token, messagePack, WebSocket: recordingWebSocket(sockets) });
    await c.connect();
    assert.equal(c.transport, 'websocket');
    assert.equal(sockets[0].protocol, 'kobold.msgpack');
    const seen: ClientPublication[] = [];
    c.subscribe('room:msgpack', (publication) => seen.push(publication));
    await until(() => c.position('room:msgpack') !== undefined, 'the subscription');
    for (let i = 1; i <= 3; i++) await server.node.publish('room:msgpack', { i, list: [i, 'x', null], half: i / 2 });
    const mine = await c.publish('room:msgpack', { i: 4, list: [], half: 2 });
    assert.equal(mine.offset, 4);
    await until(() => seen.length === 4, 'four publications');
    assert.deepEqual(seen[0].data, { i: 1, list: [1, 'x', null], half: 0.5 });
    assert.equal(seen[3].info?.userId, 'u-msgpack');
    server.dropWebSockets();
    await until(() => c.state === 'connecting', 'the drop');
    for (let i = 5; i <= 7; i++) await server.node.publish('room:msgpack', { i });
    await until(() => seen.length === 7, 'the missed three');
    assert.deepEqual(seen.map((p) => (p.data as { i: number }).i), [1, 2, 3, 4, 5, 6, 7]);
    assert.equal(sockets.length, 2, 'reconnected over WebSocket');
    assert.equal(sockets[1].protocol, 'kobold.msgpack');
    const history = await c.history('room:msgpack', { limit: 2 });
    assert.deepEqual(history.publications.map((p) => p.offset), [6, 7]);
    const presence = await c.presence('room:msgpack');
    assert.deepEqual(presence.users.map((user) => user.userId), ['u-msgpack']);
    await assert.rejects(c.history('nowhere:x'), { code: 'KOBOLD_ERR_HUB_UNKNOWN_NAMESPACE' });
    for (const socket of sockets) {
      assert.ok(socket.received.length > 0);
      assert.ok(socket.received.every((data) => data instanceof ArrayBuffer), 'every message arrived binary');
    }
  });

  test('MessagePack falls back like JSON: to SSE when WebSocket is refused or the server does not choose the subprotocol', async () => {
    const refused = client(noWebSocket, { messagePack });
    await refused.connect();
    assert.equal(refused.transport, 'sse');
    // A WebSocket that does not ask for the subprotocol: the server answers in JSON, and the client must not take that for MessagePack.
    const withoutSubprotocol = class extends WebSocket {
      constructor(url: string) {
        super(url);
      }
    } as unknown as WebSocketConstructor;
    const ignored = client(server, { messagePack, WebSocket: withoutSubprotocol });
    await ignored.connect();
    assert.equal(ignored.transport, 'sse');
    const seen: unknown[] = [];
    ignored.subscribe('news:fallback-msgpack', (publication) => seen.push(publication.data));
    await until(() => ignored.position('news:fallback-msgpack') !== undefined, 'the subscription');
    await server.node.publish('news:fallback-msgpack', { via: 'sse' });
    await until(() => seen.length === 1, 'a publication');
    assert.deepEqual(seen, [{ via: 'sse' }]);
  });

  test('the MessagePack bundle exports the codec, and its client speaks MessagePack with the server', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kobold-client-'));
    try {
      const plain = await buildClientBundle({ outFile: join(dir, 'hub.js') });
      const packed = await buildClientBundle({ outFile: join(dir, 'hub-msgpack.js'), messagePack: true });
      assert.ok(packed.bytes > plain.bytes, `${packed.bytes} > ${plain.bytes}`);
      assert.doesNotMatch(readFileSync(packed.outFile, 'utf8'), /node:|require\(/);
      const bundle = (await import(pathToFileURL(packed.outFile).href)) as typeof import('../../src/client/index.js') & { messagePack: typeof messagePack };
      const sockets: RecordingWebSocket[] = [];
      const c = new bundle.HubClient({ url: `${server.http}/hub`, transports: ['websocket'], messagePack: bundle.messagePack, WebSocket: recordingWebSocket(sockets) });
      clients.push(c);
      await c.connect();
      assert.equal(sockets[0].protocol, 'kobold.msgpack');
      const seen: unknown[] = [];
      c.subscribe('news:bundle', (publication) => seen.push(publication.data));
      await until(() => c.position('news:bundle') !== undefined, 'the subscription');
      await server.node.publish('news:bundle', { from: 'the bundle', n: [1.5, true] });
      await until(() => seen.length === 1, 'the publication');
      assert.deepEqual(seen, [{ from: 'the bundle', n: [1.5, true] }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the browser bundle builds without Node imports', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kobold-client-'));
    try {
      const { outFile, bytes } = await buildClientBundle({ outFile: join(dir, 'hub.js') });
      assert.ok(bytes > 1000);
      const text = readFileSync(outFile, 'utf8');
      assert.doesNotMatch(text, /node:|require\(/);
      assert.match(text, /HubClient/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
