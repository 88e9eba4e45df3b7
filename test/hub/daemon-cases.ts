// The hub's real-daemon cases (2 web workers and the hub writer, talked to as users do),
// run once per backend by daemon.test.ts (shm) and daemon-socket.test.ts.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { segmentPrefix } from '../../src/shm/app-api.js';
import { isAlive, type TestProject, waitFor } from '../helpers/daemon.js';
import {
  API_KEY,
  apiCall,
  hubProjectConfig,
  publishReliably,
  publishSocketCall,
  SECRET,
  startHubProject,
  TestClient,
  token,
} from './daemon-helpers.js';
import { RawClient } from './harness.js';

export function hubDaemonCases(backend: 'shm' | 'socket'): void {
  describe(`the hub in the daemon (${backend} backend)`, () => {
    let project: TestProject;
    const clients: { close(): void }[] = [];
    before(async () => {
      project = await startHubProject({ backend });
    });
    after(async () => {
      for (const client of clients) client.close();
      await project.cleanup();
    });

    test(`the writer hands the log to the web workers by ${backend}`, () => {
      const ring = `/dev/shm/${segmentPrefix(join(project.dir, '.kobold'))}hub.ring`;
      assert.equal(existsSync(ring), backend === 'shm', ring);
    });

    const wsUrl = () => `ws://127.0.0.1:${project.port}/hub/ws`;

    /** Raw WebSocket clients, opened until one is on each web worker (told apart by the hub node id in the client id). */
    async function clientsOnBothWorkers(tokens: string[]): Promise<[RawClient, RawClient]> {
      const byNode = new Map<string, RawClient>();
      for (let i = 0; byNode.size < 2; i++) {
        assert.ok(i < 40, 'never reached a second worker');
        const client = await RawClient.open(wsUrl());
        clients.push(client);
        const reply = await client.call('connect', { token: tokens[byNode.size] });
        const node = String(reply.result.client).split('.')[0];
        if (byNode.has(node)) client.close();
        else byNode.set(node, client);
      }
      return [...byNode.values()] as [RawClient, RawClient];
    }

    test('a client on one worker receives what a client on the other published; presence spans workers', async () => {
      const [a, b] = await clientsOnBothWorkers([await token('ann'), await token('bob')]);
      assert.equal((await a.call('subscribe', { channel: 'room:cross' })).error, undefined);
      assert.equal((await b.call('subscribe', { channel: 'room:cross' })).error, undefined);
      const join = await a.waitFor((frame) => frame.push === 'join' && frame.user.userId === 'bob');
      assert.equal(join.channel, 'room:cross');

      const published = await a.call('publish', { channel: 'room:cross', data: { text: 'from A' } });
      const delivered = await b.waitFor((frame) => frame.push === 'pub' && frame.channel === 'room:cross');
      assert.deepEqual(delivered.data, { text: 'from A' });
      assert.equal(delivered.offset, published.result.offset);
      assert.equal(delivered.info.userId, 'ann');

      const presence = await b.call('presence', { channel: 'room:cross' });
      assert.deepEqual(presence.result.users.map((user: { userId: string }) => user.userId).sort(), ['ann', 'bob']);
      assert.deepEqual(presence.result.counts, { clients: 2, users: 2 });

      b.close();
      const leave = await a.waitFor((frame) => frame.push === 'leave' && frame.user.userId === 'bob');
      assert.equal(leave.channel, 'room:cross');
    });

    test('publishing through the HTTP API, the UNIX publish socket and ctx.hub reaches clients on every worker', async () => {
      const [a, b] = await clientsOnBothWorkers([await token('cat'), await token('dan')]);
      for (const client of [a, b]) await client.call('subscribe', { channel: 'room:pub' });
      await client_subscribe_app(a, b);

      const api = await apiCall(project.url, 'publish', { channel: 'room:pub', data: 'via api' });
      assert.equal(api.status, 200);
      const line = await publishSocketCall(join(project.dir, '.kobold/publish.sock'), JSON.stringify({ id: 7, method: 'publish', channel: 'room:pub', data: 'via socket' }));
      assert.equal(JSON.parse(line).id, 7);
      assert.equal(JSON.parse(line).result.offset, api.body.result.offset + 1);
      for (const client of [a, b]) {
        await client.waitFor((frame) => frame.push === 'pub' && frame.data === 'via socket');
        assert.deepEqual(client.pubs('room:pub').map((frame) => frame.data), ['via api', 'via socket']);
      }

      const fromApp = await fetch(`${project.url}/app-publish`, { method: 'POST' });
      assert.equal(fromApp.status, 200);
      for (const client of [a, b]) await client.waitFor((frame) => frame.push === 'pub' && frame.channel === 'room:app');

      const broadcast = await apiCall(project.url, 'broadcast', { channels: ['room:pub', 'room:app'], data: 'both' });
      assert.equal(broadcast.status, 200);
      const history = await apiCall(project.url, 'history', { channel: 'room:pub', limit: 10 });
      assert.deepEqual(history.body.result.publications.map((p: { data: unknown }) => p.data), ['via api', 'via socket', 'both']);

      const noKey = await apiCall(project.url, 'publish', { channel: 'room:pub', data: 1 }, null);
      assert.equal(noKey.status, 401);
      assert.equal(noKey.body.error.code, 'KOBOLD_ERR_HUB_API_KEY');
      const wrongKey = await apiCall(project.url, 'publish', { channel: 'room:pub', data: 1 }, API_KEY.replace('0', '1'));
      assert.equal(wrongKey.status, 401);
      const badChannel = await apiCall(project.url, 'publish', { channel: 'nowhere:x', data: 1 });
      assert.equal(badChannel.body.error.code, 'KOBOLD_ERR_HUB_UNKNOWN_NAMESPACE');
      const badLine = await publishSocketCall(join(project.dir, '.kobold/publish.sock'), '{"method":"publish"');
      assert.equal(JSON.parse(badLine).error.code, 'KOBOLD_ERR_HUB_INVALID_JSON');
    });

    async function client_subscribe_app(...clients: RawClient[]): Promise<void> {
      for (const client of clients) await client.call('subscribe', { channel: 'room:app' });
    }

    for (const transport of ['websocket', 'sse', 'longpoll', 'refresh'] as const) {
      test(`${transport}: subscribe, receive, publish, history and presence through the daemon`, async () => {
        const channel = `room:t-${transport}`;
        const client = new TestClient(project.url, transport, { token: await token(`u-${transport}`) });
        clients.push(client);
        client.subscribe(channel);
        await client.connected();
        assert.equal(client.client.transport, transport);
        await publishReliably(project.url, channel, 'first');
        await client.waitForOffsets(channel, 1, 'the first publication');
        const own = await client.client.publish(channel, 'second');
        assert.equal(own.offset, 2);
        await client.waitForOffsets(channel, 2, 'its own publication');
        assert.deepEqual(client.received.get(channel)!.map((p) => p.data), ['first', 'second']);
        const history = await client.client.history(channel, { limit: 5 });
        assert.deepEqual(history.publications.map((p) => p.data), ['first', 'second']);
        const presence = await client.client.presence(channel);
        // Presence lists the streaming transports' connections only (docs/protocol.md).
        assert.equal(presence.counts.clients, transport === 'websocket' || transport === 'sse' ? 1 : 0);
        client.close();
      });
    }

    test('auth: bad, unsigned and expired tokens and forbidden publishes are refused with clear errors', async () => {
      const wrongKey = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('eve').setExpirationTime('1h').sign(new TextEncoder().encode('x'.repeat(40)));
      const bad = await RawClient.open(wsUrl());
      clients.push(bad);
      const badReply = await bad.call('connect', { token: wrongKey });
      assert.equal(badReply.error.code, 'KOBOLD_ERR_HUB_TOKEN_INVALID');
      assert.equal(await bad.waitForClose(), 3500);

      const unsigned = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from('{"sub":"eve","exp":9999999999}').toString('base64url')}.`;
      const none = await RawClient.open(wsUrl());
      clients.push(none);
      assert.match((await none.call('connect', { token: unsigned })).error.message, /algorithm not allowed|not a JWT|invalid token/);

      const expired = await RawClient.open(wsUrl());
      clients.push(expired);
      const expiredReply = await expired.call('connect', { token: await signHubTokenExpired() });
      assert.equal(expiredReply.error.code, 'KOBOLD_ERR_HUB_TOKEN_EXPIRED');
      assert.equal(await expired.waitForClose(), 3003);

      const sse = await fetch(`${project.url}/hub/sse?subscribe=${encodeURIComponent('{"room:x":null}')}`, { headers: { authorization: `Bearer ${wrongKey}` } });
      assert.equal(sse.status, 401);
      assert.equal(((await sse.json()) as any).error.code, 'KOBOLD_ERR_HUB_TOKEN_INVALID');

      const anonymous = await RawClient.open(wsUrl());
      clients.push(anonymous);
      await anonymous.call('connect', {});
      assert.equal((await anonymous.call('subscribe', { channel: 'secure:x' })).error.code, 'KOBOLD_ERR_HUB_FORBIDDEN');
      assert.equal((await anonymous.call('publish', { channel: 'secure:x', data: 1 })).error.code, 'KOBOLD_ERR_HUB_FORBIDDEN');
      const poll = await fetch(`${project.url}/hub/command`, { method: 'POST', body: JSON.stringify({ cmd: 'publish', channel: 'secure:x', data: 1 }) });
      assert.equal(poll.status, 403);
    });

    async function signHubTokenExpired(): Promise<string> {
      const key = new TextEncoder().encode(SECRET);
      return new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('old').setExpirationTime(Math.floor(Date.now() / 1000) - 60).sign(key);
    }

    /** A WebSocket client on `channel` that has received the channel's first publication. */
    async function clientAfterFirst(channel: string): Promise<{ client: TestClient; first: { offset: number; epoch: string } }> {
      const client = new TestClient(project.url, 'websocket');
      clients.push(client);
      client.subscribe(channel);
      await client.connected();
      const first = await publishReliably(project.url, channel, 1);
      await client.waitForOffsets(channel, 1, 'the first publication');
      return { client, first };
    }

    test('a client resumes without loss after its web worker is SIGKILLed', async () => {
      const channel = 'room:kill';
      const client = new TestClient(project.url, 'websocket');
      clients.push(client);
      client.subscribe(channel);
      await client.connected();
      for (let i = 1; i <= 5; i++) await publishReliably(project.url, channel, i);
      await client.waitForOffsets(channel, 5, 'publications before the kill');
      // Both web workers die, so the client's surely does; the master starts new ones.
      const victims = project.fullStatus().workers.filter((worker) => worker.service === 'web').map((worker) => worker.pid);
      for (const pid of victims) process.kill(pid, 'SIGKILL');
      for (let i = 6; i <= 10; i++) await publishReliably(project.url, channel, i);
      await client.waitForOffsets(channel, 10, 'publications after the kill');
      assert.deepEqual(client.offsets(channel), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      assert.deepEqual(client.resyncs, []);
      assert.ok(victims.every((pid) => !isAlive(pid)));
    });

    test('a client resumes without loss across `kobold reload` (web workers and the hub writer replaced)', async () => {
      const channel = 'room:reload';
      const { client, first } = await clientAfterFirst(channel);
      const before = project.workerPids();
      const reload = project.koboldAsync(['reload']);
      let sent = 1;
      let done = false;
      void reload.then(() => (done = true));
      while (!done) {
        await publishReliably(project.url, channel, ++sent);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.equal((await reload).code, 0);
      const last = await publishReliably(project.url, channel, ++sent);
      assert.equal(last.epoch, first.epoch, 'the stream kept its epoch: the new writer took the log over');
      await client.waitForOffsets(channel, sent, 'every publication');
      assert.deepEqual(client.offsets(channel), Array.from({ length: sent }, (_, i) => i + 1));
      assert.deepEqual(client.resyncs, []);
      assert.ok(project.workerPids().every((pid) => !before.includes(pid)), 'every worker was replaced');
    });

    test('a writer that handed the log to a successor which then failed leaves; after a fixed reload a fresh writer serves', async () => {
      const channel = 'room:failed-successor';
      const { client, first } = await clientAfterFirst(channel);
      const handedOver = project.fullStatus().workers.find((worker) => worker.service === 'hub' && worker.state === 'ready')!.pid;
      const webBefore = project.fullStatus().workers.filter((worker) => worker.service === 'web' && worker.state === 'ready').map((worker) => worker.pid);
      // A config whose publish socket path another process listens on: the new writer takes
      // the log over, then fails its setup.
      const taken = join(project.dir, 'taken.sock');
      const squatter = createServer((probe) => probe.destroy());
      squatter.listen(taken);
      await once(squatter, 'listening');
      try {
        // (Web workers started meanwhile wait 2 s for the missing writer instead of 10, then start without it.)
        project.writeConfig(hubProjectConfig(project.port, { backend, publishSocketPath: taken, writerConnectTimeoutMs: 2000 }));
        const badReload = await project.koboldAsync(['reload']);
        assert.equal(badReload.code, 1, badReload.stdout);
        assert.match(badReload.stderr, /\(hub\): .*EADDRINUSE.*; it had handed its work over, so a fresh worker was started in its place/);
        assert.match(project.log(), /handed its work over and its replacement failed \(reload\): .*EADDRINUSE/);
        await waitFor(() => !isAlive(handedOver), 'the writer that handed over to leave');
        // The fresh writer started in its place meets the same listener: the service is failing, with no writer left serving.
        const hub = await waitFor(() => project.fullStatus().services.find((service) => service.name === 'hub' && service.failing !== null), 'the hub service to be failing');
        assert.equal(hub.workers, 0);
        // The hub's failure does not keep the site from being served: the web workers were replaced all the same.
        assert.doesNotMatch(badReload.stderr, /\(web\)/);
        const webAfter = project.fullStatus().workers.filter((worker) => worker.service === 'web' && worker.state === 'ready').map((worker) => worker.pid);
        assert.equal(webAfter.length, webBefore.length);
        assert.ok(webAfter.every((pid) => !webBefore.includes(pid)), `new web workers: ${webBefore} -> ${webAfter}`);
        assert.equal((await fetch(`${project.url}/hub/client.js`)).status, 200);
      } finally {
        squatter.close();
      }
      project.writeConfig(hubProjectConfig(project.port, { backend }));
      const reload = await project.koboldAsync(['reload']);
      assert.equal(reload.code, 0, reload.stderr);
      const next = await publishReliably(project.url, channel, 2);
      if (backend === 'shm') {
        assert.deepEqual(next, { offset: 2, epoch: first.epoch }, 'the fresh writer continued the stream from the ring');
        await client.waitForOffsets(channel, 2, 'the publication after the failure');
        assert.deepEqual(client.offsets(channel), [1, 2]);
        assert.deepEqual(client.resyncs, []);
      } else {
        // The socket backend keeps the log in the writer only: the stream starts over, and the client is told.
        assert.notEqual(next.epoch, first.epoch);
        await waitFor(() => client.resyncs.includes(channel), 'the client to be told to resync');
      }
      assert.deepEqual(client.errors, [], 'no channel was dropped while the writer was away');
      const line = JSON.parse(await publishSocketCall(join(project.dir, '.kobold/publish.sock'), JSON.stringify({ method: 'publish', channel, data: 3 })));
      assert.equal(line.result.offset, next.offset + 1, 'the fresh writer serves the publish socket');
    });
  });
}
