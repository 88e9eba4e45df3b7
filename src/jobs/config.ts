// The `jobs` key of kobold.config: the task modules, the pool of task workers, limits and
// API keys. Jobs are on when task modules are configured; schedules come from the tasks.
// Everything the daemon derives from it (paths, dispatcher options) is computed here too,
// so the master's expansion, the workers and the CLI agree.

import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { jobsDefaults, type JobsOptions } from './options.js';

/** The services the job runner adds: the dispatcher singleton and the task-worker pool. */
export const JOBS_SERVICE = 'jobs';
export const TASKS_SERVICE = 'tasks';
/** Where the jobs worker answers enqueue/list/show/… (CLI, `ctx.jobs`, web workers), in runDir. */
export const JOBS_API_SOCKET = 'jobs-api.sock';

export const jobsPoolDefaults = {
  minWorkers: 1,
  maxWorkers: Math.max(2, availableParallelism()),
  /** Runs at once per task worker; above 1 only for async (I/O-bound) tasks. */
  concurrency: 1,
  /** A task worker is replaced after this many runs; 0 = never. */
  maxRuns: 0,
  /** A task worker is replaced when its RSS passes this; 0 = never. */
  maxMemoryMb: 0,
  /** How long the queue must stay short before the pool shrinks. */
  scaleDownDelayMs: 10_000,
  /**
   * A task worker whose event loop is blocked this long (a CPU-bound task) is killed as hung.
   * Longer than the daemon's default, since a task may compute; its own `timeoutMs` still applies.
   */
  heartbeatTimeoutMs: 300_000,
};

const count = z.number().int().min(1);

const poolSchema = z
  .strictObject({
    minWorkers: count.default(jobsPoolDefaults.minWorkers),
    maxWorkers: count.default(jobsPoolDefaults.maxWorkers),
    concurrency: count.default(jobsPoolDefaults.concurrency),
    maxRuns: z.number().int().min(0).default(jobsPoolDefaults.maxRuns),
    maxMemoryMb: z.number().int().min(0).default(jobsPoolDefaults.maxMemoryMb),
    scaleDownDelayMs: z.number().int().min(0).default(jobsPoolDefaults.scaleDownDelayMs),
    heartbeatTimeoutMs: z.number().int().positive().default(jobsPoolDefaults.heartbeatTimeoutMs),
  })
  .prefault({})
  .refine((pool) => pool.minWorkers <= pool.maxWorkers, { message: 'minWorkers must not be above maxWorkers', path: ['minWorkers'] });

export const jobsConfigSchema = z
  .strictObject({
    /** Task modules (.ts or .js), relative to the config file. */
    taskModules: z.array(z.string().min(1)).default([]),
    /** Keys for the HTTP API (`/api/jobs` on every http service); no key = no HTTP API. */
    apiKeys: z.array(z.string().min(16, 'an API key needs at least 16 characters')).default([]),
    pool: poolSchema,
    maxQueued: count.default(jobsDefaults.maxQueued),
    maxArgsBytes: count.default(jobsDefaults.maxArgsBytes),
    maxResultBytes: count.default(jobsDefaults.maxResultBytes),
    maxLogLinesPerRun: count.default(jobsDefaults.maxLogLinesPerRun),
    maxFreshProcesses: count.default(jobsDefaults.maxFreshProcesses),
    /** After a timeout or cancel: how long a task may take to stop before TERM, then before KILL. */
    abortGraceMs: z.number().int().min(0).default(jobsDefaults.abortGraceMs),
    killGraceMs: z.number().int().min(0).default(jobsDefaults.killGraceMs),
    /** On stop, how long the dispatcher waits for runs in progress; the rest become `interrupted`. */
    drainTimeoutMs: z.number().int().min(0).default(jobsDefaults.drainTimeoutMs),
    retention: z
      .strictObject({
        maxAgeDays: z.number().min(0).default(jobsDefaults.retention.maxAgeDays),
        maxRuns: z.number().int().min(0).default(jobsDefaults.retention.maxRuns),
      })
      .prefault({}),
  })
  .prefault({});

export type JobsConfigInput = z.input<typeof jobsConfigSchema>;
export type JobsConfig = z.output<typeof jobsConfigSchema>;

export function jobsEnabled(jobs: JobsConfig): boolean {
  return jobs.taskModules.length > 0;
}

/** What task module paths are relative to: the config file's directory, or the daemon's cwd. */
export function taskModulesBaseDir(configFile: string | null): string {
  return configFile === null ? process.cwd() : dirname(configFile);
}

export function jobsApiSocketPath(runDir: string): string {
  return join(runDir, JOBS_API_SOCKET);
}

/** The dispatcher's options from the config (its socket and store live in runDir). */
export function dispatcherOptions(jobs: JobsConfig, runDir: string, configFile: string | null): JobsOptions {
  const { taskModules, maxQueued, maxArgsBytes, maxResultBytes, maxLogLinesPerRun, maxFreshProcesses, abortGraceMs, killGraceMs, drainTimeoutMs, retention } = jobs;
  return {
    runDir,
    baseDir: taskModulesBaseDir(configFile),
    taskModules,
    maxQueued,
    maxArgsBytes,
    maxResultBytes,
    maxLogLinesPerRun,
    maxFreshProcesses,
    abortGraceMs,
    killGraceMs,
    drainTimeoutMs,
    retention,
  };
}
