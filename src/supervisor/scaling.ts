import type { ScalingConfig, ScalingInput } from '../config/schema.js';

/** Event-loop utilization samples of one service over a sliding window. */
export class EluWindow {
  private samples: { at: number; elu: number }[] = [];

  add(elu: number, now = Date.now()): void {
    this.samples.push({ at: now, elu });
  }

  /** Mean over the window, or null until the window has been filled once. */
  mean(windowMs: number, now = Date.now()): number | null {
    this.samples = this.samples.filter((s) => now - s.at <= windowMs);
    const first = this.samples[0];
    if (first === undefined || now - first.at < windowMs * 0.8) return null;
    return this.samples.reduce((sum, s) => sum + s.elu, 0) / this.samples.length;
  }

  clear(): void {
    this.samples = [];
  }
}

/** The default policy: one more worker above the high mark, one fewer below the low mark. */
export function defaultScalingPolicy(config: ScalingConfig): (input: ScalingInput) => number {
  return (input) => {
    if (input.elu > config.highElu) return input.workers + 1;
    if (input.elu < config.lowElu) return input.workers - 1;
    return input.workers;
  };
}

/** The worker count to move to, kept within min/max whatever the policy answers. */
export function clampWorkers(wanted: number, min: number, max: number): number {
  if (!Number.isFinite(wanted)) return min;
  return Math.min(max, Math.max(min, Math.round(wanted)));
}
