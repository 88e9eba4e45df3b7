// The built-in app `kobold:tasks`, run by every worker of the `tasks` pool: a task worker
// that imported the task modules once and takes runs from the dispatcher. When it ends on
// its own (its run limit, or the dispatcher went away) it asks the supervisor to replace it:
// a fresh worker starts, then this one is drained.

import { defineApp } from '../app/define.js';
import { dispatcherOptions, taskModulesBaseDir } from './config.js';
import { jobsHostOf } from './feature.js';
import { fillJobsOptions } from './options.js';
import { runTaskWorker } from './task-worker.js';

/** How long a pool worker waits for the dispatcher, which starts at the same time. */
const connectTimeoutMs = 20_000;
/** If no replacement came (the dispatcher is still away), exit and let the restart policy act. */
const recycleTimeoutMs = 30_000;

export default defineApp({
  name: 'kobold:tasks',
  async setup(ctx) {
    const host = jobsHostOf(ctx.jobs);
    const { config } = host;
    const worker = await runTaskWorker({
      socketPath: fillJobsOptions(dispatcherOptions(config, host.runDir, host.configFile)).socketPath,
      taskModules: config.taskModules,
      baseDir: taskModulesBaseDir(host.configFile),
      concurrency: config.pool.concurrency,
      maxRuns: config.pool.maxRuns,
      maxResultBytes: config.maxResultBytes,
      connectTimeoutMs,
    });
    let draining = false;
    ctx.onDrain(async () => {
      draining = true;
      await worker.drain();
    });
    ctx.onClose(() => worker.stop());
    void worker.closed.then((end) => {
      if (draining) return;
      ctx.logger.info(`task worker ended (${end}): asking for a fresh one`);
      ctx.supervisor.recycle(`task worker ${end}`);
      setTimeout(() => {
        ctx.logger.error(`no replacement within ${recycleTimeoutMs} ms; exiting`);
        ctx.logger.flush(() => process.exit(1));
      }, recycleTimeoutMs).unref();
    });
  },
});
