import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KoboldError } from '../../src/errors.js';
import { toRunError, WireConnection } from '../../src/jobs/wire.js';

type Message = { kind: string; [key: string]: unknown };

/** A WireConnection on the server end of a real UNIX socket, and the raw client end. */
async function pair(maxMessageBytes = 64): Promise<{ raw: Socket; received: Message[]; closed: Promise<KoboldError | undefined>; done(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'kobold-wire-'));
  const path = join(dir, 'wire.sock');
  const received: Message[] = [];
  let resolveClosed!: (error: KoboldError | undefined) => void;
  const closed = new Promise<KoboldError | undefined>((resolve) => (resolveClosed = resolve));
  const server = createServer((socket) => {
    new WireConnection<Message, Message>(socket, { maxMessageBytes }, { message: (message) => received.push(message), close: resolveClosed });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const raw = connect(path);
  await new Promise((resolve) => raw.once('connect', resolve));
  return { raw, received, closed, done: () => { raw.destroy(); server.close(); rmSync(dir, { recursive: true, force: true }); } };
}

test('messages split across chunks and several per chunk are all parsed in order', async () => {
  const p = await pair();
  try {
    p.raw.write('{"kind":"a","n":1}\n{"ki');
    await new Promise((resolve) => setTimeout(resolve, 20));
    p.raw.write('nd":"b"}\n{"kind":"c"}\n');
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(p.received, [{ kind: 'a', n: 1 }, { kind: 'b' }, { kind: 'c' }]);
  } finally { p.done(); }
});

test('bad JSON, a message without a kind, or an oversize line close the connection with a reason', async () => {
  for (const [input, reason] of [['{oops\n', /bad JSON/], ['[1,2]\n', /"kind"/], ['x'.repeat(100), /over 64 bytes/]] as const) {
    const p = await pair();
    try {
      p.raw.write(input);
      const error = await p.closed;
      assert.equal(error?.code, 'KOBOLD_ERR_JOBS_WIRE');
      assert.match(error!.message, reason);
    } finally { p.done(); }
  }
});

test('toRunError keeps name, message, code and stack', () => {
  const error = Object.assign(new TypeError('bad'), { code: 'E_BAD' });
  const converted = toRunError(error);
  assert.deepEqual([converted.name, converted.message, converted.code], ['TypeError', 'bad', 'E_BAD']);
  assert.match(converted.stack!, /TypeError: bad/);
  assert.deepEqual(toRunError('plain'), { name: 'Error', message: 'plain' });
});
