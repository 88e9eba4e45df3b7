import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { AppResolver } from '../../src/app/resolver.js';
import { FIXTURE_APPS, freePort, TestProject } from '../helpers/daemon.js';
import { httpGet } from '../helpers/http.js';

const projects: TestProject[] = [];
after(() => Promise.all(projects.map((p) => p.cleanup())));

const request = (host: string | undefined, url: string) => ({ headers: host === undefined ? {} : { host }, url }) as IncomingMessage;

test('the resolver prefers a host-bound app, then the longest prefix, at segment boundaries', () => {
  const resolver = new AppResolver([
    { host: undefined, prefix: '/', target: 'root' },
    { host: undefined, prefix: '/chat', target: 'chat' },
    { host: 'admin.example', prefix: '/', target: 'admin' },
    { host: undefined, prefix: '/chat/admin', target: 'chat-admin' },
  ]);
  assert.deepEqual(resolver.candidates(request('site.example', '/chat/rooms')), ['chat', 'root']);
  assert.deepEqual(resolver.candidates(request('site.example:8080', '/chat/admin/x?y=1')), ['chat-admin', 'chat', 'root']);
  assert.deepEqual(resolver.candidates(request('site.example', '/chatter')), ['root'], '/chatter is not under /chat');
  assert.deepEqual(resolver.candidates(request('ADMIN.example:80', '/chat')), ['admin', 'chat', 'root']);
  assert.deepEqual(resolver.candidates(request(undefined, '/chat?x')), ['chat', 'root']);
});

test('two instances of one app with different config, by prefix and by host', async () => {
  const port = await freePort();
  const p = new TestProject(port);
  projects.push(p);
  const greeter = join(FIXTURE_APPS, 'greeter.mjs');
  p.writeConfig({
    services: { web: { port, workers: 1, scaling: { enabled: false } } },
    apps: [
      { name: 'english', module: greeter, prefix: '/en', config: { greeting: 'hello' } },
      { name: 'french', module: greeter, prefix: '/fr', config: { greeting: 'bonjour' } },
      { name: 'admin', module: greeter, host: 'admin.localhost', config: { greeting: 'welcome, admin' } },
    ],
  });
  p.start();
  assert.equal((await httpGet(`${p.url}/en`)).body, 'english: hello\n');
  assert.equal((await httpGet(`${p.url}/fr/`)).body, 'french: bonjour\n');
  assert.deepEqual(JSON.parse((await httpGet(`${p.url}/fr/who`)).body), { app: 'french', greeting: 'bonjour' });
  assert.equal((await httpGet(`${p.url}/`, { headers: { host: 'admin.localhost' } })).body, 'admin: welcome, admin\n');
  const missing = await httpGet(`${p.url}/de`);
  assert.equal(missing.status, 404);
  assert.deepEqual(JSON.parse(missing.body), { error: { code: 'KOBOLD_ERR_NOT_FOUND', message: 'no route for GET /de' } });
});

test('an instance config that fails the app schema stops the start and names the key', async () => {
  const port = await freePort();
  const p = new TestProject(port);
  projects.push(p);
  p.writeConfig({ services: { web: { port, workers: 1 } }, apps: [{ name: 'english', module: join(FIXTURE_APPS, 'greeter.mjs'), config: { greeting: '' } }] });
  const result = p.kobold(['start']);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /app "english" has an invalid config: apps\.english\.config\.greeting: /);
});

test('a TypeScript app loads without a build step', async () => {
  const port = await freePort();
  const p = new TestProject(port);
  projects.push(p);
  p.writeConfig({ services: { web: { port, workers: 1 } }, apps: [{ name: 'typed', module: join(FIXTURE_APPS, 'typed.ts'), config: { answer: 7 } }] });
  p.start();
  assert.equal((await httpGet(p.url)).body, 'the answer is 7\n');
});
