// The examples run as documented: Express, Fastify and Hono apps unchanged inside Kobold,
// and the telnet echo line server.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { freePort, ROOT, TestProject, waitFor } from '../helpers/daemon.js';
import { httpGet } from '../helpers/http.js';

const projects: TestProject[] = [];
after(() => Promise.all(projects.map((p) => p.cleanup())));

async function startExample(folder: string, env: Record<string, string> = {}): Promise<TestProject> {
  const p = new TestProject(await freePort());
  projects.push(p);
  const result = p.kobold(['start', '--config', join(ROOT, 'examples', folder, 'kobold.config.ts')], {
    KOBOLD_PORT: String(p.port),
    KOBOLD_RUN_DIR: join(p.dir, '.kobold'),
    ...env,
  });
  assert.equal(result.code, 0, `${result.stderr}\n${p.log()}`);
  return p;
}

test('Express, Fastify and Hono apps run unchanged under their prefixes', async () => {
  const p = await startExample('frameworks');
  for (const framework of ['express', 'fastify', 'hono']) {
    const home = await httpGet(`${p.url}/${framework}`);
    assert.equal(home.status, 200);
    assert.match(home.body, new RegExp(`^${framework} in worker \\d+$`));
    const user = await httpGet(`${p.url}/${framework}/users/7`);
    assert.deepEqual(JSON.parse(user.body), { id: '7', via: framework });
  }
});

test('the telnet echo example answers line by line', async () => {
  const echoPort = await freePort();
  await startExample('telnet-echo', { ECHO_PORT: String(echoPort) });
  const socket = connect(echoPort, '127.0.0.1');
  let received = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk) => (received += chunk));
  socket.write('hello there\r\nquit\r\n');
  await new Promise<void>((resolve) => socket.on('close', () => resolve()));
  await waitFor(() => received.endsWith('bye\r\n'), 'the goodbye');
  assert.match(received, /^kobold echo \(worker \d+\); "quit" to leave\r\nhello there\r\nbye\r\n$/);
});
