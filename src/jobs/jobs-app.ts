// The built-in app `kobold:jobs`, run by the `jobs` singleton: the dispatcher, scheduler
// and run store, the API socket every other process uses, the `tasks` pool sized from the
// queue, and task-worker exits reported to the dispatcher by the supervisor.

import { defineApp } from '../app/define.js';
import { serveJobsApi } from './api-socket.js';
import { dispatcherOptions, jobsApiSocketPath, TASKS_SERVICE } from './config.js';
import { jobsHostOf } from './feature.js';
import { PoolScaler } from './pool-scaler.js';
import { startJobsService } from './service.js';

export default defineApp({
  name: 'kobold:jobs',
  async setup(ctx) {
    const host = jobsHostOf(ctx.jobs);
    const { pool } = host.config;
    const scaler = new PoolScaler(
      { minWorkers: host.tasksService.minWorkers, maxWorkers: host.tasksService.maxWorkers, concurrency: pool.concurrency },
      pool.scaleDownDelayMs,
      (workers) => ctx.supervisor.scale(TASKS_SERVICE, workers),
    );
    const service = await startJobsService({
      ...dispatcherOptions(host.config, host.runDir, host.configFile),
      logger: ctx.logger,
      onQueueDepth: (depth) => scaler.update(depth),
    });
    const stopWatchingExits = ctx.supervisor.onWorkerExit(TASKS_SERVICE, (exit) => service.workerExited(exit.pid, exit.code, exit.signal));
    const api = await serveJobsApi(service.api, { socketPath: jobsApiSocketPath(host.runDir), maxMessageBytes: service.settings.maxMessageBytes, logger: ctx.logger }).catch(
      async (error: unknown) => {
        await service.close();
        throw error;
      },
    );
    ctx.logger.info(`jobs: ${service.tasks.size} tasks (${[...service.tasks.keys()].join(', ')}), store ${service.settings.storeFile}`);
    // In drain, not close: runs in progress get the dispatcher's drainTimeoutMs to finish.
    ctx.onDrain(async () => {
      stopWatchingExits();
      scaler.stop();
      await service.close();
      await api.close();
    });
  },
});
