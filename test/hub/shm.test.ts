// The `shm` backend: the broker contract with the writer in a child process, history read
// from the ring without the writer, publications larger than a record, a reader lapped by
// the writer, and writer restarts (SIGKILL, hand-over, a file-backed ring).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { isKoboldError } from '../../src/errors.js';
import { connectHubLog, ShmBackend } from '../../src/hub/backends/shm.js';
import type { RingLogOptions } from '../../src/hub/ring-log.js';
import type { HubBackend, Publication } from '../../src/hub/types.js';
import { SharedRing } from '../../src/shm/ring.js';
import { brokerContract, CONTRACT_NAMESPACES } from './broker.contract.js';
import { removeRing, ringOptions, startRingWriter } from './fixtures/ring.js';
import { startWriter, stopWriter as stop } from './fixtures/writer.js';

const dir = mkdtempSync(join(tmpdir(), 'kobold-hub-shm-'));
const rings: RingLogOptions[] = [];
after(() => {
  for (const ring of rings) removeRing(ring);
  rmSync(dir, { recursive: true, force: true });
});
let sockets = 0;

function newRing(overrides: Parameters<typeof ringOptions>[1] = {}): RingLogOptions {
  const ring = ringOptions(dir, overrides);
  rings.push(ring);
  return ring;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(predicate: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !predicate(); i++) await sleep(10);
  assert.ok(predicate(), `timed out waiting for ${what}`);
}

function open(socketPath: string, requestTimeoutMs = 5000) {
  return connectHubLog({ socketPath, namespaces: CONTRACT_NAMESPACES, requestTimeoutMs, reconnectDelayMs: [20, 200] });
}

brokerContract('shm (ring writer in a child process)', async (namespaces) => {
  const socketPath = join(dir, `contract-${++sockets}.sock`);
  const { child } = await startRingWriter(socketPath, namespaces, newRing());
  const ends: HubBackend[] = [];
  return {
    open: async () => {
      const end = await connectHubLog({ socketPath, namespaces });
      assert.ok(end instanceof ShmBackend, 'a writer with a ring gives ring readers');
      ends.push(end);
      return end;
    },
    close: async () => {
      for (const end of ends) await (end as ShmBackend).close();
      await stop(child);
    },
  };
});

