// SSE, long-polling, refresh and commands over POST, end to end on 127.0.0.1.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { signHubToken } from '../../../src/hub/auth.js';
import { SECRET, sleep, startTestServer, type TestServer } from '../harness.js';

interface SseEvent {
  id?: string;
  data: any;
}

/** Reads an SSE stream with fetch until `done` says stop. */
async function readSse(url: string, headers: Record<string, string>, done: (events: SseEvent[], comments: number) => boolean) {
  const controller = new AbortController();
  const response = await fetch(url, { headers, signal: controller.signal });
  const events: SseEvent[] = [];
  let comments = 0;
  let buffer = '';
  const decoder = new TextDecoder();
  const reader = response.body!.getReader();
  const timer = setTimeout(() => controller.abort(), 5000);
  try {
    while (!done(events, comments)) {
      const { value, done: ended } = await reader.read();
      if (ended) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event: Partial<SseEvent> = {};
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) comments++;
          else if (line.startsWith('id: ')) event.id = line.slice(4);
          else if (line.startsWith('data: ')) event.data = JSON.parse(line.slice(6));
        }
        if (event.data !== undefined) events.push(event as SseEvent);
      }
    }
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  return { response, events, comments };
}

/**
 * A readSse `done` that publishes (`publish`) once the stream is subscribed, and stops at the
 * first publication pushed. (Published before the subscription, it would come inside the
 * subscribed event's history instead.)
 */
function publishOnceSubscribed(publish: () => void): (events: SseEvent[]) => boolean {
  let published = false;
  return (seen) => {
    if (!published && seen.some((e) => e.data.push === 'subscribed')) {
      published = true;
      publish();
    }
    return seen.some((e) => e.data.push === 'pub');
  };
}

const post = async (url: string, body: unknown, headers: Record<string, string> = {}) => {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as any };
};

