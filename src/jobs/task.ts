// A task is a named function the job runner can run on request or on a schedule.
// `defineTask` checks the definition once, fills its defaults and freezes it, so the
// dispatcher and the task workers read the same settled values.

import type { Logger } from 'pino';
import type { z } from 'zod';
import { KoboldError } from '../errors.js';
import { validateSchedule } from './schedule.js';

export type Isolation = 'warm' | 'fresh';
export type OverlapPolicy = 'allow' | 'forbid' | 'replace';
export type MissedPolicy = 'skip' | 'run-once';

export interface Backoff {
  type: 'fixed' | 'exponential';
  delayMs: number;
  /** Cap for exponential backoff. */
  maxDelayMs: number;
}

export interface Schedule {
  cron: string;
  /** IANA time zone the cron expression is read in; the host's zone when absent. */
  timezone?: string;
  overlap: OverlapPolicy;
  missed: MissedPolicy;
}

/**
 * What a task run can reach besides its arguments. Hosts add their resources (DB pools,
 * clients) by declaration merging: `declare module 'kobold' { interface TaskResources { db: Pool } }`.
 */
export interface TaskResources {}

export interface TaskContext {
  readonly runId: number;
  readonly attempt: number;
  /** Lines logged here are kept with the run record. */
  readonly logger: Logger;
  /** Aborted on cancellation or timeout; `signal.reason` says which. */
  readonly signal: AbortSignal;
  progress(percent: number, message?: string): void;
  readonly resources: TaskResources;
}

export interface TaskOptions<S extends z.ZodType> {
  name: string;
  args: S;
  run(args: z.output<S>, ctx: TaskContext): unknown;
  timeoutMs?: number;
  /** Extra attempts after the first one fails, times out or is cut off. */
  retries?: number;
  backoff?: Partial<Backoff>;
  /** Most runs of this task at once across the pool; 0 = no limit. */
  concurrency?: number;
  isolation?: Isolation;
  schedule?: { cron: string; timezone?: string; overlap?: OverlapPolicy; missed?: MissedPolicy };
}

export interface TaskDefinition<S extends z.ZodType = z.ZodType> {
  readonly name: string;
  readonly args: S;
  readonly run: (args: z.output<S>, ctx: TaskContext) => unknown;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly backoff: Readonly<Backoff>;
  readonly concurrency: number;
  readonly isolation: Isolation;
  readonly schedule?: Readonly<Schedule>;
}

export const taskDefaults = {
  timeoutMs: 5 * 60_000,
  retries: 0,
  backoff: { type: 'exponential', delayMs: 1000, maxDelayMs: 5 * 60_000 } as Backoff,
  concurrency: 0,
  isolation: 'warm' as Isolation,
  overlap: 'forbid' as OverlapPolicy,
  missed: 'skip' as MissedPolicy,
};

// Symbol.for, not Symbol(): task modules loaded through tsx get their own copy of this
// file, and their definitions must still be recognised.
const taskBrand = Symbol.for('kobold.task');
const taskNamePattern = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

export function defineTask<S extends z.ZodType>(options: TaskOptions<S>): TaskDefinition<S> {
  const label = typeof options?.name === 'string' ? ` "${options.name}"` : '';
  const fail = (field: string, reason: string): never => {
    throw new KoboldError('KOBOLD_ERR_JOBS_TASK_DEFINITION', { task: label, field, reason });
  };
  if (typeof options !== 'object' || options === null) fail('(definition)', 'must be an object');
  if (typeof options.name !== 'string' || !taskNamePattern.test(options.name)) {
    fail('name', 'must be 1-128 letters, digits or . _ : - (starting with a letter or digit)');
  }
  if (!isZodSchema(options.args)) fail('args', 'must be a zod schema');
  if (typeof options.run !== 'function') fail('run', 'must be a function');
  const timeoutMs = options.timeoutMs ?? taskDefaults.timeoutMs;
  if (!isPositiveInteger(timeoutMs)) fail('timeoutMs', 'must be a positive integer');
  const retries = options.retries ?? taskDefaults.retries;
  if (!Number.isInteger(retries) || retries < 0 || retries > 1000) fail('retries', 'must be an integer from 0 to 1000');
  const backoff = { ...taskDefaults.backoff, ...options.backoff };
  if (backoff.type !== 'fixed' && backoff.type !== 'exponential') fail('backoff.type', 'must be "fixed" or "exponential"');
  if (!Number.isInteger(backoff.delayMs) || backoff.delayMs < 0) fail('backoff.delayMs', 'must be an integer >= 0');
  if (!Number.isInteger(backoff.maxDelayMs) || backoff.maxDelayMs < backoff.delayMs) {
    fail('backoff.maxDelayMs', 'must be an integer >= backoff.delayMs');
  }
  const concurrency = options.concurrency ?? taskDefaults.concurrency;
  if (!Number.isInteger(concurrency) || concurrency < 0) fail('concurrency', 'must be an integer >= 0 (0 = no limit)');
  const isolation = options.isolation ?? taskDefaults.isolation;
  if (isolation !== 'warm' && isolation !== 'fresh') fail('isolation', 'must be "warm" or "fresh"');
  let schedule: Schedule | undefined;
  if (options.schedule !== undefined) {
    schedule = {
      cron: options.schedule.cron,
      overlap: options.schedule.overlap ?? taskDefaults.overlap,
      missed: options.schedule.missed ?? taskDefaults.missed,
      ...(options.schedule.timezone !== undefined && { timezone: options.schedule.timezone }),
    };
    validateSchedule(options.name, schedule);
    // A scheduled run has no caller to pass arguments: it runs with {}.
    if (!options.args.safeParse({}).success) fail('schedule', 'needs an args schema that accepts {} (scheduled runs get no arguments)');
    Object.freeze(schedule);
  }
  const definition: TaskDefinition<S> = {
    name: options.name,
    args: options.args,
    run: options.run,
    timeoutMs,
    retries,
    backoff: Object.freeze(backoff),
    concurrency,
    isolation,
    ...(schedule && { schedule }),
  };
  Object.defineProperty(definition, taskBrand, { value: true });
  return Object.freeze(definition);
}

export function isTaskDefinition(value: unknown): value is TaskDefinition {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[taskBrand] === true;
}

/** Delay before attempt `nextAttempt` (2 = the first retry). */
export function backoffDelayMs(backoff: Backoff, nextAttempt: number): number {
  if (backoff.type === 'fixed') return backoff.delayMs;
  const exponent = Math.max(0, nextAttempt - 2);
  return Math.min(backoff.maxDelayMs, backoff.delayMs * 2 ** exponent);
}

function isZodSchema(value: unknown): value is z.ZodType {
  return typeof value === 'object' && value !== null && typeof (value as { safeParse?: unknown }).safeParse === 'function';
}

function isPositiveInteger(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) > 0;
}
