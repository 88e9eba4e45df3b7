// Flood control: one token bucket per user in this worker. A full bucket is the same as no
// bucket, so idle users cost nothing: their buckets are dropped by `sweep`.

interface Bucket {
  tokens: number;
  last: number;
}

export class FloodControl {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Takes one token for `userId`; false when the user is over the limit. */
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

  /** Forgets buckets that have refilled. */
  sweep(): void {
    const now = this.now();
    const refillMs = (this.burst / this.ratePerSecond) * 1000;
    for (const [userId, bucket] of this.buckets) if (now - bucket.last >= refillMs) this.buckets.delete(userId);
  }

  get size(): number {
    return this.buckets.size;
  }
}
