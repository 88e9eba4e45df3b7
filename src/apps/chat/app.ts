// kobold:chat — the flagship app: rooms, private messages, history, presence, commands,
// moderation, flood control and filters on the hub, with its page at `/`. See docs/chat.md.
import { join, resolve } from 'node:path';
import { defineApp } from '../../app/define.js';
import { describeError } from '../../errors.js';
import type { ShmApi } from '../../shm/app-api.js';
import { registerApi } from './api.js';
import { ChatService } from './chat.js';
import { chatConfigSchema, type ChatConfig } from './config.js';
import { linkHub } from './hub-link.js';
import { Identity } from './identity.js';
import { registerPage } from './page.js';
import { sharedChangeCounter } from './read-cache.js';
import { createFloodLimiter } from './shared-flood.js';
import { ChatStore } from './store.js';

export { chatConfigSchema, chatHubNamespaces, type ChatConfig, type ChatConfigInput } from './config.js';

const SWEEP_INTERVAL_MS = 60_000;

export default defineApp<ChatConfig>({
  name: 'chat',
  configSchema: chatConfigSchema,
  setup(ctx) {
    const config = ctx.config;
    const { hub, secret } = linkHub(ctx, config.hubSecret);
    // In-process hosts (the tests' harness) may not provide ctx.shm.
    const shm = ctx.shm as ShmApi | undefined;
    const warn = (message: string) => ctx.logger.warn(message);
    const changes = sharedChangeCounter(shm, ctx.name, warn);
    const store = new ChatStore(resolve(config.dataDir ?? join(ctx.runDir, 'chat'), 'chat.sqlite'), {
      storedPerRoom: config.storedPerRoom,
      persistIntervalMs: config.persistIntervalMs,
      onError: (error) => ctx.logger.error({ err: describeError(error) }, 'chat: a history batch could not be written'),
      ...(changes === undefined ? {} : { changes }),
    });
    ctx.resources.add('chat-store', store, (s) => s.close());
    const flood = createFloodLimiter(shm, ctx.name, config.flood, warn);
    const chat = new ChatService(config, store, hub, new Identity(config, store, secret), flood);
    chat.rooms.seed();
    ctx.timers.setInterval(() => chat.flood.sweep(), SWEEP_INTERVAL_MS);
    registerApi(ctx.http, chat, ctx.logger);
    registerPage(ctx.http);
    // Queued history is written before the worker goes (the store's close flushes too).
    ctx.onDrain(() => store.flush());
  },
});
