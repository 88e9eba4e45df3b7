/** Timers of one app instance; all are cleared when the worker drains, so no new work starts. */
export class DrainTimers {
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;

  setTimeout(fn: () => void, ms: number): NodeJS.Timeout {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    return this.track(timer);
  }

  setInterval(fn: () => void, ms: number): NodeJS.Timeout {
    return this.track(setInterval(fn, ms));
  }

  clear(timer: NodeJS.Timeout): void {
    clearTimeout(timer);
    this.timers.delete(timer);
  }

  stopAll(): void {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private track(timer: NodeJS.Timeout): NodeJS.Timeout {
    if (this.stopped) clearTimeout(timer); // draining: new timers never fire
    else this.timers.add(timer);
    return timer;
  }
}