describe('HTTP transports', () => {
  let server: TestServer;
  before(async () => (server = await startTestServer({ hub: { namespaces: [
    { name: 'room', presence: true, subscribe: 'anyone', publish: 'user', seePresence: 'anyone', seeHistory: 'anyone' },
    { name: 'news', subscribe: 'anyone', seeHistory: 'anyone', historySize: 5 },
  ], limits: { sseHeartbeatMs: 100, longPollTimeoutMs: 2000 } } })));
  after(() => server.close());

  test('SSE: proxy-proof headers, connected + subscribed events, then publications with resumable ids', async () => {
    await server.node.publish('news:s', 'old');
    const subscribe = encodeURIComponent(JSON.stringify({ 'news:s': null }));
    const { response, events } = await readSse(
      `${server.http}/hub/sse?subscribe=${subscribe}`,
      {},
      publishOnceSubscribed(() => void server.node.publish('news:s', 'live')),
    );
    assert.equal(response.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    assert.equal(response.headers.get('cache-control'), 'no-cache, no-transform');
    assert.equal(response.headers.get('x-accel-buffering'), 'no');
    assert.equal(events[0].data.push, 'connected');
    assert.equal(events[1].data.push, 'subscribed');
    assert.equal(events[1].data.position.offset, 1);
    const pub = events.find((e) => e.data.push === 'pub')!;
    assert.equal(pub.data.data, 'live');
    assert.equal(pub.id, `2:${pub.data.epoch}:news:s`);
  });

  test('SSE: Last-Event-ID resumes the channel exactly; heartbeats keep the stream warm', async () => {
    const first = await server.node.publish('news:r', 1);
    for (let i = 2; i <= 4; i++) await server.node.publish('news:r', i);
    const subscribe = encodeURIComponent(JSON.stringify({ 'news:r': null }));
    const { events, comments } = await readSse(
      `${server.http}/hub/sse?subscribe=${subscribe}`,
      { 'Last-Event-ID': `2:${first.epoch}:news:r` },
      (seen, heartbeats) => seen.length >= 2 && heartbeats >= 2,
    );
    assert.equal(events[1].data.lost, false);
    assert.deepEqual(events[1].data.publications.map((p: any) => p.data), [3, 4]);
    assert.ok(comments >= 2);
  });

  test('SSE: a bad subscribe parameter or token is a 4xx JSON error before any stream', async () => {
    const bad = await fetch(`${server.http}/hub/sse?subscribe=%7Bnope`);
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as any).error.code, 'KOBOLD_ERR_HUB_INVALID_JSON');
    const token = await fetch(`${server.http}/hub/sse?token=xyz`);
    assert.equal(token.status, 401);
    assert.equal(((await token.json()) as any).error.code, 'KOBOLD_ERR_HUB_TOKEN_INVALID');
  });

  test('SSE: a forbidden channel is an error event; the rest of the stream works', async () => {
    const subscribe = encodeURIComponent(JSON.stringify({ 'nowhere:x': null, 'news:ok': null }));
    const { events } = await readSse(`${server.http}/hub/sse?subscribe=${subscribe}`, {}, (seen) => seen.length >= 3);
    const error = events.find((e) => e.data.error !== undefined)!;
    assert.equal(error.data.error.code, 'KOBOLD_ERR_HUB_UNKNOWN_NAMESPACE');
    assert.equal(error.data.channel, 'nowhere:x');
    assert.ok(events.some((e) => e.data.push === 'subscribed' && e.data.channel === 'news:ok'));
  });

  test('commands over POST: publish (reaches SSE readers), history, presence, with clear errors', async () => {
    const token = await signHubToken(SECRET, { sub: 'poster' }, 60);
    const subscribe = encodeURIComponent(JSON.stringify({ 'room:c': null }));
    const { events } = await readSse(
      `${server.http}/hub/sse?subscribe=${subscribe}`,
      {},
      publishOnceSubscribed(() => void post(`${server.http}/hub/command`, { token, cmd: 'publish', channel: 'room:c', data: { hi: 1 } })),
    );
    const pub = events.find((e) => e.data.push === 'pub')!;
    assert.deepEqual(pub.data.data, { hi: 1 });
    assert.equal(pub.data.info.userId, 'poster');

    const history = await post(`${server.http}/hub/command`, { cmd: 'history', channel: 'room:c' });
    assert.equal(history.status, 200);
    assert.deepEqual(history.body.result.publications.map((p: any) => p.data), [{ hi: 1 }]);
    const presence = await post(`${server.http}/hub/command`, { cmd: 'presence', channel: 'room:c' });
    assert.deepEqual(presence.body.result.counts, { clients: 0, users: 0 });

    const anonymous = await post(`${server.http}/hub/command`, { cmd: 'publish', channel: 'room:c', data: 1 });
    assert.equal(anonymous.status, 403);
    assert.equal(anonymous.body.error.code, 'KOBOLD_ERR_HUB_FORBIDDEN');
    const garbage = await post(`${server.http}/hub/command`, '{"cmd":');
    assert.equal(garbage.status, 400);
    assert.equal(garbage.body.error.code, 'KOBOLD_ERR_HUB_INVALID_JSON');
    const unknown = await post(`${server.http}/hub/command`, { cmd: 'explode' });
    assert.equal(unknown.status, 400);
    assert.match(unknown.body.error.message, /cmd/);
    const huge = await post(`${server.http}/hub/command`, { cmd: 'history', channel: 'room:c', pad: 'x'.repeat(70_000) });
    assert.equal(huge.status, 413);
    assert.equal(huge.body.error.code, 'KOBOLD_ERR_HUB_TOO_LARGE');
  });

  test('refresh returns everything after the given positions at once; null gives the position', async () => {
    const first = await server.node.publish('news:f', 'a');
    await server.node.publish('news:f', 'b');
    await server.node.publish('news:f', 'c');
    const { status, body } = await post(`${server.http}/hub/refresh`, {
      channels: { 'news:f': { offset: first.offset, epoch: first.epoch }, 'news:g': null, 'vip:x': null },
    });
    assert.equal(status, 200);
    assert.deepEqual(body.channels['news:f'].publications.map((p: any) => p.data), ['b', 'c']);
    assert.equal(body.channels['news:f'].position.offset, 3);
    assert.equal(body.channels['news:g'].position.offset, 0);
    assert.equal(body.errors['vip:x'].code, 'KOBOLD_ERR_HUB_UNKNOWN_NAMESPACE');
  });

  test('long-polling waits for the next publication, and answers empty at the timeout', async () => {
    const { body: start } = await post(`${server.http}/hub/poll`, { channels: { 'news:l': null } });
    const at = start.channels['news:l'].position;
    let answered = false;
    const waiting = post(`${server.http}/hub/poll`, { channels: { 'news:l': at } }).then((r) => ((answered = true), r));
    await sleep(100);
    assert.equal(answered, false, 'nothing new: the request waits');
    await server.node.publish('news:l', 'x');
    const { body } = await waiting;
    assert.deepEqual(body.channels['news:l'].publications.map((p: any) => p.data), ['x']);

    const quiet = await post(`${server.http}/hub/poll`, { channels: { 'news:l': body.channels['news:l'].position }, timeoutMs: 150 });
    assert.equal(quiet.status, 200);
    assert.deepEqual(quiet.body.channels['news:l'].publications, []);
  });

  test('long-polling: a bad request is a 400 naming the field', async () => {
    const { status, body } = await post(`${server.http}/hub/poll`, { channels: { 'news:l': { offset: -1, epoch: 'e' } } });
    assert.equal(status, 400);
    assert.match(body.error.message, /channels\.news:l\.offset/);
  });
});
