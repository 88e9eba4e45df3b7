import type { Worker } from 'node:cluster';
import type { ToWorker, WorkerMetrics } from '../ipc/messages.js';
import type { WorkerStateName, WorkerStatus } from '../ipc/control.js';

export type ReadyOutcome = { ok: true } | { ok: false; reason: string; noRespawn: boolean };

/** The master's record of one worker process. */
export class WorkerHandle {
  state: WorkerStateName = 'starting';
  readonly startedAt = Date.now();
  lastHeartbeatAt = Date.now();
  metrics: WorkerMetrics | null = null;
  /** Set while a replacement is starting, so a limit cannot trigger twice. */
  replacing = false;
  /** Why the master ended it on purpose (recycle, scale-down, stop); null for a crash. */
  endReason: string | null = null;
  readonly ready: Promise<ReadyOutcome>;
  private settleReady!: (outcome: ReadyOutcome) => void;
  private killTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly id: number,
    readonly service: string,
    readonly slot: number,
    readonly restarts: number,
    readonly worker: Worker,
    /** maxRequests with this worker's jitter applied; 0 = no limit. */
    readonly requestLimit: number,
  ) {
    this.ready = new Promise((resolve) => {
      this.settleReady = resolve;
    });
  }

  get pid(): number {
    return this.worker.process.pid ?? 0;
  }

  /** Counts toward the service's worker count (draining ones are on their way out). */
  get active(): boolean {
    return this.state === 'starting' || this.state === 'ready';
  }

  send(message: ToWorker): void {
    if (this.worker.isConnected()) this.worker.send(message);
  }

  markReady(): void {
    this.state = 'ready';
    this.settleReady({ ok: true });
  }

  markStartFailed(reason: string, noRespawn: boolean): void {
    this.settleReady({ ok: false, reason, noRespawn });
  }

  /** Asks the worker to drain; kills it if it has not exited after `timeoutMs`. */
  drain(reason: string, timeoutMs: number): void {
    if (this.state === 'draining' || this.state === 'exited') return;
    this.state = 'draining';
    this.endReason = reason;
    this.send({ kind: 'drain', timeoutMs });
    this.killAfter(timeoutMs);
  }

  /** Sends a signal. Unlike drain, this is not a planned end: the exit counts as a crash. */
  kill(signal: NodeJS.Signals): void {
    try {
      this.worker.process.kill(signal);
    } catch {
      // already gone
    }
  }

  /** SIGKILL unless the process exits first. */
  killAfter(timeoutMs: number): void {
    clearTimeout(this.killTimer);
    this.killTimer = setTimeout(() => this.kill('SIGKILL'), timeoutMs);
    this.killTimer.unref();
  }

  markExited(code: number | null, signal: string | null): void {
    clearTimeout(this.killTimer);
    this.state = 'exited';
    this.settleReady({ ok: false, reason: `exited with ${signal ?? `code ${code}`} before it was ready`, noRespawn: false });
  }

  status(now = Date.now()): WorkerStatus {
    const m = this.metrics;
    return {
      id: this.id,
      pid: this.pid,
      service: this.service,
      slot: this.slot,
      state: this.state,
      busy: (m?.inFlight ?? 0) > 0,
      uptimeMs: now - this.startedAt,
      rss: m?.rss ?? 0,
      requests: m?.requests ?? 0,
      connections: m?.connections ?? 0,
      elu: m?.elu ?? 0,
      restarts: this.restarts,
    };
  }
}
