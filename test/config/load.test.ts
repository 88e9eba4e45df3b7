import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadConfig, validateConfig } from '../../src/config/load.js';
import { isKoboldError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'kobold-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('no config file: defaults serve the chat demo on 127.0.0.1:8080, with the hub it needs', async () => {
  const config = await loadConfig({ cwd: dir, env: {} });
  assert.equal(config.configFile, null);
  assert.equal(config.services.web!.port, 8080);
  assert.equal(config.services.web!.host, '127.0.0.1');
  assert.deepEqual(config.apps.map((a) => [a.name, a.module, a.service, a.prefix]), [['chat', 'kobold:chat', 'web', '/'], ['hub-writer', 'kobold:hub-writer', 'hub', '/']]);
  assert.equal(config.services.hub!.role, 'singleton');
  const secret = readFileSync(join(dir, '.kobold/hub-secret'), 'utf8').trim();
  assert.ok(secret.length >= 32, 'a token secret was made for the demo');
  assert.equal((await loadConfig({ cwd: dir, env: {} })).hub.tokenSecret, secret, 'and kept');
  assert.equal(config.pidFile, join(dir, '.kobold/kobold.pid'));
  assert.ok(Object.isFrozen(config));
});

test('every problem is reported with its path', () => {
  const result = validateConfig({
    logLevel: 'loud',
    heartbeatIntervalMs: 5_000,
    heartbeatTimeoutMs: 1_000,
    masterMaxSemiSpaceMb: -1,
    workerMaxSemiSpaceMb: 'big',
    services: { web: { port: 70_000, limits: { maxRequests: -1 }, scaling: { lowElu: 0.9, highElu: 0.5 } } },
    apps: [{ name: 'x', module: 'a.mjs' }, { name: 'x', module: 'b.mjs', prefix: 'no-slash' }],
  });
  assert.ok('problems' in result);
  const paths = result.problems.map((p) => p.path);
  for (const path of ['logLevel', 'heartbeatTimeoutMs', 'masterMaxSemiSpaceMb', 'workerMaxSemiSpaceMb', 'services.web.port', 'services.web.limits.maxRequests', 'services.web.scaling.lowElu', 'apps.1.name', 'apps.1.prefix']) {
    assert.ok(paths.includes(path), `${path} missing from ${paths.join(', ')}`);
  }
});

test('environment overrides for port, workers and log level', async () => {
  const config = await loadConfig({ cwd: dir, env: { KOBOLD_PORT: '9191', KOBOLD_WORKERS: '3', KOBOLD_LOG_LEVEL: 'warn' } });
  assert.equal(config.services.web!.port, 9191);
  assert.equal(config.services.web!.workers, 3);
  assert.ok(config.services.web!.maxWorkers >= 3);
  assert.equal(config.logLevel, 'warn');
  await assert.rejects(loadConfig({ cwd: dir, env: { KOBOLD_PORT: 'http' } }), (error) => isKoboldError(error, 'KOBOLD_ERR_CONFIG_INVALID') && /services\.web\.port/.test(error.message));
});

test('a TypeScript config with defineConfig loads without a build step', async () => {
  const sub = mkdtempSync(join(dir, 'ts-'));
  const index = new URL('../../src/index.ts', import.meta.url).pathname;
  writeFileSync(join(sub, 'kobold.config.ts'), `import { defineConfig } from ${JSON.stringify(index)};
const port: number = 9300;
export default defineConfig({ services: { web: { port, workers: 1 } }, logFile: 'logs/k.log' });\n`);
  const config = await loadConfig({ cwd: sub, env: {} });
  assert.equal(config.configFile, join(sub, 'kobold.config.ts'));
  assert.equal(config.services.web!.port, 9300);
  assert.equal(config.logFile, join(sub, 'logs/k.log'), 'relative paths resolve from the config file');
});

test('--workers widens min and max so the count fits', async () => {
  const config = await loadConfig({ cwd: dir, env: {}, workers: 7 });
  assert.equal(config.services.web!.workers, 7);
  assert.equal(config.services.web!.maxWorkers, 7);
});

test('a missing config file named on the command line is an error', async () => {
  await assert.rejects(loadConfig({ cwd: dir, configFile: 'nope.json', env: {} }), (error) => isKoboldError(error, 'KOBOLD_ERR_CONFIG_NOT_FOUND'));
});

test('a singleton service has one worker; asking for more is an error', () => {
  const ok = validateConfig({ services: { web: {}, hub: { role: 'singleton' } } });
  assert.ok('config' in ok);
  assert.deepEqual([ok.config.services.hub!.workers, ok.config.services.hub!.minWorkers, ok.config.services.hub!.maxWorkers], [1, 1, 1]);
  const bad = validateConfig({ services: { web: {}, hub: { role: 'singleton', workers: 2 } } });
  assert.ok('problems' in bad);
  assert.deepEqual(bad.problems.map((p) => p.path), ['services.hub.role']);
});
