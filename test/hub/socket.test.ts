import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { isKoboldError } from '../../src/errors.js';
import { connectHub, SocketBackend } from '../../src/hub/backends/socket.js';
import type { PresenceEvent } from '../../src/hub/types.js';
import { brokerContract, CONTRACT_NAMESPACES } from './broker.contract.js';
import { startWriter, stopWriter as stop } from './fixtures/writer.js';

const dir = mkdtempSync(join(tmpdir(), 'kobold-hub-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let sockets = 0;

brokerContract('socket (log server in a child process)', async (namespaces) => {
  const socketPath = join(dir, `contract-${++sockets}.sock`);
  const { child } = await startWriter(socketPath, namespaces);
  const ends: SocketBackend[] = [];
  return {
    open: async () => {
      const end = await connectHub({ socketPath });
      ends.push(end);
      return end;
    },
    close: async () => {
      for (const end of ends) await end.close();
      await stop(child);
    },
  };
});

describe('socket backend across writer restarts', () => {
  test('ends reconnect to a restarted writer, see a new epoch, fire onReconnect and re-add presence', async () => {
    const socketPath = join(dir, `restart-${++sockets}.sock`);
    let writer = await startWriter(socketPath, CONTRACT_NAMESPACES);
    const a = await connectHub({ socketPath, reconnectDelayMs: [20, 200] });
    const b = await connectHub({ socketPath, reconnectDelayMs: [20, 200] });
    try {
      const before = await a.publish('room:x', '1');
      await a.addPresence('room:x', { clientId: 'a-1', userId: 'u1' });
      let reconnected = 0;
      a.onReconnect(() => reconnected++);

      await stop(writer.child, 'SIGKILL');
      for (let i = 0; i < 250 && a.connected; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(a.connected, false);
      const whileDown = a.publish('room:x', '2');
      writer = await startWriter(socketPath, CONTRACT_NAMESPACES);
      const after = await whileDown;
      assert.equal(after.offset, 1, 'the new writer starts a new stream');
      assert.notEqual(after.epoch, before.epoch, 'and a new epoch, so resumes from the old one answer "lost"');
      const resume = await b.history('room:x', { since: before });
      assert.equal(resume.lost, true);
      assert.equal(reconnected, 1);
      assert.deepEqual(await b.presence('room:x'), [{ userId: 'u1', connections: 1 }], 'presence re-added by its holder');
    } finally {
      await a.close();
      await b.close();
      await stop(writer.child);
    }
  });

  test('a worker that goes away takes its presence with it (leave events elsewhere)', async () => {
    const socketPath = join(dir, `leave-${++sockets}.sock`);
    const writer = await startWriter(socketPath, CONTRACT_NAMESPACES);
    const a = await connectHub({ socketPath });
    const b = await connectHub({ socketPath });
    try {
      const events: PresenceEvent[] = [];
      b.onPresence((event) => events.push(event));
      await a.addPresence('room:y', { clientId: 'a-1', userId: 'u7' });
      await a.close();
      for (let i = 0; i < 100 && events.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.deepEqual(events.map((e) => `${e.type} ${e.user.userId}`), ['join u7', 'leave u7']);
      assert.deepEqual(await b.presenceCounts('room:y'), { clients: 0, users: 0 });
    } finally {
      await b.close();
      await stop(writer.child);
    }
  });

  test('connectHub gives up with a clear error when no writer answers', async () => {
    await assert.rejects(
      connectHub({ socketPath: join(dir, 'nobody.sock'), connectTimeoutMs: 200, reconnectDelayMs: [20, 50] }),
      (error) => isKoboldError(error, 'KOBOLD_ERR_HUB_UNAVAILABLE') && /no log server/.test(error.message),
    );
  });

  test('started to keep trying, an end goes on without a writer and sends what waited once one greets', async () => {
    const socketPath = join(dir, `late-${++sockets}.sock`);
    const a = new SocketBackend({ socketPath, connectTimeoutMs: 200, requestTimeoutMs: 10_000, reconnectDelayMs: [20, 100] });
    let writer: Awaited<ReturnType<typeof startWriter>> | null = null;
    try {
      assert.equal(await a.startOrKeepTrying(), false, 'no writer within connectTimeoutMs');
      let greeted = 0;
      a.onReconnect(() => greeted++);
      const waiting = a.publish('room:w', '1');
      writer = await startWriter(socketPath, CONTRACT_NAMESPACES);
      assert.equal((await waiting).offset, 1, 'the publish made while no writer was there');
      assert.equal(greeted, 1, 'reconnect listeners hear of the first writer');
    } finally {
      await a.close();
      if (writer !== null) await stop(writer.child);
    }
  });

  test('a request times out with a clear error while the writer stays away', async () => {
    const socketPath = join(dir, `timeout-${++sockets}.sock`);
    const writer = await startWriter(socketPath, CONTRACT_NAMESPACES);
    const a = await connectHub({ socketPath, requestTimeoutMs: 150, reconnectDelayMs: [20, 50] });
    try {
      await stop(writer.child, 'SIGKILL');
      await assert.rejects(a.history('room:z'), (error) => isKoboldError(error, 'KOBOLD_ERR_HUB_TIMEOUT'));
    } finally {
      await a.close();
    }
  });
});
