// The job runner's part in every worker: `ctx.jobs` for the apps, and the HTTP API
// (`/api/jobs...`) on http services when API keys are configured. Both forward to the
// `jobs` worker through its API socket. The built-in apps that host the dispatcher and
// the task workers read their settings from here too (`jobsHostOf`).

import type { ServiceConfig } from '../config/schema.js';
import { KoboldError } from '../errors.js';
import type { FeatureHandle, WorkerFeature } from '../worker/features.js';
import { createJobsHttpHandler } from './api.js';
import { JobsApiClient } from './api-client.js';
import { createJobsClient, type JobsClient } from './client.js';
import { jobsApiSocketPath, jobsConfigSchema, jobsEnabled, TASKS_SERVICE, type JobsConfig } from './config.js';

/** What the built-in `kobold:jobs` and `kobold:tasks` apps need from the worker's boot. */
export interface JobsHost {
  config: JobsConfig;
  runDir: string;
  configFile: string | null;
  /** The `tasks` service as configured (a user may have tuned it). */
  tasksService: Pick<ServiceConfig, 'minWorkers' | 'maxWorkers'>;
}

const hosts = new WeakMap<JobsClient, JobsHost>();

export const jobsFeature: WorkerFeature = {
  name: 'jobs',
  async start({ boot, logger }) {
    const whole = boot.config as { jobs?: unknown; services?: Record<string, ServiceConfig> };
    const config = jobsConfigSchema.parse(whole.jobs ?? {});
    if (!jobsEnabled(config)) return { context: { jobs: createJobsClient(null) } };
    const api = new JobsApiClient(jobsApiSocketPath(boot.runDir));
    const jobs = createJobsClient(api);
    const tasksService = whole.services?.[TASKS_SERVICE] ?? { minWorkers: config.pool.minWorkers, maxWorkers: config.pool.maxWorkers };
    hosts.set(jobs, { config, runDir: boot.runDir, configFile: boot.configFile, tasksService });
    const handle: FeatureHandle = { context: { jobs }, close: async () => api.close() };
    if (boot.service.role === 'http' && config.apiKeys.length > 0) {
      handle.handleHttp = createJobsHttpHandler(api, { apiKeys: config.apiKeys, maxBodyBytes: boot.service.http.maxBodyBytes, logger });
    }
    return handle;
  },
};

/** The job runner's settings in this worker, for the built-in apps; throws when jobs are off. */
export function jobsHostOf(jobs: JobsClient | undefined): JobsHost {
  const host = jobs && hosts.get(jobs);
  if (host === undefined) throw new KoboldError('KOBOLD_ERR_JOBS_DISABLED');
  return host;
}
