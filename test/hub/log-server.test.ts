// A new writer takes the log over from the old one (what `kobold reload` does to the hub service).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { connectHub } from '../../src/hub/backends/socket.js';
import { startHubLogServer } from '../../src/hub/log-server.js';
import type { Publication } from '../../src/hub/types.js';
import { CONTRACT_NAMESPACES } from './broker.contract.js';

const dir = mkdtempSync(join(tmpdir(), 'kobold-hub-takeover-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a taking-over writer continues every stream: same epoch, next offset, history kept', async () => {
  const socketPath = join(dir, 'hub.sock');
  let handedOver = 0;
  const old = await startHubLogServer({ socketPath, namespaces: CONTRACT_NAMESPACES, beforeHandOver: async () => void handedOver++ });
  const worker = await connectHub({ socketPath, reconnectDelayMs: [20, 100] });
  const seen: Publication[] = [];
  worker.onPublication((publication) => seen.push(publication));
  try {
    const first = await worker.publish('room:a', '1');
    await worker.publish('room:a', '2');
    const reconnected = new Promise<void>((resolve) => worker.onReconnect(resolve));
    const successor = await startHubLogServer({ socketPath, namespaces: CONTRACT_NAMESPACES, takeOver: true });
    try {
      assert.equal(handedOver, 1);
      // A publish in flight during the hand-over fails (the old writer ends the connection before acking it).
      await reconnected;
      const third = await worker.publish('room:a', '3');
      assert.deepEqual(third, { offset: 3, epoch: first.epoch });
      const history = await worker.history('room:a', { since: first });
      assert.equal(history.lost, false);
      assert.deepEqual(history.publications.map((p) => p.data), ['2', '3']);
      assert.equal(successor.connections(), 1);
      assert.equal(old.connections(), 0);
    } finally {
      await successor.close();
    }
  } finally {
    await worker.close();
    await old.close();
  }
});

test('takeOver with no live writer (a dead one left its socket file) starts fresh', async () => {
  const socketPath = join(dir, 'stale.sock');
  const first = await startHubLogServer({ socketPath, namespaces: CONTRACT_NAMESPACES });
  const worker = await connectHub({ socketPath });
  const position = await worker.publish('room:a', '1');
  await worker.close();
  await first.close();
  const second = await startHubLogServer({ socketPath, namespaces: CONTRACT_NAMESPACES, takeOver: true });
  try {
    const again = await connectHub({ socketPath });
    const next = await again.publish('room:a', '1');
    assert.equal(next.offset, 1);
    assert.notEqual(next.epoch, position.epoch);
    await again.close();
  } finally {
    await second.close();
  }
});
