// Flood control: a token bucket per user. `FloodLimiter` is what the chat asks; this file's
// `FloodControl` keeps the buckets in this worker (the fallback without shared memory),
// shared-flood.ts keeps them in shared memory for every worker of the daemon.

export interface FloodLimiter {
  readonly ratePerSecond: number;
  readonly burst: number;
  /** Takes one token for `userId`; false when the user is over the limit. */
  take(userId: string): boolean;
  /** Forgets buckets that have refilled (a full bucket is the same as none). */
  sweep(): void;
}

interface Bucket {
  tokens: number;
  last: number;
}

/** Buckets in this worker only: a user whose requests reach N workers gets N× the rate. */
export class FloodControl implements FloodLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  take(userId: string): boolean {
    const now = this.now();
    const bucket = this.buckets.get(userId);
    if (bucket === undefined) {
      this.buckets.set(userId, { tokens: this.burst - 1, last: now });
      return true;
    }
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.last) / 1000) * this.ratePerSecond);
    bucket.last = now;
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  sweep(): void {
    const now = this.now();
    const refillMs = (this.burst / this.ratePerSecond) * 1000;
    for (const [userId, bucket] of this.buckets) if (now - bucket.last >= refillMs) this.buckets.delete(userId);
  }

  get size(): number {
    return this.buckets.size;
  }
}
