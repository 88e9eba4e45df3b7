import type { ToMaster } from '../ipc/messages.js';

export interface WorkerExit {
  service: string;
  pid: number;
  code: number | null;
  signal: string | null;
}

/** What a worker may ask of the master: `ctx.supervisor` in apps. */
export class SupervisorLink {
  private readonly exitListeners = new Map<string, Set<(exit: WorkerExit) => void>>();

  constructor(private readonly send: (message: ToMaster) => void) {}

  /** Asks for `workers` workers in `service` (the master keeps it within min/max). */
  scale(service: string, workers: number): void {
    this.send({ kind: 'scale', service, workers });
  }

  /** Asks to be replaced gracefully (a run limit reached): this worker is drained once its successor is ready. */
  recycle(reason: string): void {
    this.send({ kind: 'recycle', reason });
  }

  /**
   * Tells the master this worker has given its work to its replacement (e.g. the hub writer
   * its log): should the replacement fail to start, the master then drains this worker and
   * starts a fresh one, instead of keeping one that can no longer serve.
   */
  handedOver(): void {
    this.send({ kind: 'handed-over' });
  }

  /** Calls `listener` whenever a worker of `service` exits; returns a function that stops it. */
  onWorkerExit(service: string, listener: (exit: WorkerExit) => void): () => void {
    let listeners = this.exitListeners.get(service);
    if (listeners === undefined) {
      listeners = new Set();
      this.exitListeners.set(service, listeners);
      this.send({ kind: 'watch-exits', service });
    }
    listeners.add(listener);
    return () => listeners.delete(listener);
  }

  /** Called by the runtime for each `worker-exit` message. */
  workerExited(exit: WorkerExit): void {
    for (const listener of this.exitListeners.get(exit.service) ?? []) listener(exit);
  }
}
