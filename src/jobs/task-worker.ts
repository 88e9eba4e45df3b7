// The task-worker side of the wire: a warm process that imported the task modules once,
// connects to the dispatcher, says hello only once it is ready, then runs what it is
// given, forwarding log lines, stdout/stderr, progress and the outcome of each run.

import { AsyncLocalStorage } from 'node:async_hooks';
import type { Socket } from 'node:net';
import pino from 'pino';
import { KoboldError } from '../errors.js';
import { connectWithRetry } from '../ipc/unix-socket.js';
import { loadTaskModules, type TaskRegistry } from './registry.js';
import type { TaskContext, TaskResources } from './task.js';
import { toRunError, WireConnection, type FromWorker, type ToWorker } from './wire.js';

export interface TaskWorkerOptions {
  socketPath: string;
  /** Module paths to import once at start (relative to `baseDir`); or pass `tasks`. */
  taskModules?: readonly string[];
  tasks?: TaskRegistry;
  baseDir?: string;
  /** Runs at once in this process; above 1 only for async (I/O-bound) tasks. */
  concurrency?: number;
  /** After this many runs the worker drains and `closed` resolves; 0 = no limit. */
  maxRuns?: number;
  resources?: TaskResources;
  /** How long to keep retrying while the dispatcher's socket is not there yet. */
  connectTimeoutMs?: number;
  /** Lowest level `ctx.logger` keeps. */
  logLevel?: pino.LevelWithSilent;
  maxResultBytes?: number;
  maxMessageBytes?: number;
}

/** The environment variable `task-worker-main` reads its options (JSON) from. */
export const taskWorkerEnvKey = 'KOBOLD_TASK_WORKER';

export type TaskWorkerEnd = 'drained' | 'disconnected' | 'stopped' | 'protocol-error';

export interface TaskWorkerHandle {
  /** Resolves once the worker is done: its host should then exit (the supervisor replaces it). */
  readonly closed: Promise<TaskWorkerEnd>;
  /** Takes no more runs, lets the ones in progress finish, then disconnects; resolves with `closed`. */
  drain(): Promise<TaskWorkerEnd>;
  /** Aborts the runs in progress and disconnects. */
  stop(): void;
}

const defaults = {
  concurrency: 1,
  maxRuns: 0,
  connectTimeoutMs: 10_000,
  logLevel: 'debug' as pino.LevelWithSilent,
  maxResultBytes: 1024 * 1024,
  maxMessageBytes: 8 * 1024 * 1024,
};

interface ActiveRun {
  controller: AbortController;
  timeoutMs: number;
  /** Output written without a trailing newline yet, per stream. */
  partial: { stdout: string; stderr: string };
}

