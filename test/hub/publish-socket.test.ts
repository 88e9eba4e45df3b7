import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MemoryBackend } from '../../src/hub/backends/memory.js';
import { HubNode } from '../../src/hub/node.js';
import { resolveHubOptions } from '../../src/hub/options.js';
import { type PublishSocket, startPublishSocket } from '../../src/hub/publish-socket.js';

/** Sends raw text, half-closes, and returns the reply lines. */
function exchange(socketPath: string, text: string): Promise<any[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => (received += chunk));
    socket.on('end', () => resolve(received.split('\n').filter(Boolean).map((line) => JSON.parse(line))));
    socket.on('error', reject);
    socket.end(text);
  });
}

describe('UNIX-socket publisher', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kobold-pub-'));
  const socketPath = join(dir, 'publish.sock');
  let node: HubNode;
  let publisher: PublishSocket;
  before(async () => {
    const hub = resolveHubOptions({ namespaces: [{ name: 'news', historySize: 10 }] });
    node = new HubNode({ backend: new MemoryBackend({ namespaces: hub.namespaces }), hub });
    publisher = await startPublishSocket({ socketPath, node, maxLineBytes: 4096 });
  });
  after(async () => {
    await publisher.close();
    await node.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('one reply line per command line, in order, with ids echoed', async () => {
    const lines = [
      { id: 'a', method: 'publish', channel: 'news:x', data: { n: 1 } },
      { method: 'publish', channel: 'news:x', data: { n: 2 } },
      { id: 3, method: 'history', channel: 'news:x' },
    ].map((c) => JSON.stringify(c));
    const replies = await exchange(socketPath, lines.join('\n') + '\n');
    assert.equal(replies.length, 3);
    assert.equal(replies[0].id, 'a');
    assert.equal(replies[0].result.offset, 1);
    assert.equal(replies[1].result.offset, 2);
    assert.deepEqual(replies[2].result.publications.map((p: any) => p.data), [{ n: 1 }, { n: 2 }]);
  });

  test('bad lines get error replies naming the problem; good lines around them still work', async () => {
    const text = ['{nope', '[]', '{"method":"explode"}', '{"method":"publish","channel":"news:y"}', 'x'.repeat(5000), '{"method":"publish","channel":"news:y","data":1}', ''].join('\n');
    const replies = await exchange(socketPath, text);
    assert.deepEqual(replies.map((r) => r.error?.code ?? 'ok'), [
      'KOBOLD_ERR_HUB_INVALID_JSON',
      'KOBOLD_ERR_HUB_BAD_COMMAND',
      'KOBOLD_ERR_HUB_UNKNOWN_COMMAND',
      'KOBOLD_ERR_HUB_BAD_COMMAND',
      'KOBOLD_ERR_HUB_TOO_LARGE',
      'ok',
    ]);
    assert.match(replies[3].error.message, /field "data"/);
  });

  test('a last line without a newline is still answered; the socket file is group-writable only', async () => {
    const replies = await exchange(socketPath, '{"method":"publish","channel":"news:z","data":true}');
    assert.equal(replies[0].result.offset, 1);
    assert.equal(statSync(socketPath).mode & 0o777, 0o660);
  });
});
