// The dispatcher: takes runs in, hands them to task workers, and turns whatever happens
// to them (a result, an error, a timeout, a cancel, a worker that died) into the run's
// next state in the store. Every run it accepts ends in a recorded state; none is dropped.

import pino from 'pino';
import { z } from 'zod';
import { KoboldError } from '../errors.js';
import type { FilledJobsOptions } from './options.js';
import { RunQueue, type WaitingRun } from './queue.js';
import type { TaskRegistry } from './registry.js';
import { finishedStates, type RunState } from './states.js';
import type { LogLine, RunError, RunPatch, RunProgress, RunRecord, RunStore } from './store.js';
import { backoffDelayMs, type TaskDefinition } from './task.js';
import type { FromWorker } from './wire.js';
import { describeExit, Workers, type WorkerExit, type WorkerSlot } from './workers.js';

export interface EnqueueRequest {
  task: string;
  args?: unknown;
  /** Higher runs first; default 0. */
  priority?: number;
  /** Run no earlier than this time (ms since the epoch)... */
  runAt?: number;
  /** ...or than this many ms from now. */
  delayMs?: number;
  /** A second enqueue with the same key returns the first run. */
  idempotencyKey?: string;
  /** What asked for the run: api, cli, schedule, code... */
  trigger?: string;
}

export interface QueueDepth {
  ready: number;
  delayed: number;
  running: number;
  /** Pool workers connected and taking runs. */
  workers: number;
  /** Runs the pool could start right now. */
  freeSlots: number;
}

export type RunEvent =
  | { type: 'log'; line: LogLine }
  | { type: 'progress'; progress: RunProgress }
  | { type: 'state'; run: RunRecord };

export interface DispatcherOptions {
  store: RunStore;
  tasks: TaskRegistry;
  settings: Readonly<FilledJobsOptions>;
  /** Signals a pool worker (the supervisor owns them); process.kill by default. */
  killWorker?: (pid: number, signal: NodeJS.Signals) => void;
  /** Called when the queue depth changes (at most once per event-loop turn): scale the pool from it. */
  onQueueDepth?: (depth: QueueDepth) => void;
  logger?: pino.Logger;
}

/** The dispatcher's view of a run in a worker. */
interface Active {
  run: RunRecord;
  task: TaskDefinition | undefined;
  worker: WorkerSlot;
  timeout: NodeJS.Timeout;
  /** Set once a cancel or a timeout decided how the run ends, whatever the worker says next. */
  verdict?: 'cancelled' | 'timed_out';
  escalation: NodeJS.Timeout[];
}

const idempotencyKeySchema = z.string().min(1).max(200);

export class Dispatcher {
  private readonly queue = new RunQueue();
  private readonly active = new Map<number, Active>();
  /** Runs handed to a fresh process that has not said hello yet. */
  private readonly starting = new Map<number, string>();
  private readonly perTask = new Map<string, number>();
  private readonly watchers = new Map<number, Set<(event: RunEvent) => void>>();
  private readonly workers: Workers;
  private readonly store: RunStore;
  private readonly settings: Readonly<FilledJobsOptions>;
  private readonly logger: pino.Logger;
  private delayTimer: NodeJS.Timeout | undefined;
  private depthScheduled = false;
  private closing = false;

  constructor(private readonly options: DispatcherOptions) {
    this.store = options.store;
    this.settings = options.settings;
    this.logger = options.logger ?? pino({ level: 'silent' });
    this.workers = new Workers(
      {
        socketPath: this.settings.socketPath,
        maxMessageBytes: this.settings.maxMessageBytes,
        workerExitWaitMs: this.settings.workerExitWaitMs,
        ...(options.killWorker && { killWorker: options.killWorker }),
        fresh: {
          taskModules: this.settings.taskModules,
          baseDir: this.settings.baseDir,
          maxResultBytes: this.settings.maxResultBytes,
          maxMessageBytes: this.settings.maxMessageBytes,
        },
      },
      {
        ready: (worker) => this.workerReady(worker),
        message: (worker, message) => this.workerMessage(worker, message),
        lost: (worker, exit, error) => this.workerLost(worker, exit, error),
        freshFailed: (runId, reason) => this.freshFailed(runId, reason),
      },
    );
  }

