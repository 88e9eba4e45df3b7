// Sizes the `tasks` pool from the dispatcher's queue: enough workers for the runs waiting
// and running, within min/max. It grows at once and shrinks only after the queue stayed
// short for a while, so a burst does not make workers come and go.

import type { QueueDepth } from './dispatcher.js';

export interface PoolBounds {
  minWorkers: number;
  maxWorkers: number;
  /** Runs each worker takes at once. */
  concurrency: number;
}

/** Workers wanted for this depth. */
export function wantedWorkers(depth: QueueDepth, bounds: PoolBounds): number {
  const busy = depth.ready + depth.running;
  return Math.min(bounds.maxWorkers, Math.max(bounds.minWorkers, Math.ceil(busy / bounds.concurrency)));
}

export class PoolScaler {
  private current: number;
  private shrinkTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly bounds: PoolBounds,
    private readonly scaleDownDelayMs: number,
    /** Asks the supervisor for this many workers. */
    private readonly scale: (workers: number) => void,
  ) {
    this.current = bounds.minWorkers;
  }

  update(depth: QueueDepth): void {
    const wanted = wantedWorkers(depth, this.bounds);
    if (wanted >= this.current) {
      clearTimeout(this.shrinkTimer);
      this.shrinkTimer = undefined;
      if (wanted > this.current) this.apply(wanted);
      return;
    }
    clearTimeout(this.shrinkTimer);
    this.shrinkTimer = setTimeout(() => this.apply(wanted), this.scaleDownDelayMs);
    this.shrinkTimer.unref();
  }

  stop(): void {
    clearTimeout(this.shrinkTimer);
  }

  private apply(workers: number): void {
    this.shrinkTimer = undefined;
    this.current = workers;
    this.scale(workers);
  }
}