describe('shm backend', () => {
  test('history and catch-up are answered from the ring while the writer cannot answer', async () => {
    const socketPath = join(dir, `stopped-${++sockets}.sock`);
    const writer = await startRingWriter(socketPath, CONTRACT_NAMESPACES, newRing());
    const a = await open(socketPath, 300);
    try {
      let epoch = '';
      for (let i = 1; i <= 4; i++) epoch = (await a.publish('room:quiet', String(i))).epoch;
      writer.child.kill('SIGSTOP');
      try {
        const since = await a.history('room:quiet', { since: { offset: 1, epoch } });
        assert.deepEqual(since.publications.map((p) => p.data), ['2', '3', '4']);
        assert.deepEqual(since.position, { offset: 4, epoch });
        const newest = await a.history('room:quiet', { limit: 2 });
        assert.deepEqual(newest.publications.map((p) => p.offset), [3, 4]);
        const unknown = await a.history('room:never').then(
          () => 'answered',
          (error) => (isKoboldError(error, 'KOBOLD_ERR_HUB_TIMEOUT') ? 'asked the writer' : String(error)),
        );
        assert.equal(unknown, 'asked the writer', 'a channel the ring never held needs the writer');
      } finally {
        writer.child.kill('SIGCONT');
      }
    } finally {
      await a.close();
      await stop(writer.child);
    }
  });

  test('a publication larger than a record spans several; one larger than a quarter of the ring is refused', async () => {
    const socketPath = join(dir, `large-${++sockets}.sock`);
    const ring = newRing({ recordBytes: 64, records: 256 });
    const writer = await startRingWriter(socketPath, CONTRACT_NAMESPACES, ring);
    const a = await open(socketPath);
    const b = await open(socketPath);
    try {
      const big = JSON.stringify({ text: 'é✓'.repeat(300) });
      const seen: Publication[] = [];
      b.onPublication((publication) => seen.push(publication));
      await a.publish('room:big', '"small"');
      const position = await a.publish('room:big', big, { info: { userId: 'u', clientId: 'c' } });
      await a.publish('room:big', '"after"');
      await until(() => seen.length === 3, 'three publications');
      assert.deepEqual(seen.map((p) => p.data), ['"small"', big, '"after"']);
      assert.deepEqual(seen[1].info, { userId: 'u', clientId: 'c' });
      const history = await b.history('room:big', { since: { offset: 0, epoch: position.epoch } });
      assert.deepEqual(history.publications.map((p) => p.data), ['"small"', big, '"after"']);
      const tooBig = await a.publish('room:big', JSON.stringify('x'.repeat(64 * 256))).catch((error) => error);
      assert.ok(isKoboldError(tooBig, 'KOBOLD_ERR_HUB_TOO_LARGE'), String(tooBig));
      assert.equal((await a.publish('room:big', '"still fine"')).offset, 4, 'a refused publication takes no offset');
    } finally {
      await a.close();
      await b.close();
      await stop(writer.child);
    }
  });

  test('a reader lapped by the writer resyncs: history answers "lost" with the newest, deliveries stay whole', async () => {
    const socketPath = join(dir, `lapped-${++sockets}.sock`);
    const ring = newRing({ records: 256 });
    const writer = await startRingWriter(socketPath, CONTRACT_NAMESPACES, ring);
    const a = await open(socketPath);
    try {
      const first = await a.publish('room:lap', JSON.stringify({ i: -1 }));
      const seen: Publication[] = [];
      a.onPublication((publication) => seen.push(publication));
      let rechecks = 0;
      a.onReconnect(() => rechecks++);
      // Keep this event loop busy while the writer laps the ring several times.
      const shared = SharedRing.open(ring.segment);
      const target = shared.head + 1000;
      writer.child.send({ publish: { channel: 'room:lap', count: 1000 } });
      const deadline = Date.now() + 15_000;
      while (shared.head < target && Date.now() < deadline) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
      assert.equal(shared.head, target);
      await until(() => rechecks > 0, 'the lap to be noticed');
      await until(() => seen.length > 0 && JSON.parse(seen[seen.length - 1].data).i === 999, 'the last publication');
      for (const publication of seen) assert.equal(JSON.parse(publication.data).i, publication.offset - 2, 'whole publications only');
      assert.ok(seen.length < 1000, 'the lapped records were not delivered');
      const resync = await a.history('room:lap', { since: first });
      assert.equal(resync.lost, true);
      assert.deepEqual(resync.publications.map((p) => p.offset), [997, 998, 999, 1000, 1001], 'the newest, to resync from');
    } finally {
      await a.close();
      await stop(writer.child);
    }
  });

  test('after the writer is SIGKILLed, a new one continues the streams from the ring and readers carry on', async () => {
    const socketPath = join(dir, `killed-${++sockets}.sock`);
    const ring = newRing();
    let writer = await startRingWriter(socketPath, CONTRACT_NAMESPACES, ring);
    const a = await open(socketPath);
    const b = await open(socketPath);
    try {
      const seen: Publication[] = [];
      b.onPublication((publication) => seen.push(publication));
      const before = await a.publish('room:k', '1');
      await a.publish('room:k', '2');
      await stop(writer.child, 'SIGKILL');
      writer = await startRingWriter(socketPath, CONTRACT_NAMESPACES, ring);
      const next = await a.publish('room:k', '3');
      assert.deepEqual(next, { offset: 3, epoch: before.epoch }, 'same epoch, next offset');
      await until(() => seen.length === 3, 'b to see the publication after the restart');
      assert.deepEqual(seen.map((p) => p.offset), [1, 2, 3]);
      const history = await b.history('room:k', { since: before });
      assert.equal(history.lost, false);
      assert.deepEqual(history.publications.map((p) => p.data), ['2', '3']);
    } finally {
      await a.close();
      await b.close();
      await stop(writer.child);
    }
  });

  test("a worker started before its writer goes on without it, then follows the writer's ring once it greets", async () => {
    const socketPath = join(dir, `late-${++sockets}.sock`);
    const ring = newRing();
    const a = await connectHubLog({ socketPath, namespaces: CONTRACT_NAMESPACES, connectTimeoutMs: 200, requestTimeoutMs: 300, reconnectDelayMs: [20, 100] });
    let writer: Awaited<ReturnType<typeof startRingWriter>> | null = null;
    let b: ShmBackend | null = null;
    try {
      assert.ok(a instanceof ShmBackend, 'a ring reader still waiting for its ring');
      assert.equal(a.segment, null);
      await assert.rejects(a.publish('room:late', '0'), (error) => isKoboldError(error, 'KOBOLD_ERR_HUB_TIMEOUT'));
      const seen: Publication[] = [];
      a.onPublication((publication) => seen.push(publication));
      let greeted = 0;
      a.onReconnect(() => greeted++);
      writer = await startRingWriter(socketPath, CONTRACT_NAMESPACES, ring);
      await until(() => greeted === 1, 'the writer to greet the worker');
      assert.equal(a.segment, ring.segment);
      b = (await open(socketPath)) as ShmBackend;
      const first = await b.publish('room:late', '1');
      await until(() => seen.length === 1, 'the worker to read the publication from the ring');
      assert.deepEqual(seen[0].data, '1');
      const local = a.historyNow('room:late');
      assert.ok(local !== null, 'history answered from the ring');
      assert.deepEqual(local.position, first);
      assert.deepEqual(local.publications.map((p) => p.data), ['1']);
    } finally {
      await a.close();
      await b?.close();
      if (writer !== null) await stop(writer.child);
    }
  });

  test('a worker started before a writer without a ring follows it over the socket; each publication moves its head', async () => {
    const socketPath = join(dir, `late-plain-${++sockets}.sock`);
    const a = await connectHubLog({ socketPath, namespaces: CONTRACT_NAMESPACES, connectTimeoutMs: 200, reconnectDelayMs: [20, 100] });
    let writer: Awaited<ReturnType<typeof startWriter>> | null = null;
    try {
      assert.ok(a instanceof ShmBackend);
      const seen: Publication[] = [];
      a.onPublication((publication) => seen.push(publication));
      let greeted = 0;
      a.onReconnect(() => greeted++);
      writer = await startWriter(socketPath, CONTRACT_NAMESPACES);
      await until(() => greeted === 1, 'the writer to greet the worker');
      const versions = [a.headVersion('room:plain')];
      const first = await a.publish('room:plain', '1');
      await until(() => seen.length === 1, 'the publication over the socket');
      versions.push(a.headVersion('room:plain'));
      await a.publish('room:plain', '2');
      await until(() => seen.length === 2, 'the second publication');
      versions.push(a.headVersion('room:plain'));
      assert.equal(new Set(versions).size, 3, `a kept answer must give way to each publication: versions ${versions.join(', ')}`);
      assert.equal(a.segment, null);
      const history = await a.history('room:plain', { since: first });
      assert.deepEqual(history.publications.map((p) => p.data), ['2'], 'history beyond the head comes from the writer');
    } finally {
      await a.close();
      if (writer !== null) await stop(writer.child);
    }
  });

  test('a new writer takes the ring over from a live one (reload), and a file-backed ring survives both stopping', async () => {
    const socketPath = join(dir, `handover-${++sockets}.sock`);
    const ring = newRing({ file: true });
    const first = await startRingWriter(socketPath, CONTRACT_NAMESPACES, ring);
    const a = await open(socketPath);
    const seen: Publication[] = [];
    a.onPublication((publication) => seen.push(publication));
    const one = await a.publish('room:h', '1');
    const second = await startRingWriter(socketPath, CONTRACT_NAMESPACES, ring);
    await stop(first.child);
    const two = await a.publish('room:h', '2');
    assert.deepEqual(two, { offset: 2, epoch: one.epoch });
    await until(() => seen.length === 2, 'the publication through the new writer');
    await a.close();
    await stop(second.child);

    const third = await startRingWriter(socketPath, CONTRACT_NAMESPACES, ring);
    const c = await open(socketPath);
    try {
      const history = await c.history('room:h');
      assert.deepEqual(history.publications.map((p) => p.data), ['1', '2']);
      assert.deepEqual(history.position, { offset: 2, epoch: one.epoch });
    } finally {
      await c.close();
      await stop(third.child);
    }
  });
});
