// Every limit of the job runner, with its default, checked once when the jobs service
// starts. An error names the option. (The lead may move the defaults to config/defaults.ts.)

import { z } from 'zod';
import { KoboldError } from '../errors.js';

export interface JobsOptions {
  /** Where the store file and the socket live. */
  runDir: string;
  /** The UNIX socket task workers connect to; `<runDir>/jobs.sock` by default. */
  socketPath?: string;
  /** The SQLite file; `<runDir>/jobs.sqlite` by default. */
  storeFile?: string;
  /** Task modules to import (the dispatcher reads their schemas; workers run them). */
  taskModules?: string[];
  /** Directory the task module paths are relative to. */
  baseDir?: string;
  /** Queued + delayed runs at most; beyond it enqueue fails with `queue full`. */
  maxQueued?: number;
  maxArgsBytes?: number;
  maxResultBytes?: number;
  /** A longer wire message closes the worker's connection. */
  maxMessageBytes?: number;
  maxLogLinesPerRun?: number;
  maxLogLineBytes?: number;
  /** After a timeout or cancel, how long the task may take to honour its abort signal before TERM. */
  abortGraceMs?: number;
  /** After TERM, how long before KILL. */
  killGraceMs?: number;
  /** After a worker's socket closes mid-run, how long to wait for its exit code from the supervisor. */
  workerExitWaitMs?: number;
  /** Processes running `isolation: 'fresh'` tasks at once. */
  maxFreshProcesses?: number;
  /** How long close() waits for runs in progress; the rest become `interrupted` at the next start. */
  drainTimeoutMs?: number;
  retention?: { maxAgeDays?: number; maxRuns?: number };
  retentionIntervalMs?: number;
}

export type FilledJobsOptions = Required<Omit<JobsOptions, 'retention'>> & { retention: { maxAgeDays: number; maxRuns: number } };

export const jobsDefaults = {
  taskModules: [] as string[],
  maxQueued: 10_000,
  maxArgsBytes: 64 * 1024,
  maxResultBytes: 1024 * 1024,
  maxMessageBytes: 8 * 1024 * 1024,
  maxLogLinesPerRun: 2000,
  maxLogLineBytes: 8 * 1024,
  abortGraceMs: 1000,
  killGraceMs: 2000,
  workerExitWaitMs: 1000,
  maxFreshProcesses: 4,
  drainTimeoutMs: 10_000,
  retention: { maxAgeDays: 7, maxRuns: 10_000 },
  retentionIntervalMs: 60 * 60_000,
};

const count = z.number().int().min(1);
const duration = z.number().int().min(0);
const optionsSchema = z.strictObject({
  runDir: z.string().min(1),
  socketPath: z.string().min(1).optional(),
  storeFile: z.string().min(1).optional(),
  taskModules: z.array(z.string().min(1)).optional(),
  baseDir: z.string().min(1).optional(),
  maxQueued: count.optional(),
  maxArgsBytes: count.optional(),
  maxResultBytes: count.optional(),
  maxMessageBytes: count.optional(),
  maxLogLinesPerRun: count.optional(),
  maxLogLineBytes: count.optional(),
  abortGraceMs: duration.optional(),
  killGraceMs: duration.optional(),
  workerExitWaitMs: duration.optional(),
  maxFreshProcesses: count.optional(),
  drainTimeoutMs: duration.optional(),
  retention: z.strictObject({ maxAgeDays: z.number().min(0).optional(), maxRuns: z.number().int().min(0).optional() }).optional(),
  retentionIntervalMs: count.optional(),
});

export function fillJobsOptions(options: JobsOptions): Readonly<FilledJobsOptions> {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const option = issue.path.join('.') || (issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : '(options)');
    throw new KoboldError('KOBOLD_ERR_JOBS_OPTION', { option, reason: issue.message });
  }
  const given = parsed.data;
  return Object.freeze({
    ...jobsDefaults,
    ...given,
    socketPath: given.socketPath ?? `${given.runDir}/jobs.sock`,
    storeFile: given.storeFile ?? `${given.runDir}/jobs.sqlite`,
    baseDir: given.baseDir ?? process.cwd(),
    retention: { ...jobsDefaults.retention, ...given.retention },
  });
}
