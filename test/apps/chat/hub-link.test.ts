import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chatHubNamespaces } from '../../../src/apps/chat/config.js';
import { linkHub } from '../../../src/apps/chat/hub-link.js';
import { MemoryBackend } from '../../../src/hub/backends/memory.js';
import { HubNode } from '../../../src/hub/node.js';
import { resolveHubOptions } from '../../../src/hub/options.js';

const SECRET = 'hub-link-test-secret-hub-link-test-secret';

function node(namespaces = chatHubNamespaces(), auth = true): HubNode {
  const hub = resolveHubOptions({ namespaces });
  return new HubNode({ backend: new MemoryBackend({ namespaces: hub.namespaces }), hub, ...(auth ? { auth: { secret: SECRET } } : {}) });
}

test('takes ctx.hub and the hub’s token secret; a configured secret wins', () => {
  assert.equal(linkHub({ hub: node() }, undefined).secret, SECRET);
  assert.equal(linkHub({ hub: node() }, 'x'.repeat(32)).secret, 'x'.repeat(32));
});

test('refuses to start without the hub, its namespaces, a safe private namespace or a secret', () => {
  assert.throws(() => linkHub({}, undefined), { code: 'KOBOLD_ERR_CHAT_SETUP', message: /ctx.hub is missing/ });
  assert.throws(() => linkHub({ hub: node(chatHubNamespaces().slice(0, 2)) }, undefined), { message: /no namespace "chatuser"/ });
  const open = chatHubNamespaces().map((ns) => (ns.name === 'chatp' ? { ...ns, subscribe: 'user' as const } : ns));
  assert.throws(() => linkHub({ hub: node(open) }, undefined), { message: /subscribe: "token"/ });
  assert.throws(() => linkHub({ hub: node(chatHubNamespaces(), false) }, undefined), { message: /hubSecret/ });
});
