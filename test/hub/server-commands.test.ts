import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryBackend } from '../../src/hub/backends/memory.js';
import { HubNode } from '../../src/hub/node.js';
import { resolveHubOptions } from '../../src/hub/options.js';
import { asPublishCommand, parseServerCommand, runPublish, runServerCommand } from '../../src/hub/server-commands.js';
import type { HubBackend } from '../../src/hub/types.js';

const hub = resolveHubOptions({ namespaces: [{ name: 'news', historySize: 10 }] });

test('asPublishCommand accepts exactly the publishes the schema accepts (an id aside)', () => {
  const values: Record<string, unknown>[] = [
    { method: 'publish', channel: 'news:a', data: 1 },
    { method: 'publish', channel: 'news:a', data: null, id: 'x' },
    { method: 'publish', channel: 'x'.repeat(255), data: [] },
    { method: 'publish', channel: 'x'.repeat(256), data: 1 },
    { method: 'publish', channel: '', data: 1 },
    { method: 'publish', channel: 1, data: 1 },
    { method: 'publish', channel: 'news:a' },
    { method: 'publish', data: 1 },
    { method: 'publish', channel: 'news:a', data: 1, extra: true },
    { method: 'history', channel: 'news:a' },
    { method: 'PUBLISH', channel: 'news:a', data: 1 },
    JSON.parse('{"method":"publish","channel":"news:a","data":1,"__proto__":null}'),
  ];
  for (const value of values) {
    const { id: _id, ...command } = value;
    let schema: unknown = null;
    try {
      const parsed = parseServerCommand(command);
      if (parsed.method === 'publish') schema = { channel: parsed.channel, data: parsed.data };
    } catch {
      // the schema refuses it: so must the hand check
    }
    assert.deepEqual(asPublishCommand(value), schema, JSON.stringify(value));
  }
});

test('runPublish answers at once on a backend that assigns positions itself, like runServerCommand', async () => {
  const node = new HubNode({ backend: new MemoryBackend({ namespaces: hub.namespaces }), hub });
  const now = runPublish(node, 'news:a', { n: 1 });
  assert.equal(typeof now, 'string');
  const { epoch } = JSON.parse(now as string);
  assert.deepEqual(JSON.parse(now as string), { offset: 1, epoch });
  assert.equal(await runServerCommand(node, { method: 'publish', channel: 'news:a', data: 2 }), JSON.stringify({ offset: 2, epoch }));
  assert.throws(() => runPublish(node, 'news:a b', 1), { code: 'KOBOLD_ERR_HUB_BAD_CHANNEL' });
  assert.throws(() => runPublish(node, 'sport:a', 1), { code: 'KOBOLD_ERR_HUB_UNKNOWN_NAMESPACE' });
  await assert.rejects(async () => runPublish(node, 'news:a', undefined), { code: 'KOBOLD_ERR_HUB_BAD_COMMAND' });
  const history = await node.history('news:a');
  assert.deepEqual(history.publications.map((p) => p.data), ['{"n":1}', '2']);
  await node.close();
});

test('runPublish goes through HubNode.publish on a backend in another process', async () => {
  const memory = new MemoryBackend({ namespaces: hub.namespaces });
  // Only the asynchronous methods: what a socket or shm backend offers.
  const remote: HubBackend = {
    publish: (channel, data, options) => memory.publish(channel, data, options),
    history: (channel, query) => memory.history(channel, query),
    onPublication: (listener) => memory.onPublication(listener),
    addPresence: (channel, entry) => memory.addPresence(channel, entry),
    removePresence: (channel, clientId) => memory.removePresence(channel, clientId),
    presence: (channel) => memory.presence(channel),
    presenceCounts: (channel) => memory.presenceCounts(channel),
    onPresence: (listener) => memory.onPresence(listener),
  };
  const node = new HubNode({ backend: remote, hub });
  const later = runPublish(node, 'news:a', 'x');
  assert.ok(later instanceof Promise);
  assert.equal(JSON.parse(await later).offset, 1);
  await node.close();
  await memory.close();
});