  /** Recovers the store after a stop or crash, then listens for task workers. */
  async start(): Promise<void> {
    const interrupted = this.store.markInterrupted(Date.now());
    for (const run of this.store.waiting()) {
      if (!this.options.tasks.has(run.task)) this.logger.warn({ runId: run.id, task: run.task }, 'queued run of an unknown task waits until the task is loaded');
      this.track(run);
    }
    for (const run of interrupted) {
      this.systemLog(run, 'warn', 'the run was cut off by a daemon stop');
      if (run.attempt < run.maxAttempts) this.retryLater(run, 'interrupted');
    }
    this.store.commit();
    await this.workers.listen();
    this.pump();
  }

  /**
   * Adds a run and resolves once its record is committed: the acknowledgement a caller may
   * rely on. The enqueues of one event-loop turn share one commit.
   */
  async enqueue(request: EnqueueRequest): Promise<{ run: RunRecord; created: boolean }> {
    const accepted = this.accept(request);
    await this.store.committed();
    return accepted;
  }

  /**
   * `enqueue` without waiting: the run is written in the current turn's transaction but not
   * durable yet, so tell no one outside this process about it before `store.committed()`.
   * For code in the jobs worker that needs the id at once (the scheduler).
   */
  accept(request: EnqueueRequest): { run: RunRecord; created: boolean } {
    if (this.closing) throw new KoboldError('KOBOLD_ERR_SERVICE_UNAVAILABLE', { reason: 'the job dispatcher is stopping' });
    const task = this.options.tasks.get(request.task);
    if (!task) throw new KoboldError('KOBOLD_ERR_JOBS_UNKNOWN_TASK', { task: String(request.task) });
    const args = request.args === undefined ? {} : request.args;
    const size = Buffer.byteLength(JSON.stringify(args) ?? '');
    if (size > this.settings.maxArgsBytes) {
      throw new KoboldError('KOBOLD_ERR_JOBS_ARGS_TOO_LARGE', { task: task.name, size, limit: this.settings.maxArgsBytes });
    }
    const parsed = task.args.safeParse(args);
    if (!parsed.success) throw new KoboldError('KOBOLD_ERR_JOBS_BAD_ARGS', { task: task.name, details: z.prettifyError(parsed.error) });
    const priority = request.priority ?? 0;
    if (!Number.isSafeInteger(priority)) throw badRequest('priority must be an integer');
    if (request.idempotencyKey !== undefined && !idempotencyKeySchema.safeParse(request.idempotencyKey).success) {
      throw badRequest('idempotencyKey must be a string of 1 to 200 characters');
    }
    const now = Date.now();
    const runAt = request.runAt ?? now + (request.delayMs ?? 0);
    if (!Number.isFinite(runAt)) throw badRequest('runAt must be a time in ms since the epoch, delayMs a number of ms');
    if (request.idempotencyKey !== undefined) {
      const existing = this.store.findByIdempotencyKey(request.idempotencyKey);
      if (existing) return { run: existing, created: false };
    }
    if (this.queue.size >= this.settings.maxQueued) {
      throw new KoboldError('KOBOLD_ERR_JOBS_QUEUE_FULL', { waiting: this.queue.size, limit: this.settings.maxQueued });
    }
    const result = this.store.insert({
      task: task.name,
      args,
      state: runAt > now ? 'delayed' : 'queued',
      maxAttempts: task.retries + 1,
      priority,
      runAt,
      trigger: request.trigger ?? 'code',
      createdAt: now,
      ...(request.idempotencyKey !== undefined && { idempotencyKey: request.idempotencyKey }),
    });
    if (result.created) {
      this.track(result.run);
      this.pump();
    }
    return result;
  }

  /**
   * Cancels a run. A waiting run is cancelled at once; a running one is aborted, and its
   * worker killed if it does not stop within the grace, so the returned record may still
   * say `running`: watch the run for the end.
   */
  cancel(id: number): RunRecord {
    const run = this.store.require(id);
    const active = this.active.get(id);
    if (active) {
      if (!active.verdict) this.abort(active, 'cancelled');
      return run;
    }
    if (run.state !== 'queued' && run.state !== 'delayed') {
      throw new KoboldError('KOBOLD_ERR_JOBS_BAD_TRANSITION', { id, from: run.state, to: 'cancelled' });
    }
    this.queue.remove(id);
    if (this.starting.has(id)) {
      this.release(id);
      const pid = this.workers.freshPidOf(id);
      if (pid !== undefined) this.workers.kill(pid, 'SIGKILL');
    }
    const cancelled = this.transition(id, 'cancelled', { finishedAt: Date.now(), error: errorOf(new KoboldError('KOBOLD_ERR_JOBS_CANCELLED', { id })) });
    this.depthChanged();
    return cancelled;
  }

