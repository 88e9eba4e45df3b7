import assert from 'node:assert/strict';
import cluster from 'node:cluster';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { MemoryBackend } from '../../src/hub/backends/memory.js';
import { HubNode } from '../../src/hub/node.js';
import { resolveHubOptions } from '../../src/hub/options.js';
import { type PublishSocket, startPublishSocket } from '../../src/hub/publish-socket.js';
import { parseServerCommand } from '../../src/hub/server-commands.js';
import type { HistoryQuery, HistoryResult } from '../../src/hub/types.js';

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

/** Connects, writes each chunk after the previous one was sent (with a pause), half-closes, returns the reply lines. */
function exchangeInChunks(socketPath: string, chunks: (string | Buffer)[]): Promise<any[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath, async () => {
      for (const chunk of chunks) {
        await new Promise<void>((written) => socket.write(chunk, () => written()));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      socket.end();
    });
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => (received += chunk));
    socket.on('end', () => resolve(received.split('\n').filter(Boolean).map((line) => JSON.parse(line))));
    socket.on('error', reject);
  });
}

/** History answers only after a pause: a command still running when the next lines arrive. */
class SlowHistoryBackend extends MemoryBackend {
  override async history(channel: string, query?: HistoryQuery): Promise<HistoryResult> {
    const answer = this.historyNow(channel, query);
    await new Promise((resolve) => setTimeout(resolve, 50));
    return answer;
  }
}

/** The error the schema gives a command (the socket's answer before it checked publishes by hand). */
function schemaError(command: Record<string, unknown>): string {
  try {
    parseServerCommand(command);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error(`the schema accepts ${JSON.stringify(command)}`);
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

  test('a well-formed publish is answered with its position and the id as given; its data is kept as JSON', async () => {
    const ids = ['s', 7, { nested: [1] }, null, true];
    const lines = ids.map((id, i) => JSON.stringify({ id, method: 'publish', channel: 'news:fast', data: { i, text: 'é\u2028' } }));
    const replies = await exchange(socketPath, lines.join('\n') + '\n' + JSON.stringify({ method: 'history', channel: 'news:fast' }) + '\n');
    assert.deepEqual(replies.slice(0, 5).map((r) => r.id), ids);
    assert.deepEqual(replies.slice(0, 5).map((r) => r.result.offset), [1, 2, 3, 4, 5]);
    const epoch = replies[0].result.epoch;
    assert.equal(typeof epoch, 'string');
    assert.deepEqual(replies[0].result, { offset: 1, epoch });
    assert.deepEqual(replies[5].result.position, { offset: 5, epoch });
    assert.deepEqual(replies[5].result.publications.map((p: any) => p.data), ids.map((_, i) => ({ i, text: 'é\u2028' })));
  });

  test('each malformed publish gets the error the schema gives, with its id', async () => {
    const variants: Record<string, unknown>[] = [
      { method: 'publish', channel: 'news:m' },
      { method: 'publish', data: 1 },
      { method: 'publish', channel: 5, data: 1 },
      { method: 'publish', channel: '', data: 1 },
      { method: 'publish', channel: 'news:' + 'x'.repeat(251), data: 1 },
      { method: 'publish', channel: 'news:m', data: 1, extra: 2 },
      { method: 'publish', channel: 'news:m', data: 1, extra: 2, more: 3 },
      { method: 'publish', channel: ['news:m'], data: 1 },
      { method: 'Publish', channel: 'news:m', data: 1 },
      { method: null, channel: 'news:m', data: 1 },
      { channel: 'news:m', data: 1 },
    ];
    const lines = variants.map((variant, i) => JSON.stringify({ id: i, ...variant }));
    lines.push('{"id":"proto","method":"publish","channel":"news:m","data":1,"__proto__":{}}');
    const replies = await exchange(socketPath, lines.join('\n') + '\n');
    assert.equal(replies.length, variants.length + 1);
    variants.forEach((variant, i) => {
      assert.equal(replies[i].id, i);
      assert.equal(replies[i].result, undefined, JSON.stringify(variant));
      assert.equal(replies[i].error.message, schemaError(variant), JSON.stringify(variant));
    });
    assert.deepEqual(replies[variants.length], { id: 'proto', error: { code: 'KOBOLD_ERR_HUB_BAD_COMMAND', message: 'bad command: Unrecognized key: "__proto__"' } });
    // 255 characters is still a channel name: only the namespace rules are left to say no.
    const longest = await exchange(socketPath, JSON.stringify({ method: 'publish', channel: 'news:' + 'x'.repeat(250), data: 1 }) + '\n');
    assert.equal(longest[0].result.offset, 1);
  });

  test('a well-formed publish to a bad or unknown channel gets the hub\'s error', async () => {
    const replies = await exchange(socketPath, ['{"id":1,"method":"publish","channel":"news:a b","data":1}', '{"id":2,"method":"publish","channel":"sport:x","data":1}', ''].join('\n'));
    assert.deepEqual(replies.map((r) => [r.id, r.error.code]), [
      [1, 'KOBOLD_ERR_HUB_BAD_CHANNEL'],
      [2, 'KOBOLD_ERR_HUB_UNKNOWN_NAMESPACE'],
    ]);
  });

  test('many lines in one chunk: one reply each, in order', async () => {
    const count = 500;
    const lines = Array.from({ length: count }, (_, i) => (i % 100 === 50 ? '{broken' : JSON.stringify({ id: i, method: 'publish', channel: 'news:many', data: i })));
    const replies = await exchange(socketPath, lines.join('\n') + '\n');
    assert.equal(replies.length, count);
    let offset = 0;
    replies.forEach((reply, i) => {
      if (i % 100 === 50) return assert.equal(reply.error.code, 'KOBOLD_ERR_HUB_INVALID_JSON');
      assert.equal(reply.id, i);
      assert.equal(reply.result.offset, ++offset);
    });
  });

  test('a line split across chunks (inside a UTF-8 character too) is answered once whole', async () => {
    const line = Buffer.from(JSON.stringify({ id: 'split', method: 'publish', channel: 'news:split', data: 'café' }) + '\n');
    const cut = line.indexOf(Buffer.from('é')) + 1;
    const replies = await exchangeInChunks(socketPath, [line.subarray(0, 10), line.subarray(10, cut), line.subarray(cut), '\n\n{"method":"history","channel":"news:split"}']);
    assert.equal(replies.length, 2);
    assert.equal(replies[0].id, 'split');
    assert.equal(replies[0].result.offset, 1);
    assert.deepEqual(replies[1].result.publications.map((p: any) => p.data), ['café']);
  });

  test('a too-long line split across chunks gets one error; the next line works', async () => {
    const replies = await exchangeInChunks(socketPath, ['{"method":"publish","channel":"news:long","data":"' + 'x'.repeat(3000), 'x'.repeat(3000), '"}\n{"method":"publish","channel":"news:long","data":2}\n']);
    assert.deepEqual(replies.map((r) => r.error?.code ?? r.result.offset), ['KOBOLD_ERR_HUB_TOO_LARGE', 1]);
    assert.match(replies[0].error.message, /more than \d+ bytes/);
  });

  test('a path another publisher listens on is refused (EADDRINUSE, naming it); a stale socket file is replaced', async () => {
    await assert.rejects(startPublishSocket({ socketPath, node }), (error: NodeJS.ErrnoException) => error.code === 'EADDRINUSE' && error.message.includes(socketPath));
    const [stillServing] = await exchange(socketPath, '{"id":1,"method":"publish","channel":"news:live","data":1}\n');
    assert.equal(stillServing.result.offset, 1, 'the first publisher keeps its socket');
    const stalePath = join(dir, 'stale.sock');
    writeFileSync(stalePath, '');
    const replacing = await startPublishSocket({ socketPath: stalePath, node });
    try {
      const [reply] = await exchange(stalePath, '{"id":2,"method":"publish","channel":"news:live","data":2}\n');
      assert.equal(reply.result.offset, 2);
    } finally {
      await replacing.close();
    }
  });

  test('publishes after a command still running wait for it: replies and effects keep the line order', async () => {
    const slowPath = join(dir, 'slow.sock');
    const hub = resolveHubOptions({ namespaces: [{ name: 'news', historySize: 10 }] });
    const slowNode = new HubNode({ backend: new SlowHistoryBackend({ namespaces: hub.namespaces }), hub });
    const slowPublisher = await startPublishSocket({ socketPath: slowPath, node: slowNode });
    try {
      const history = '{"method":"history","channel":"news:o"}';
      const publish = (n: number) => JSON.stringify({ id: n, method: 'publish', channel: 'news:o', data: n });
      const replies = await exchangeInChunks(slowPath, [
        [publish(1), history, publish(2), publish(3)].join('\n') + '\n',
        // Arrives while the history above is still running.
        [publish(4), history, '{nope', publish(5)].join('\n') + '\n',
      ]);
      assert.deepEqual(
        replies.map((r) => r.error?.code ?? r.result.offset ?? r.result.publications.map((p: any) => p.data).join(',')),
        [1, '1', 2, 3, 4, '1,2,3,4', 'KOBOLD_ERR_HUB_INVALID_JSON', 5],
      );
    } finally {
      await slowPublisher.close();
      await slowNode.close();
    }
  });
});

