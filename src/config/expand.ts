import { hubExpansion } from '../hub/expansion.js';
import { expandJobs } from '../jobs/expand.js';
import type { AppConfig, KoboldConfig, ServiceConfig } from './schema.js';

/**
 * A feature (the hub, the job runner) adds the services and apps it needs to a validated
 * config: the hub's writer singleton, the job dispatcher and its pool. A service or app the
 * user declared under the same name wins, so each can be tuned in the config file.
 */
export type ConfigExpansion = (config: KoboldConfig) => { services?: Record<string, ServiceConfig>; apps?: AppConfig[] };

/** Every feature's expansion, in order. */
export const CONFIG_EXPANSIONS: ConfigExpansion[] = [hubExpansion, expandJobs];

export function expandConfig(config: KoboldConfig, expansions: readonly ConfigExpansion[] = CONFIG_EXPANSIONS): KoboldConfig {
  let result = config;
  for (const expand of expansions) {
    const added = expand(result);
    const services = { ...added.services, ...result.services };
    const names = new Set(result.apps.map((app) => app.name));
    const apps = [...result.apps, ...(added.apps ?? []).filter((app) => !names.has(app.name))];
    result = { ...result, services, apps };
  }
  return result;
}
