// Adds the hub's writer to a validated config: a `hub` singleton service running the
// built-in app `kobold:hub-writer`. A `hub` service or `hub-writer` app the user declared wins.
// A hub with no namespace has no channel to serve, so nothing is added then.
import { resolve } from 'node:path';
import type { ConfigExpansion } from '../config/expand.js';
import { appSchema, serviceSchema } from '../config/schema.js';
import { resolveHubSettings } from './config.js';

export const HUB_SERVICE = 'hub';
export const HUB_WRITER_APP = 'hub-writer';
export const HUB_WRITER_MODULE = 'kobold:hub-writer';

/**
 * The writer app's config is the hub section with absolute socket paths, so the writer
 * and the web workers (which read it from the boot config) agree on them. A relative
 * runDir resolves against the daemon's working directory here.
 */
export const hubExpansion: ConfigExpansion = (config) => {
  if (!hubRuns(config.hub)) return {};
  const settings = resolveHubSettings(config.hub, resolve(config.runDir));
  return {
    services: { [HUB_SERVICE]: serviceSchema.parse({ role: 'singleton', maxWorkers: 1 }) },
    apps: [appSchema.parse({ name: HUB_WRITER_APP, module: HUB_WRITER_MODULE, service: HUB_SERVICE, config: settings })],
  };
};

/** Whether the hub runs with this config section. */
export function hubRuns(hub: { enabled: boolean; namespaces: readonly unknown[] }): boolean {
  return hub.enabled && hub.namespaces.length > 0;
}
