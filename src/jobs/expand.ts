// What the job runner adds to a validated config when task modules are configured: the
// `jobs` singleton (dispatcher, scheduler, run store) and the `tasks` pool of warm task
// workers. A service the user declares under the same name wins, so each can be tuned.

import type { ConfigExpansion } from '../config/expand.js';
import { appSchema, serviceSchema } from '../config/schema.js';
import { jobsEnabled, JOBS_SERVICE, TASKS_SERVICE } from './config.js';

export const expandJobs: ConfigExpansion = (config) => {
  if (!jobsEnabled(config.jobs)) return {};
  const { pool } = config.jobs;
  return {
    services: {
      [JOBS_SERVICE]: serviceSchema.parse({ role: 'singleton', maxWorkers: 1 }),
      [TASKS_SERVICE]: serviceSchema.parse({
        role: 'pool',
        minWorkers: pool.minWorkers,
        maxWorkers: pool.maxWorkers,
        workers: pool.minWorkers,
        limits: { maxMemoryMb: pool.maxMemoryMb },
        heartbeatTimeoutMs: pool.heartbeatTimeoutMs,
        // The dispatcher sizes the pool from its queue; load-based scaling would fight it.
        scaling: { enabled: false },
      }),
    },
    apps: [
      appSchema.parse({ name: JOBS_SERVICE, module: 'kobold:jobs', service: JOBS_SERVICE }),
      appSchema.parse({ name: TASKS_SERVICE, module: 'kobold:tasks', service: TASKS_SERVICE }),
    ],
  };
};
