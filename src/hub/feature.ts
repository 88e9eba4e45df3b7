// The hub in every worker but the writer's: connects to the writer (connectHubLog: the log
// from its shared-memory ring when it writes one, else from its socket), builds
// this process's HubNode, gives apps `ctx.hub`, and in `http` services serves the
// transports, the client bundle and the server API on the service's port (mount.ts).
import type { WorkerBoot } from '../ipc/messages.js';
import type { FeatureHandle, WorkerFeature } from '../worker/features.js';
import { connectHubLog } from './backends/shm.js';
import { hubConfigSchema, type HubSettings, resolveHubSettings } from './config.js';
import { HUB_WRITER_MODULE } from './expansion.js';
import { HubHttpMount } from './mount.js';
import { HubNode } from './node.js';

/** The hub settings the expansion gave the writer app, or null when the hub does not run. */
export function hubSettingsOf(boot: WorkerBoot): HubSettings | null {
  const apps = (boot.config as { apps?: { module: string; config?: unknown }[] }).apps ?? [];
  const writer = apps.find((app) => app.module === HUB_WRITER_MODULE);
  if (writer === undefined) return null;
  return resolveHubSettings(hubConfigSchema.parse(writer.config), process.cwd());
}

export const hubFeature: WorkerFeature = {
  name: 'hub',
  async start({ boot, logger }): Promise<FeatureHandle | null> {
    const settings = hubSettingsOf(boot);
    if (settings === null || boot.apps.some((app) => app.module === HUB_WRITER_MODULE)) return null;
    const backend = await connectHubLog({
      socketPath: settings.writerSocketPath,
      namespaces: settings.namespaces,
      logger,
      requestTimeoutMs: settings.writerRequestTimeoutMs,
      connectTimeoutMs: settings.writerConnectTimeoutMs,
    });
    const node = new HubNode({
      backend,
      hub: { namespaces: settings.namespaces, limits: settings.limits },
      auth:
        settings.tokenSecret === undefined
          ? undefined
          : { secret: settings.tokenSecret, requireExpiry: settings.tokenRequireExpiry, issuer: settings.tokenIssuer, audience: settings.tokenAudience },
      logger,
    });
    const close = () => node.close();
    if (boot.service.role !== 'http') return { context: { hub: node }, close };
    const mount = new HubHttpMount(node, settings, logger);
    return {
      context: { hub: node },
      handleHttp: (req, res) => mount.handleHttp(req, res),
      handleUpgrade: (req, socket, head) => mount.handleUpgrade(req, socket, head),
      drain: () => mount.drain(),
      close,
    };
  },
};
