import type { RestartConfig } from '../config/schema.js';

/**
 * Restart policy of one service: exponential backoff between restarts, and "failing" once
 * `crashLimit` workers crashed within `crashWindowMs` of starting — then restarts slow to
 * one per `backoffMaxMs` instead of a restart storm, until a worker survives the window.
 */
export class CrashTracker {
  private earlyCrashes: number[] = [];
  private consecutive = 0;
  failing: string | null = null;

  constructor(private config: RestartConfig) {}

  update(config: RestartConfig): void {
    this.config = config;
  }

  /** Records a crash; returns the delay before the replacement starts. */
  recordCrash(uptimeMs: number, reason: string, now = Date.now()): number {
    if (uptimeMs < this.config.crashWindowMs) {
      this.earlyCrashes = this.earlyCrashes.filter((t) => now - t < this.config.crashWindowMs);
      this.earlyCrashes.push(now);
      if (this.earlyCrashes.length >= this.config.crashLimit) {
        this.failing = `${this.earlyCrashes.length} workers crashed within ${this.config.crashWindowMs} ms of starting (last: ${reason})`;
      }
    } else {
      this.consecutive = 0; // it ran long enough: start the backoff over
    }
    if (this.failing !== null) return this.config.backoffMaxMs;
    const delay = Math.min(this.config.backoffMaxMs, this.config.backoffInitialMs * 2 ** this.consecutive);
    this.consecutive += 1;
    return delay;
  }

  /** A worker stayed up past the crash window: the service is healthy again. */
  recordSurvivor(): void {
    this.consecutive = 0;
    this.earlyCrashes = [];
    this.failing = null;
  }

  /** The error will not go away by itself (bad app, bad config): stop restarting. */
  markPermanent(reason: string): void {
    this.failing = reason;
  }
}