  /** Runs a finished run again, with one more attempt. */
  retry(id: number): RunRecord {
    const run = this.store.require(id);
    if (run.state === 'succeeded' || !finishedStates.includes(run.state)) {
      throw new KoboldError('KOBOLD_ERR_JOBS_BAD_TRANSITION', { id, from: run.state, to: 'queued' });
    }
    const queued = this.transition(id, 'queued', { maxAttempts: Math.max(run.maxAttempts, run.attempt + 1), runAt: Date.now() });
    this.systemLog(queued, 'info', 'retry requested');
    this.track(queued);
    this.pump();
    return queued;
  }

  /** The supervisor reports every task worker's exit here, so a run it took down records why. */
  workerExited(pid: number, code: number | null, signal: string | null): void {
    this.workers.workerExited(pid, code, signal);
  }

  /**
   * Calls `listener` with the run's events. Call it right after reading the run's state
   * and lines from the store: nothing can happen in between, as all of this is synchronous.
   */
  subscribe(id: number, listener: (event: RunEvent) => void): () => void {
    let listeners = this.watchers.get(id);
    if (!listeners) this.watchers.set(id, (listeners = new Set()));
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0) this.watchers.delete(id);
    };
  }

  depth(): QueueDepth {
    let workers = 0;
    let freeSlots = 0;
    for (const worker of this.workers.all()) {
      if (worker.draining) continue;
      workers += 1;
      freeSlots += worker.capacity - worker.running.size;
    }
    return { ready: this.queue.readySize, delayed: this.queue.delayedSize, running: this.active.size + this.starting.size, workers, freeSlots };
  }

  /**
   * Stops taking runs, waits up to `drainTimeoutMs` for runs in progress, then lets go:
   * runs still going are recorded `running` and become `interrupted` at the next start.
   */
  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.delayTimer);
    const deadline = Date.now() + this.settings.drainTimeoutMs;
    while (this.active.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    for (const active of this.active.values()) {
      clearTimeout(active.timeout);
      active.escalation.forEach(clearTimeout);
    }
    this.active.clear();
    // Runs whose fresh process had not started stay queued in the store for the next start.
    this.starting.clear();
    await this.workers.close();
    this.store.commit();
  }

  // --- moving runs

  private track(run: RunRecord): void {
    const waiting: WaitingRun = { id: run.id, task: run.task, priority: run.priority, runAt: run.runAt };
    if (run.state === 'delayed') {
      this.queue.addDelayed(waiting);
      this.armDelayTimer();
    } else {
      this.queue.addReady(waiting);
    }
    this.depthChanged();
  }

  private pump(): void {
    if (this.closing) return;
    for (;;) {
      const next = this.queue.take((task) => this.canStart(task));
      if (!next) break;
      const task = this.options.tasks.get(next.task)!;
      this.perTask.set(task.name, (this.perTask.get(task.name) ?? 0) + 1);
      if (task.isolation === 'fresh') {
        this.starting.set(next.id, task.name);
        this.workers.forkFresh(next.id);
      } else {
        this.begin(next.id, this.pickWorker(task.name)!);
      }
    }
    this.depthChanged();
  }

  private canStart(taskName: string): boolean {
    const task = this.options.tasks.get(taskName);
    if (!task) return false;
    if (task.concurrency > 0 && (this.perTask.get(taskName) ?? 0) >= task.concurrency) return false;
    if (task.isolation === 'fresh') return this.workers.freshCount < this.settings.maxFreshProcesses;
    return this.pickWorker(taskName) !== undefined;
  }

  /** The pool worker with the most free room that has the task. */
  private pickWorker(taskName: string): WorkerSlot | undefined {
    let best: WorkerSlot | undefined;
    for (const worker of this.workers.all()) {
      if (worker.draining || worker.freshRunId !== undefined || !worker.tasks.has(taskName)) continue;
      const free = worker.capacity - worker.running.size;
      if (free > 0 && (!best || free > best.capacity - best.running.size)) best = worker;
    }
    return best;
  }

  private begin(id: number, worker: WorkerSlot): void {
    const previous = this.store.require(id);
    const run = this.transition(id, 'running', {
      attempt: previous.attempt + 1,
      startedAt: Date.now(),
      workerPid: worker.pid,
      finishedAt: null,
      durationMs: null,
      exitCode: null,
      exitSignal: null,
      error: null,
      result: null,
    });
    const task = this.options.tasks.get(run.task);
    const timeoutMs = task?.timeoutMs ?? this.settings.drainTimeoutMs;
    const active: Active = { run, task, worker, escalation: [], timeout: setTimeout(() => this.abort(active, 'timed_out'), timeoutMs) };
    this.active.set(id, active);
    worker.running.add(id);
    // Only a committed start may run: after a crash the store must say `running` for any run
    // that may have executed, so that it becomes `interrupted` rather than running again as new.
    const message = { kind: 'run', runId: id, task: run.task, args: run.args, attempt: run.attempt, timeoutMs } as const;
    this.store.afterCommit(() => worker.send(message));
  }

  /** Asks the task to stop; if it has not within the grace, TERM, then KILL its process. */
  private abort(active: Active, verdict: 'cancelled' | 'timed_out'): void {
    active.verdict = verdict;
    clearTimeout(active.timeout);
    const id = active.run.id;
    this.systemLog(active.run, 'warn', verdict === 'cancelled' ? 'cancel requested: aborting' : `timed out after ${active.task?.timeoutMs} ms: aborting`);
    active.worker.send({ kind: 'abort', runId: id, reason: verdict });
    const stillRunning = (): boolean => this.active.get(id) === active;
    active.escalation.push(
      setTimeout(() => {
        if (!stillRunning()) return;
        this.systemLog(active.run, 'warn', `the task did not stop within ${this.settings.abortGraceMs} ms: SIGTERM to worker ${active.worker.pid}`);
        this.workers.kill(active.worker.pid, 'SIGTERM');
        active.escalation.push(
          setTimeout(() => {
            if (!stillRunning()) return;
            this.systemLog(active.run, 'warn', `worker ${active.worker.pid} still alive after ${this.settings.killGraceMs} ms: SIGKILL`);
            this.workers.kill(active.worker.pid, 'SIGKILL');
          }, this.settings.killGraceMs),
        );
      }, this.settings.abortGraceMs),
    );
  }

  /** Records how a run's attempt ended and frees its slot. */
  private settle(id: number, outcome: { value: unknown } | { error: RunError; exit?: WorkerExit }, from?: WorkerSlot): void {
    const active = this.active.get(id);
    if (!active || (from && active.worker !== from)) return; // a late word about a run already settled
    this.active.delete(id);
    clearTimeout(active.timeout);
    active.escalation.forEach(clearTimeout);
    active.worker.running.delete(id);
    this.release(id, active.run.task);
    const now = Date.now();
    const exit = 'exit' in outcome && outcome.exit ? { exitCode: outcome.exit.code, exitSignal: outcome.exit.signal } : {};
    const timing = { finishedAt: now, durationMs: now - (active.run.startedAt ?? now), ...exit };
    if (active.verdict === 'cancelled') {
      this.transition(id, 'cancelled', { ...timing, error: errorOf(new KoboldError('KOBOLD_ERR_JOBS_CANCELLED', { id })) });
    } else if (active.verdict === 'timed_out') {
      const error = errorOf(new KoboldError('KOBOLD_ERR_JOBS_TIMEOUT', { id, timeoutMs: active.task?.timeoutMs }));
      this.attemptFailed(active.run, 'timed_out', { ...timing, error });
    } else if ('value' in outcome) {
      this.transition(id, 'succeeded', { ...timing, result: outcome.value });
    } else {
      this.attemptFailed(active.run, 'failed', { ...timing, error: outcome.error });
    }
    this.pump();
  }

  /** An attempt failed: retry after the backoff if attempts remain, or record the final state. */
  private attemptFailed(run: RunRecord, state: 'failed' | 'timed_out', patch: RunPatch): void {
    this.systemLog(run, 'warn', `attempt ${run.attempt} of ${run.maxAttempts} ${state === 'timed_out' ? 'timed out' : 'failed'}: ${patch.error?.message}`);
    if (run.attempt < run.maxAttempts) this.retryLater(run, 'running', patch);
    else this.transition(run.id, state, patch);
  }

  private retryLater(run: RunRecord, from: RunState, patch: RunPatch = {}): void {
    const task = this.options.tasks.get(run.task);
    const delayMs = task ? backoffDelayMs(task.backoff, run.attempt + 1) : 0;
    const runAt = Date.now() + delayMs;
    const next = this.transition(run.id, delayMs > 0 ? 'delayed' : 'queued', { ...patch, runAt }, [from]);
    this.systemLog(next, 'info', `retrying in ${delayMs} ms (attempt ${run.attempt + 1} of ${run.maxAttempts})`);
    this.track(next);
  }

  private release(id: number, task = this.starting.get(id)): void {
    this.starting.delete(id);
    if (task !== undefined) this.perTask.set(task, (this.perTask.get(task) ?? 1) - 1);
  }

  private armDelayTimer(): void {
    clearTimeout(this.delayTimer);
    const dueAt = this.queue.nextDueAt();
    if (dueAt === undefined || this.closing) return;
    // Timers cannot wait longer than ~24.8 days; wake up and look again.
    this.delayTimer = setTimeout(() => this.promoteDue(), Math.min(Math.max(0, dueAt - Date.now()), 2 ** 31 - 1));
    this.delayTimer.unref();
  }

  private promoteDue(): void {
    for (const due of this.queue.takeDue(Date.now())) {
      this.queue.addReady(due);
      this.transition(due.id, 'queued');
    }
    this.armDelayTimer();
    this.pump();
  }

  // --- worker events

  private workerReady(worker: WorkerSlot): void {
    if (worker.freshRunId === undefined) return this.pump();
    const id = worker.freshRunId;
    if (!this.starting.has(id)) return; // cancelled while the process started
    this.starting.delete(id);
    this.begin(id, worker);
  }

  private workerMessage(worker: WorkerSlot, message: FromWorker): void {
    if (message.kind === 'result' || message.kind === 'error') {
      this.settle(message.runId, message.kind === 'result' ? { value: message.value } : { error: message.error }, worker);
      return;
    }
    if (message.kind === 'draining') {
      worker.draining = true;
      this.depthChanged();
      return;
    }
    if (message.kind === 'hello') return;
    const active = this.active.get(message.runId);
    if (!active || active.worker !== worker) return; // a late word about a run already settled
    switch (message.kind) {
      case 'log': {
        const line = this.store.queueLog({ runId: message.runId, at: message.at, attempt: active.run.attempt, stream: message.stream, level: String(message.level), message: String(message.message) });
        this.emit(message.runId, { type: 'log', line });
        break;
      }
      case 'progress': {
        const progress = { percent: Number(message.percent), message: message.message };
        this.store.queueProgress(message.runId, progress);
        this.emit(message.runId, { type: 'progress', progress });
        break;
      }
    }
  }

  private workerLost(worker: WorkerSlot, exit: WorkerExit | undefined, protocolError?: KoboldError): void {
    for (const id of [...worker.running]) {
      const error = protocolError ? errorOf(protocolError) : errorOf(new KoboldError('KOBOLD_ERR_JOBS_WORKER_LOST', { pid: worker.pid, exit: describeExit(exit) }));
      this.settle(id, { error, ...(exit && { exit }) });
    }
    this.depthChanged();
    this.pump();
  }

  private freshFailed(runId: number, reason: string): void {
    if (!this.starting.has(runId)) return;
    this.release(runId);
    // It never ran: count the attempt anyway, or a module that cannot load would loop forever.
    const begun = this.transition(runId, 'running', { attempt: this.store.require(runId).attempt + 1, startedAt: Date.now() });
    this.attemptFailed(begun, 'failed', { finishedAt: Date.now(), durationMs: 0, error: { name: 'KoboldError', code: 'KOBOLD_ERR_JOBS_WORKER_LOST', message: reason } });
    this.pump();
  }

  // --- records and events

  private transition(id: number, to: RunState, patch?: RunPatch, from?: readonly RunState[]): RunRecord {
    const run = this.store.transition(id, to, patch, from);
    if (to !== 'running') this.store.forgetRun(id);
    this.emit(id, { type: 'state', run });
    return run;
  }

  private systemLog(run: RunRecord, level: string, message: string): void {
    const line = this.store.queueLog({ runId: run.id, at: Date.now(), attempt: run.attempt, stream: 'system', level, message });
    this.emit(run.id, { type: 'log', line });
  }

  /** Tells the run's current watchers, once what the event reports is committed. */
  private emit(id: number, event: RunEvent): void {
    const listeners = this.watchers.get(id);
    if (!listeners) return;
    const current = [...listeners];
    this.store.afterCommit(() => {
      for (const listener of current) {
        if (!listeners.has(listener)) continue; // unsubscribed meanwhile
        try {
          listener(event);
        } catch (error) {
          this.logger.error({ err: error, runId: id }, 'a run watcher threw');
        }
      }
    });
  }

  private depthChanged(): void {
    if (!this.options.onQueueDepth || this.depthScheduled) return;
    this.depthScheduled = true;
    setImmediate(() => {
      this.depthScheduled = false;
      this.options.onQueueDepth?.(this.depth());
    });
  }
}

function errorOf(error: KoboldError): RunError {
  return { name: error.name, code: error.code, message: error.message };
}

function badRequest(reason: string): KoboldError {
  return new KoboldError('KOBOLD_ERR_BAD_REQUEST', { reason });
}
