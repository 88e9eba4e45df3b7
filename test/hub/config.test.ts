import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expandConfig } from '../../src/config/expand.js';
import { configSchema } from '../../src/config/schema.js';
import { hubConfigSchema, resolveHubSettings } from '../../src/hub/config.js';
import { HUB_SERVICE, HUB_WRITER_MODULE, hubExpansion } from '../../src/hub/expansion.js';
import { freePort, TestProject } from '../helpers/daemon.js';

const ROOM = { name: 'room', subscribe: 'anyone' };

test('every hub option has a default; socket paths default into the run dir', () => {
  const hub = hubConfigSchema.parse(undefined);
  assert.equal(hub.enabled, true);
  assert.equal(hub.pathPrefix, '/hub');
  assert.equal(hub.apiPrefix, '/api');
  assert.equal(hub.tokenSecret, undefined);
  assert.equal(hub.apiKey, undefined);
  const settings = resolveHubSettings(hub, '/run/kobold');
  assert.equal(settings.writerSocketPath, '/run/kobold/hub.sock');
  assert.equal(settings.publishSocketPath, '/run/kobold/publish.sock');
  assert.equal(resolveHubSettings({ ...hub, publishSocketPath: '/tmp/p.sock' }, '/run/kobold').publishSocketPath, '/tmp/p.sock');
});

test('bad hub options are reported with their path', () => {
  const result = configSchema.safeParse({
    hub: { namespaces: [{ name: 'room', joinLeave: true }, { name: 'room' }], tokenSecret: 'short', apiKey: 'short', pathPrefix: 'hub', limits: { sseHeartbeatMs: 1, writeDelayMs: 5000 } },
  });
  assert.equal(result.success, false);
  const paths = result.error!.issues.map((issue) => issue.path.join('.'));
  for (const path of ['hub.tokenSecret', 'hub.apiKey', 'hub.pathPrefix', 'hub.limits.sseHeartbeatMs', 'hub.limits.writeDelayMs']) assert.ok(paths.includes(path), `${path} in ${paths}`);
  const refined = configSchema.safeParse({ hub: { namespaces: [{ name: 'room', joinLeave: true }, { name: 'room' }] } });
  const refinedPaths = refined.error!.issues.map((issue) => issue.path.join('.'));
  assert.deepEqual(refinedPaths.sort(), ['hub.namespaces.0.joinLeave', 'hub.namespaces.1.name']);
});

test('the expansion adds the writer singleton when the hub has namespaces; a user-declared hub service wins', () => {
  const plain = configSchema.parse({});
  assert.deepEqual(hubExpansion(plain), {}, 'no namespace: nothing to run');
  assert.deepEqual(hubExpansion(configSchema.parse({ hub: { enabled: false, namespaces: [ROOM] } })), {});

  const expanded = expandConfig(configSchema.parse({ hub: { namespaces: [ROOM] } }), [hubExpansion]);
  assert.equal(expanded.services[HUB_SERVICE].role, 'singleton');
  const writer = expanded.apps.find((app) => app.module === HUB_WRITER_MODULE)!;
  assert.equal(writer.service, HUB_SERVICE);
  assert.match((writer.config as { writerSocketPath: string }).writerSocketPath, /\/\.kobold\/hub\.sock$/);

  const own = expandConfig(
    configSchema.parse({ services: { web: {}, hub: { role: 'singleton', maxWorkers: 1, restart: { crashLimit: 2 } } }, hub: { namespaces: [ROOM] } }),
    [hubExpansion],
  );
  assert.equal(own.services[HUB_SERVICE].restart.crashLimit, 2);
});

test('kobold configtest names a bad hub option', async () => {
  const project = new TestProject(await freePort(), { hub: { namespaces: [{ name: 'room', historySize: -1 }], apiKey: 'short' } });
  try {
    const result = project.kobold(['configtest']);
    assert.notEqual(result.code, 0);
    const output = result.stdout + result.stderr;
    assert.match(output, /hub\.namespaces\.0\.historySize/);
    assert.match(output, /hub\.apiKey: at least 16 characters/);
  } finally {
    await project.cleanup();
  }
});