export async function runTaskWorker(options: TaskWorkerOptions): Promise<TaskWorkerHandle> {
  const settings = { ...defaults, ...stripUndefined(options) };
  const tasks = options.tasks ?? (await loadTaskModules(options.taskModules ?? [], options.baseDir));
  const socket = await connectToDispatcher(settings.socketPath, settings.connectTimeoutMs);
  const active = new Map<number, ActiveRun>();
  let runsStarted = 0;
  let draining = false;
  let end: TaskWorkerEnd | undefined;
  let resolveClosed!: (end: TaskWorkerEnd) => void;
  const closed = new Promise<TaskWorkerEnd>((resolve) => (resolveClosed = resolve));

  const wire: WireConnection<ToWorker, FromWorker> = new WireConnection(socket, settings, {
    message(message) {
      if (message.kind === 'run') void execute(message);
      else if (message.kind === 'abort') abort(message.runId, message.reason);
    },
    close(error) {
      finish(error ? 'protocol-error' : (end ?? 'disconnected'));
    },
  });

  function abort(runId: number, reason: 'cancelled' | 'timed_out'): void {
    const run = active.get(runId);
    run?.controller.abort(
      reason === 'cancelled'
        ? new KoboldError('KOBOLD_ERR_JOBS_CANCELLED', { id: runId })
        : new KoboldError('KOBOLD_ERR_JOBS_TIMEOUT', { id: runId, timeoutMs: run.timeoutMs }),
    );
  }

  function finish(reason: TaskWorkerEnd): void {
    end ??= reason;
    for (const [runId, run] of active) run.controller.abort(new KoboldError('KOBOLD_ERR_JOBS_INTERRUPTED', { id: runId }));
    uncaptureOutput(capture);
    resolveClosed(end);
  }

  const capture = (runId: number, stream: 'stdout' | 'stderr', text: string): void => {
    const run = active.get(runId);
    if (!run) return;
    const lines = (run.partial[stream] + text).split('\n');
    run.partial[stream] = lines.pop()!;
    for (const line of lines) wire.send({ kind: 'log', runId, stream, level: stream === 'stderr' ? 'error' : 'info', message: line, at: Date.now() });
  };
  captureOutput(capture);

  async function execute(message: Extract<ToWorker, { kind: 'run' }>): Promise<void> {
    const { runId } = message;
    const run: ActiveRun = { controller: new AbortController(), timeoutMs: message.timeoutMs, partial: { stdout: '', stderr: '' } };
    active.set(runId, run);
    runsStarted += 1;
    if (settings.maxRuns > 0 && runsStarted >= settings.maxRuns) startDraining();
    try {
      const task = tasks.get(message.task);
      if (!task) throw new KoboldError('KOBOLD_ERR_JOBS_UNKNOWN_TASK', { task: message.task });
      let logger: pino.Logger | undefined;
      const ctx: TaskContext = {
        runId,
        attempt: message.attempt,
        // Made on first use: most runs never log, and a pino instance is not free.
        get logger() {
          return (logger ??= runLogger(settings.logLevel, (level, text) => wire.send({ kind: 'log', runId, stream: 'log', level, message: text, at: Date.now() })));
        },
        signal: run.controller.signal,
        progress(percent, text) {
          if (!Number.isFinite(percent)) return;
          wire.send({ kind: 'progress', runId, percent: Math.min(100, Math.max(0, percent)), message: text ?? null });
        },
        resources: settings.resources ?? {},
      };
      const args = task.args.parse(message.args);
      const value = await currentRun.run(runId, () => task.run(args, ctx));
      const encoded = JSON.stringify(value ?? null);
      const size = Buffer.byteLength(encoded);
      if (size > settings.maxResultBytes) {
        throw new KoboldError('KOBOLD_ERR_JOBS_RESULT_TOO_LARGE', { task: task.name, size, limit: settings.maxResultBytes });
      }
      flushPartial(runId, run);
      wire.send({ kind: 'result', runId, value: JSON.parse(encoded) });
    } catch (error) {
      flushPartial(runId, run);
      wire.send({ kind: 'error', runId, error: toRunError(error) });
    } finally {
      active.delete(runId);
      if (draining && active.size === 0) {
        end = 'drained';
        wire.close();
      }
    }
  }

  function startDraining(): void {
    if (draining) return;
    draining = true;
    wire.send({ kind: 'draining' });
  }

  function flushPartial(runId: number, run: ActiveRun): void {
    for (const stream of ['stdout', 'stderr'] as const) if (run.partial[stream] !== '') capture(runId, stream, '\n');
  }

  wire.send({ kind: 'hello', pid: process.pid, concurrency: settings.concurrency, tasks: [...tasks.keys()] });
  return {
    closed,
    drain() {
      startDraining();
      if (active.size === 0) {
        end ??= 'drained';
        wire.close();
      }
      return closed;
    },
    stop() {
      end ??= 'stopped';
      wire.close();
      finish('stopped');
    },
  };
}

/** A pino logger per run whose lines go over the wire instead of to a file. */
function runLogger(level: pino.LevelWithSilent, emit: (level: string, text: string) => void): pino.Logger {
  return pino(
    { level, base: null, timestamp: false },
    {
      write(line: string) {
        const { level: number, msg, ...fields } = JSON.parse(line) as { level: number; msg?: string };
        const extra = Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : '';
        emit(pino.levels.labels[number] ?? String(number), `${msg ?? ''}${extra}`);
      },
    },
  );
}

// Output written by task code is attributed to its run through async context, so it is
// right even with several runs in one process. Output outside any run passes through.
const currentRun = new AsyncLocalStorage<number>();
type Capture = (runId: number, stream: 'stdout' | 'stderr', text: string) => void;
let installedCapture: Capture | undefined;
const originalWrites = { stdout: process.stdout.write, stderr: process.stderr.write };

function captureOutput(capture: Capture): void {
  installedCapture = capture;
  for (const stream of ['stdout', 'stderr'] as const) {
    const original = originalWrites[stream];
    process[stream].write = function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]): boolean {
      const runId = currentRun.getStore();
      if (runId === undefined || installedCapture === undefined) return (original as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
      installedCapture(runId, stream, typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString());
      const callback = rest.find((value) => typeof value === 'function') as (() => void) | undefined;
      callback?.();
      return true;
    } as typeof process.stdout.write;
  }
}

function uncaptureOutput(capture: Capture): void {
  if (installedCapture !== capture) return;
  installedCapture = undefined;
  process.stdout.write = originalWrites.stdout;
  process.stderr.write = originalWrites.stderr;
}

async function connectToDispatcher(socketPath: string, timeoutMs: number): Promise<Socket> {
  try {
    return await connectWithRetry(socketPath, timeoutMs);
  } catch (error) {
    throw new KoboldError('KOBOLD_ERR_JOBS_WIRE', { reason: `cannot reach the dispatcher at ${socketPath}: ${(error as Error).message}` });
  }
}

function stripUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
