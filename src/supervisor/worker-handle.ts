import type { Worker } from 'node:cluster';
import type { Reply, ToWorker, WorkerMetrics } from '../ipc/messages.js';

type Request = Extract<ToWorker, { seq: number }>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
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
  /** It gave its work to its replacement: if that one fails, a fresh worker starts instead of this one serving on. */
  handedOver = false;
  /** Why the master ended it on purpose (recycle, scale-down, stop); null for a crash. */
  endReason: string | null = null;
  readonly ready: Promise<ReadyOutcome>;
  /** Resolves once the process has exited. */
  readonly exited: Promise<void>;
  private settleReady!: (outcome: ReadyOutcome) => void;
  private settleExited!: () => void;
  private killTimer: NodeJS.Timeout | undefined;
  private nextSeq = 1;
  private readonly pending = new Map<number, (reply: Reply) => void>();

  constructor(
    readonly id: number,
    readonly service: string,
    readonly slot: number,
    readonly restarts: number,
    readonly worker: Worker,
    /** maxRequests with this worker's jitter applied; 0 = no limit. */
    readonly requestLimit: number,
    readonly consoleSocket: string | null,
  ) {
    this.ready = new Promise((resolve) => {
      this.settleReady = resolve;
    });
    this.exited = new Promise((resolve) => {
      this.settleExited = resolve;
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

  /** Sends a request and resolves with the worker's reply (ok: false on timeout or exit). */
  request(message: DistributiveOmit<Request, 'seq'>, timeoutMs: number): Promise<Reply> {
    const seq = this.nextSeq++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.settle({ kind: 'reply', ack: seq, ok: false, error: `no reply within ${timeoutMs} ms` }), timeoutMs);
      this.pending.set(seq, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      this.send({ ...message, seq } as Request);
    });
  }

  /** Routes a reply to the request that carried its `ack`. */
  settle(reply: Reply): void {
    const resolve = this.pending.get(reply.ack);
    this.pending.delete(reply.ack);
    resolve?.(reply);
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
    for (const ack of [...this.pending.keys()]) this.settle({ kind: 'reply', ack, ok: false, error: 'the worker exited' });
    this.settleReady({ ok: false, reason: `exited with ${signal ?? `code ${code}`} before it was ready`, noRespawn: false });
    this.settleExited();
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
      consoleSocket: this.consoleSocket,
    };
  }
}
