// Every hub transport through nginx (Debian's package) as a reverse proxy with its default
// buffering on, in front of the real daemon.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { freePort, type TestProject, waitFor } from '../helpers/daemon.js';
import { publishReliably, startHubProject, TestClient, token } from './daemon-helpers.js';

const NGINX = '/usr/sbin/nginx';

let project: TestProject;
let nginx: ChildProcess | null = null;
let proxyUrl = '';
const clients: TestClient[] = [];

/** Buffering stays at nginx's default (on); only what WebSocket proxying needs is set. */
function nginxConfig(dir: string, listenPort: number, upstreamPort: number): string {
  return `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 256; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:${listenPort};
    location / {
      proxy_pass http://127.0.0.1:${upstreamPort};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
    }
  }
}
`;
}

before(async () => {
  project = await startHubProject();
  const dir = join(project.dir, 'nginx');
  mkdirSync(dir);
  const port = await freePort();
  writeFileSync(join(dir, 'nginx.conf'), nginxConfig(dir, port, project.port));
  nginx = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  nginx.stderr!.on('data', (chunk) => (stderr += chunk));
  proxyUrl = `http://127.0.0.1:${port}`;
  await waitFor(async () => {
    if (nginx!.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
    return fetch(`${proxyUrl}/hub/client.js`, { method: 'HEAD' }).then(
      (response) => response.status === 200,
      () => false,
    );
  }, 'nginx to proxy to the daemon');
});

after(async () => {
  for (const client of clients) client.close();
  if (nginx?.pid !== undefined && nginx.exitCode === null) {
    // TERM: nginx's master stops its workers itself (a SIGKILLed master would orphan them).
    const workers = spawnSync('pgrep', ['-P', String(nginx.pid)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
    const exited = new Promise((resolve) => nginx!.once('exit', resolve));
    process.kill(nginx.pid, 'SIGTERM');
    const timer = setTimeout(() => nginx?.pid !== undefined && process.kill(nginx.pid, 'SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
    for (const pid of workers) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone with its master
      }
    }
  }
  await project.cleanup();
});

for (const transport of ['websocket', 'sse', 'longpoll', 'refresh'] as const) {
  test(`${transport} through nginx with default buffering: live publications and commands`, { skip: !existsSync(NGINX) && 'nginx is not installed' }, async () => {
    const channel = `room:nginx-${transport}`;
    const client = new TestClient(proxyUrl, transport, { token: await token(`n-${transport}`) });
    clients.push(client);
    client.subscribe(channel);
    await client.connected();
    assert.equal(client.client.transport, transport);
    for (let i = 1; i <= 3; i++) await publishReliably(proxyUrl, channel, i);
    // Each publication must pass nginx on its own, not when a buffer fills or the response ends.
    await client.waitForOffsets(channel, 3, 'publications through the proxy');
    await client.client.publish(channel, 'from the client');
    await client.waitForOffsets(channel, 4, 'the client publication');
    assert.deepEqual(client.received.get(channel)!.map((p) => p.data), [1, 2, 3, 'from the client']);
    client.close();
  });
}
