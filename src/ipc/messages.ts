// Every message between the master and a worker (over node:cluster's IPC channel).
// Each kind is a type; `handle()` takes a map with one handler per kind, so a kind
// without a handler fails to compile.

import type { AppConfig, ServiceConfig } from '../config/schema.js';

/** The part of the config a worker needs; plain JSON (no functions cross the boundary). */
export interface WorkerBoot {
  workerId: number;
  serviceName: string;
  service: Omit<ServiceConfig, 'scaling'>;
  apps: AppConfig[];
  logFile: string | undefined;
  logLevel: string;
  heartbeatIntervalMs: number;
  runDir: string;
  configFile: string | null;
  /** Where this worker's debug console listens, or null when consoles are off. */
  consoleSocket: string | null;
  /** The whole config as JSON (no functions), for features that read their own section. */
  config: unknown;
}

export interface WorkerMetrics {
  rss: number;
  heapUsed: number;
  /** Event-loop utilization (0..1) since the previous heartbeat. */
  elu: number;
  /** Requests served since the worker started. */
  requests: number;
  inFlight: number;
  connections: number;
  /** Epoch ms of the last request's end (or the worker's start). */
  lastActiveAt: number;
}

export type ToWorker =
  | { kind: 'boot'; boot: WorkerBoot }
  | { kind: 'drain'; timeoutMs: number }
  | { kind: 'reopen-logs' }
  /** New instance configs for this worker's apps; the reply says whether it took them in place. */
  | { kind: 'config'; seq: number; apps: AppConfig[] }
  /** A worker of a service this worker watches has exited (see `watch-exits`). */
  | { kind: 'worker-exit'; service: string; pid: number; code: number | null; signal: string | null };

/** The answer to a request that carried `seq`. */
export interface Reply {
  kind: 'reply';
  ack: number;
  ok: boolean;
  /** Why it could not (the master then replaces the worker instead). */
  error?: string;
}

export type ToMaster =
  | { kind: 'boot-request' }
  | Reply
  | { kind: 'ready' }
  | { kind: 'start-failed'; error: string; noRespawn: boolean }
  | { kind: 'heartbeat'; metrics: WorkerMetrics }
  /** Asks for a service's worker count (kept within its min/max), e.g. a job pool following its queue. */
  | { kind: 'scale'; service: string; workers: number }
  /** Asks to be replaced like a limit recycle: the new worker starts, then this one is drained. */
  | { kind: 'recycle'; reason: string }
  /** Asks to be told when a worker of `service` exits. */
  | { kind: 'watch-exits'; service: string }
  /** This worker gave its work (a singleton's state) to the replacement starting in its slot: it cannot serve again. */
  | { kind: 'handed-over' };

type Kinds<M extends { kind: string }> = M['kind'];
export type Handlers<M extends { kind: string }> = {
  [K in Kinds<M>]: (message: Extract<M, { kind: K }>) => void;
};

/** Dispatches a message to its handler; returns false when it is not one of ours. */
export function handle<M extends { kind: string }>(handlers: Handlers<M>, message: unknown): boolean {
  if (message === null || typeof message !== 'object') return false;
  const kind = (message as { kind?: unknown }).kind;
  if (typeof kind !== 'string' || !Object.hasOwn(handlers, kind)) return false;
  (handlers[kind as Kinds<M>] as (m: unknown) => void)(message);
  return true;
}
