import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { FIXTURE_APPS, freePort, TestProject, waitFor } from '../helpers/daemon.js';

let p: TestProject;
let linePort: number;
let lineSocket: string;
before(async () => {
  const port = await freePort();
  linePort = await freePort();
  p = new TestProject(port);
  lineSocket = join(p.dir, 'echo.sock');
  p.writeConfig({
    services: { web: { port, workers: 2, scaling: { enabled: false } } },
    apps: [{ name: 'serving', module: join(FIXTURE_APPS, 'serving.mjs'), config: { linePort, lineSocket } }],
  });
  p.start();
});
after(() => p.cleanup());

function talk(target: { port: number } | { path: string }): Promise<{ socket: Socket; received: () => string; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = 'port' in target ? connect(target.port, '127.0.0.1') : connect(target.path);
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => (data += chunk));
    const closed = new Promise<void>((r) => socket.on('close', () => r()));
    socket.once('connect', () => resolve({ socket, received: () => data, closed }));
    socket.once('error', reject);
  });
}

test('a line protocol server on a TCP port, shared by the workers', async () => {
  const { socket, received } = await talk({ port: linePort });
  socket.write('hello\r\nworld\n');
  await waitFor(() => received() === 'echo: hello\r\necho: world\r\n', 'two echoed lines');
  socket.end();
});

test('a line protocol server on a UNIX socket', async () => {
  const { socket, received } = await talk({ path: lineSocket });
  socket.write('over unix\n');
  await waitFor(() => received() === 'echo: over unix\n', 'the echo');
  socket.end();
});

test('a line over maxLineBytes gets an error and the connection is closed', async () => {
  const { socket, received, closed } = await talk({ port: linePort });
  socket.write('x'.repeat(100));
  await closed;
  assert.equal(received(), 'ERROR line too long (max 32 bytes)\r\n');
});
