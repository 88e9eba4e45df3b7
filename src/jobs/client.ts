// `ctx.jobs`: what app code uses to start and follow runs. It wraps a `JobsApi` (in the
// daemon, the client of the jobs worker's socket) with call shapes made for code.

import { KoboldError } from '../errors.js';
import type { JobsApi, WatchEvent } from './api.js';
import type { LogLine, RunFilter, RunRecord } from './store.js';

export interface EnqueueOptions {
  /** Higher runs first; default 0. */
  priority?: number;
  /** Run no earlier than this time... */
  runAt?: Date | number;
  /** ...or than this many ms from now. */
  delayMs?: number;
  /** A second enqueue with the same key returns the first run (`created: false`). */
  idempotencyKey?: string;
}

export interface JobsClient {
  /** False when no task modules are configured: every other call then fails with KOBOLD_ERR_JOBS_DISABLED. */
  readonly enabled: boolean;
  /** Queues a run of `task`; fails at once for an unknown task, bad or oversized args, or a full queue. */
  enqueue(task: string, args?: unknown, options?: EnqueueOptions): Promise<{ run: RunRecord; created: boolean }>;
  /** Newest first. */
  list(filter?: RunFilter): Promise<RunRecord[]>;
  show(id: number): Promise<RunRecord>;
  logs(id: number, options?: { afterSeq?: number; limit?: number }): Promise<LogLine[]>;
  /** A running run stops within the task's grace; watch it (or `wait`) for the end. */
  cancel(id: number): Promise<RunRecord>;
  retry(id: number): Promise<RunRecord>;
  /** The run's kept lines, then its events until `end`; returns a function that stops watching. */
  watch(id: number, onEvent: (event: WatchEvent) => void, onError?: (error: Error) => void): Promise<() => void>;
  /** Resolves with the record once the run has ended (in any final state). */
  wait(id: number): Promise<RunRecord>;
}

/** A client over `api`; null gives the disabled client. */
export function createJobsClient(api: JobsApi | null): JobsClient {
  if (api === null) {
    const disabled = (): Promise<never> => Promise.reject(new KoboldError('KOBOLD_ERR_JOBS_DISABLED'));
    return { enabled: false, enqueue: disabled, list: disabled, show: disabled, logs: disabled, cancel: disabled, retry: disabled, watch: disabled, wait: disabled };
  }
  return {
    enabled: true,
    enqueue: async (task, args, options = {}) => {
      const { runAt, ...rest } = options;
      return api.enqueue({ task, args, trigger: 'code', ...rest, ...(runAt !== undefined && { runAt: runAt instanceof Date ? runAt.getTime() : runAt }) });
    },
    list: async (filter) => api.list(filter),
    show: async (id) => api.show(id),
    logs: async (id, options) => api.logs(id, options),
    cancel: async (id) => api.cancel(id),
    retry: async (id) => api.retry(id),
    watch: async (id, onEvent, onError) => api.watchRun(id, onEvent, onError),
    wait: (id) =>
      new Promise<RunRecord>((resolve, reject) => {
        void Promise.resolve(api.watchRun(id, (event) => event.type === 'end' && resolve(event.run), reject)).catch(reject);
      }),
  };
}
