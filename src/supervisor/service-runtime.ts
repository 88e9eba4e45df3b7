import type { ServiceConfig } from '../config/schema.js';
import { CrashTracker } from './crash-tracker.js';
import { EluWindow } from './scaling.js';

/** The master's state of one service: its target worker count, crash history and load. */
export class ServiceRuntime {
  target: number;
  removed = false;
  restarts = 0;
  lastScaleAt = Date.now();
  readonly crashes: CrashTracker;
  readonly elu = new EluWindow();
  private readonly slotRestarts = new Map<number, number>();

  constructor(
    readonly name: string,
    public config: ServiceConfig,
  ) {
    this.target = config.workers;
    this.crashes = new CrashTracker(config.restart);
  }

  /** A reload: the config's worker count becomes the target again. */
  update(config: ServiceConfig): void {
    this.config = config;
    this.target = config.workers;
    this.crashes.update(config.restart);
    this.crashes.recordSurvivor(); // a reload is a fresh chance for a failing service
    this.elu.clear();
  }

  setTarget(target: number): void {
    this.target = target;
    this.lastScaleAt = Date.now();
    this.elu.clear();
  }

  recordRestart(slot: number): void {
    this.restarts += 1;
    this.slotRestarts.set(slot, this.restartsOf(slot) + 1);
  }

  restartsOf(slot: number): number {
    return this.slotRestarts.get(slot) ?? 0;
  }
}
