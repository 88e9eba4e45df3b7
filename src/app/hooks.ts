// The application hooks, in the order a worker runs them. Each is awaited with a
// timeout (per app instance: `apps[].timeouts`), so a hung hook cannot hold a worker
// or a reload forever.

import type { AppConfig } from '../config/schema.js';

export const APP_HOOKS = ['setup', 'ready', 'config', 'drain', 'close'] as const;

export type HookName = (typeof APP_HOOKS)[number];

export function hookTimeoutMs(app: AppConfig, hook: HookName): number {
  return app.timeouts[`${hook}Ms`];
}
