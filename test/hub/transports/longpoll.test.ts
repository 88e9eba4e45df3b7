// Long-polling over HTTP on 127.0.0.1: news already there is answered at once; otherwise the
// poll waits for a publication, its timeout, or the node closing (a draining worker).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sleep, startTestServer, type TestServer } from '../harness.js';

const query = (channels: unknown) => `channels=${encodeURIComponent(JSON.stringify(channels))}`;

async function poll(url: string, init: RequestInit = {}): Promise<{ status: number; body: any }> {
  const response = await fetch(url, init);
  return { status: response.status, body: (await response.json()) as any };
}

const postPoll = (base: string, body: unknown) =>
  poll(`${base}/hub/poll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('long-polling', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ hub: { namespaces: [{ name: 'news', subscribe: 'anyone', historySize: 10 }], limits: { longPollTimeoutMs: 10_000 } } });
  });
  after(() => server.close());

  test('news already in history is answered at once (POST and GET), without waiting', async () => {
    const first = await server.node.publish('news:now', 'a');
    await server.node.publish('news:now', 'b');
    const byPost = postPoll(server.http, { channels: { 'news:now': first }, timeoutMs: 10_000 });
    const byGet = poll(`${server.http}/hub/poll?${query({ 'news:now': first })}&timeoutMs=10000`);
    const both = await Promise.race([Promise.all([byPost, byGet]), sleep(5_000).then(() => null)]);
    assert.ok(both !== null, 'both polls answered long before their timeout');
    const [post, get] = both;
    assert.deepEqual(post.body.channels['news:now'].publications.map((p: any) => p.data), ['b']);
    assert.deepEqual(get.body, post.body);
  });

  test('a GET poll waits for the next publication, then answers with it', async () => {
    const at = await server.node.publish('news:wait', 1);
    let answered = false;
    const waiting = poll(`${server.http}/hub/poll?${query({ 'news:wait': at })}`).then((r) => ((answered = true), r));
    await sleep(150);
    assert.equal(answered, false, 'nothing new: the poll waits');
    await server.node.publish('news:wait', 2);
    const { status, body } = await waiting;
    assert.equal(status, 200);
    assert.deepEqual(body.channels['news:wait'].publications.map((p: any) => p.data), [2]);
  });

  test('a GET poll with timeoutMs answers empty when nothing comes', async () => {
    const at = await server.node.publish('news:quiet', 1);
    const { status, body } = await poll(`${server.http}/hub/poll?${query({ 'news:quiet': at })}&timeoutMs=100`);
    assert.equal(status, 200);
    assert.deepEqual(body.channels['news:quiet'], { position: at, lost: false, publications: [] });
  });

  test('bad input is a 4xx naming the problem, also for GET', async () => {
    const missing = await poll(`${server.http}/hub/poll?timeoutMs=100`);
    assert.equal(missing.status, 400);
    assert.match(missing.body.error.message, /field "channels": required/);
    const negative = await postPoll(server.http, { channels: {}, timeoutMs: -5 });
    assert.equal(negative.status, 400);
    assert.match(negative.body.error.message, /field "timeoutMs"/);
  });
});

test('closing the node answers every waiting poll at once', async () => {
  const server = await startTestServer({ hub: { namespaces: [{ name: 'news', subscribe: 'anyone' }], limits: { longPollTimeoutMs: 20_000 } } });
  try {
    const at = await server.node.publish('news:drain', 1);
    const waiting = [1, 2, 3].map(() => poll(`${server.http}/hub/poll?${query({ 'news:drain': at })}`));
    await sleep(150);
    const closing = server.node.close({ closeBackend: false });
    const answers = await Promise.race([Promise.all(waiting), sleep(5_000).then(() => null)]);
    await closing;
    assert.ok(answers !== null, 'the polls were answered when the node closed, not at their timeout');
    for (const answer of answers) {
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.body.channels['news:drain'].publications, []);
    }
  } finally {
    await server.close();
  }
});
