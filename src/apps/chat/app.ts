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
    const store = new ChatStore(resolve(config.dataDir ?? join(ctx.runDir, 'chat'), 'chat.sqlite'), {
      storedPerRoom: config.storedPerRoom,
      persistIntervalMs: config.persistIntervalMs,
      onError: (error) => ctx.logger.error({ err: describeError(error) }, 'chat: a history batch could not be written'),
    });
    ctx.resources.add('chat-store', store, (s) => s.close());
    // In-process hosts (the tests' harness) may not provide ctx.shm.
    const flood = createFloodLimiter(ctx.shm as ShmApi | undefined, ctx.name, config.flood, (message) => ctx.logger.warn(message));
    const chat = new ChatService(config, store, hub, new Identity(config, store, secret), flood);
    chat.rooms.seed();
    ctx.timers.setInterval(() => chat.flood.sweep(), SWEEP_INTERVAL_MS);
    registerApi(ctx.http, chat, ctx.logger);
    registerPage(ctx.http);
    // Queued history is written before the worker goes (the store's close flushes too).
    ctx.onDrain(() => store.flush());
  },
});