/** The inode of the socket listening on `path` (/proc/net/unix; flag 00010000 marks listeners). */
function listeningInode(path: string): string {
  const line = readFileSync('/proc/net/unix', 'utf8')
    .split('\n')
    .find((row) => row.endsWith(` ${path}`) && row.split(/\s+/)[3] === '00010000');
  assert.ok(line, `a socket listening on ${path}`);
  return line.trim().split(/\s+/)[6];
}

/** The inodes of the sockets a process holds open. */
function socketInodesOf(pid: number): Set<string> {
  const dir = `/proc/${pid}/fd`;
  const inodes = new Set<string>();
  for (const fd of readdirSync(dir)) {
    let target: string;
    try {
      target = readlinkSync(join(dir, fd), { encoding: 'utf8' });
    } catch {
      continue; // closed meanwhile (e.g. the descriptor that read the folder)
    }
    const match = /^socket:\[(\d+)\]$/.exec(target);
    if (match) inodes.add(match[1]);
  }
  return inodes;
}

test('in a cluster worker (the hub writer) the socket is bound by the worker, not through the master', async () => {
  // Bound through the master, the socket file would be removed whenever the master closes its
  // handle: on reload, after the new writer had bound the same path.
  const dir = mkdtempSync(join(tmpdir(), 'kobold-pub-cluster-'));
  const socketPath = join(dir, 'publish.sock');
  cluster.setupPrimary({ exec: fileURLToPath(new URL('./fixtures/publish-socket-worker.ts', import.meta.url)), execArgv: ['--import', 'tsx'] });
  const worker = cluster.fork({ PUBLISH_SOCKET: socketPath });
  try {
    await once(worker, 'message');
    const inode = listeningInode(socketPath);
    assert.ok(socketInodesOf(worker.process.pid!).has(inode), 'the worker holds the listening socket');
    assert.ok(!socketInodesOf(process.pid).has(inode), 'the master does not');
    worker.send('close');
    await once(worker, 'exit');
  } finally {
    worker.process.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
