// Everything the `jobs` worker hosts, started and stopped in one place: the run store,
// the dispatcher with its socket for task workers, the scheduler, retention, and the API.

import { mkdirSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import pino from 'pino';
import { createJobsApi, createJobsHttpHandler, type JobsApi } from './api.js';
import { Dispatcher, type QueueDepth } from './dispatcher.js';
import { fillJobsOptions, type FilledJobsOptions, type JobsOptions } from './options.js';
import { loadTaskModules, type TaskRegistry } from './registry.js';
import { Scheduler } from './scheduler.js';
import { RunStore } from './store.js';

export interface JobsServiceOptions extends JobsOptions {
  /** Definitions in hand instead of (or before) loading `taskModules`. */
  tasks?: TaskRegistry;
  /** Keys for the HTTP API. */
  apiKeys?: string[];
  /** Signals a pool worker; the supervisor's kill by pid. */
  killWorker?: (pid: number, signal: NodeJS.Signals) => void;
  onQueueDepth?: (depth: QueueDepth) => void;
  logger?: pino.Logger;
}

export interface JobsService {
  readonly settings: Readonly<FilledJobsOptions>;
  readonly tasks: TaskRegistry;
  readonly store: RunStore;
  readonly dispatcher: Dispatcher;
  readonly scheduler: Scheduler;
  readonly api: JobsApi;
  /** Serves /api/jobs...; returns false for any other path. */
  handleHttp(req: IncomingMessage, res: ServerResponse): boolean;
  /** Report every task worker exit (pid, code, signal): it completes the record of a run it took down. */
  workerExited(pid: number, code: number | null, signal: string | null): void;
  close(): Promise<void>;
}

export async function startJobsService(options: JobsServiceOptions): Promise<JobsService> {
  const { tasks: given, apiKeys = [], killWorker, onQueueDepth, logger = pino({ level: 'silent' }), ...jobsOptions } = options;
  const settings = fillJobsOptions(jobsOptions);
  mkdirSync(settings.runDir, { recursive: true });
  const tasks = given ?? (await loadTaskModules(settings.taskModules, settings.baseDir));
  const store = new RunStore(settings.storeFile, settings);
  const dispatcher = new Dispatcher({
    store,
    tasks,
    settings,
    logger,
    ...(killWorker && { killWorker }),
    ...(onQueueDepth && { onQueueDepth }),
  });
  try {
    await dispatcher.start();
  } catch (error) {
    store.close();
    throw error;
  }
  const scheduler = new Scheduler({ store, dispatcher, tasks, logger });
  scheduler.start();
  const applyRetention = (): void => {
    const deleted = store.applyRetention(settings.retention, Date.now());
    if (deleted > 0) logger.info({ deleted }, 'old runs deleted by the retention policy');
  };
  applyRetention();
  const retentionTimer = setInterval(applyRetention, settings.retentionIntervalMs);
  retentionTimer.unref();
  const api = createJobsApi(store, dispatcher);
  const handleHttp = createJobsHttpHandler(api, { apiKeys, logger });
  return {
    settings,
    tasks,
    store,
    dispatcher,
    scheduler,
    api,
    handleHttp,
    workerExited: (pid, code, signal) => dispatcher.workerExited(pid, code, signal),
    async close() {
      scheduler.stop();
      clearInterval(retentionTimer);
      await dispatcher.close();
      store.close();
    },
  };
}
