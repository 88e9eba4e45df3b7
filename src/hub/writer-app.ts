// The built-in app `kobold:hub-writer`, run by the `hub` singleton service (added by
// expansion.ts): the log server that assigns offsets and feeds every web worker, and the
// UNIX publish socket. On reload the new writer takes the old one's streams over
// (log-server.ts), so epochs and offsets continue and clients resume without loss. With the
// `shm` backend it also writes the log to the ring (ring-log.ts) and recovers from it.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { defineApp } from '../app/define.js';
import { chooseHubBackend, type HubConfig, hubConfigSchema, resolveHubSettings } from './config.js';
import { startHubLogServer } from './log-server.js';
import { HubNode } from './node.js';
import { type PublishSocket, startPublishSocket } from './publish-socket.js';

export default defineApp<HubConfig>({
  name: 'hub-writer',
  configSchema: hubConfigSchema,
  async setup(ctx) {
    // The expansion passes absolute socket paths; a hand-written instance may leave them to the defaults.
    const settings = resolveHubSettings(ctx.config, process.cwd());
    mkdirSync(dirname(settings.writerSocketPath), { recursive: true });
    const { backend, fallbackReason } = chooseHubBackend(settings.backend);
    if (fallbackReason !== undefined) ctx.logger.warn(`hub: shared memory is unavailable (${fallbackReason}); using the socket backend`);
    const { segment, doorbellPath, recordBytes, records } = settings.ring;
    if (backend === 'shm') {
      mkdirSync(dirname(doorbellPath), { recursive: true });
      if (segment.includes('/')) mkdirSync(dirname(segment), { recursive: true });
    }
    let publishSocket: PublishSocket | null = null;
    const closePublishSocket = async () => {
      const open = publishSocket;
      publishSocket = null;
      await open?.close();
    };
    const server = await startHubLogServer({
      socketPath: settings.writerSocketPath,
      namespaces: settings.namespaces,
      logger: ctx.logger,
      takeOver: true,
      ring: backend === 'shm' ? { segment, doorbellPath, recordBytes, records } : undefined,
      beforeHandOver: async () => {
        // From here this writer cannot serve again: should its successor fail, the master starts another.
        ctx.supervisor.handedOver();
        // The new writer opens the publish socket on the same path after taking over.
        await closePublishSocket();
      },
    });
    ctx.resources.add('hub log server', server, (opened) => opened.close());
    if (settings.publishSocketEnabled) {
      const node = new HubNode({ backend: server.backend, hub: { namespaces: settings.namespaces, limits: settings.limits }, logger: ctx.logger });
      mkdirSync(dirname(settings.publishSocketPath), { recursive: true });
      publishSocket = await startPublishSocket({ socketPath: settings.publishSocketPath, node, mode: settings.publishSocketMode, logger: ctx.logger });
      ctx.logger.info({ publishSocket: settings.publishSocketPath }, 'hub: publish socket listening');
    }
    // Web workers keep publishing while they drain, so the log server stays until close.
    ctx.onDrain(closePublishSocket);
  },
});
