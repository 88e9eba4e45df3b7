import type { LimitsConfig } from '../config/schema.js';
import type { WorkerMetrics } from '../ipc/messages.js';

export interface LimitInput {
  metrics: WorkerMetrics;
  startedAt: number;
  /** maxRequests with the worker's jitter applied (0 = none). */
  requestLimit: number;
  now: number;
}

/** The limit a worker has reached (the reason to recycle it), or null. */
export function reachedLimit(limits: LimitsConfig, input: LimitInput): string | null {
  const { metrics, now } = input;
  if (input.requestLimit > 0 && metrics.requests >= input.requestLimit) return `maxRequests (${metrics.requests} >= ${input.requestLimit})`;
  if (limits.maxMemoryMb > 0 && metrics.rss > limits.maxMemoryMb * 1024 * 1024) {
    return `maxMemoryMb (rss ${(metrics.rss / 1048576).toFixed(1)} MB > ${limits.maxMemoryMb} MB)`;
  }
  if (limits.maxIdleMs > 0 && metrics.inFlight === 0 && now - metrics.lastActiveAt >= limits.maxIdleMs) return `maxIdleMs (idle ${now - metrics.lastActiveAt} ms)`;
  if (limits.maxLifetimeMs > 0 && now - input.startedAt >= limits.maxLifetimeMs) return `maxLifetimeMs (up ${now - input.startedAt} ms)`;
  return null;
}

/** maxRequests plus a random 0..jitter, so workers started together do not all recycle together. */
export function requestLimitWithJitter(limits: LimitsConfig, random = Math.random): number {
  if (limits.maxRequests === 0) return 0;
  return limits.maxRequests + Math.floor(random() * (limits.maxRequestsJitter + 1));
}
