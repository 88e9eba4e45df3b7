// Fires scheduled tasks. Each fire time is leased in the store under a unique (task, fire
// time) key before anything is enqueued, so when several schedulers share the store only
// one of them fires it. The last leased fire time is what finds runs missed while the
// daemon was down.

import { hostname } from 'node:os';
import pino from 'pino';
import { describeError } from '../errors.js';
import type { Dispatcher } from './dispatcher.js';
import type { TaskRegistry } from './registry.js';
import { createCron } from './schedule.js';
import type { RunStore } from './store.js';
import type { Schedule, TaskDefinition } from './task.js';

export { validateSchedule } from './schedule.js';

export interface SchedulerOptions {
  store: RunStore;
  dispatcher: Dispatcher;
  tasks: TaskRegistry;
  /** Names this scheduler in the lease rows; host:pid by default. */
  owner?: string;
  logger?: pino.Logger;
}

/** What became of one fire time. */
export type FireOutcome =
  | { outcome: 'enqueued'; runId: number }
  /** Another scheduler leased this fire first. */
  | { outcome: 'taken' }
  /** `overlap: 'forbid'` and a run of the task was still queued or running. */
  | { outcome: 'skipped' }
  /** The enqueue was refused (a full queue...): recorded with the fire and logged. */
  | { outcome: 'failed'; reason: string };

type ScheduledTask = TaskDefinition & { schedule: Schedule };

export class Scheduler {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly owner: string;
  private readonly logger: pino.Logger;
  private running = false;

  constructor(private readonly options: SchedulerOptions) {
    this.owner = options.owner ?? `${hostname()}:${process.pid}`;
    this.logger = options.logger ?? pino({ level: 'silent' });
  }

  /** Fires what was missed while stopped (per each task's policy), then keeps time. */
  start(): void {
    this.running = true;
    const now = Date.now();
    for (const task of this.scheduledTasks()) {
      const cron = createCron(task.schedule.cron, task.schedule.timezone);
      const last = this.options.store.lastFireAt(task.name);
      if (last !== null && task.schedule.missed === 'run-once') {
        const latestMissed = cron.previousRuns(1, new Date(now))[0]?.getTime();
        if (latestMissed !== undefined && latestMissed > last) this.fire(task.name, latestMissed);
      }
      this.arm(task, cron.nextRun(new Date(now))?.getTime());
    }
  }

  stop(): void {
    this.running = false;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  /** Fires `task`'s schedule for the fire time `fireAt`: lease, overlap policy, enqueue. */
  fire(taskName: string, fireAt: number): FireOutcome {
    try {
      return this.fireNow(taskName, fireAt);
    } finally {
      // Other schedulers wait on the lease's write lock: release it now, not at the turn's end.
      this.options.store.commit();
    }
  }

  private fireNow(taskName: string, fireAt: number): FireOutcome {
    const task = this.options.tasks.get(taskName);
    const { store, dispatcher } = this.options;
    if (!task?.schedule) return { outcome: 'failed', reason: `task "${taskName}" has no schedule` };
    if (!store.leaseFire(task.name, fireAt, this.owner)) return { outcome: 'taken' };
    const active = store.list({ task: task.name, states: ['queued', 'delayed', 'running'], limit: 1000 });
    if (active.length > 0 && task.schedule.overlap === 'forbid') {
      store.recordFireOutcome(task.name, fireAt, null, 'skipped');
      this.logger.info({ task: task.name, fireAt: new Date(fireAt).toISOString(), active: active.map((run) => run.id) }, 'schedule skipped: a run is still active (overlap: forbid)');
      return { outcome: 'skipped' };
    }
    try {
      if (task.schedule.overlap === 'replace') for (const run of active) dispatcher.cancel(run.id);
      const { run } = dispatcher.accept({ task: task.name, args: {}, trigger: 'schedule', idempotencyKey: `schedule:${task.name}:${fireAt}` });
      store.recordFireOutcome(task.name, fireAt, run.id, 'enqueued');
      return { outcome: 'enqueued', runId: run.id };
    } catch (error) {
      const reason = describeError(error);
      store.recordFireOutcome(task.name, fireAt, null, `failed: ${reason}`);
      this.logger.error({ task: task.name, fireAt: new Date(fireAt).toISOString(), err: error }, 'scheduled run could not be enqueued');
      return { outcome: 'failed', reason };
    }
  }

  private scheduledTasks(): ScheduledTask[] {
    return [...this.options.tasks.values()].filter((task): task is ScheduledTask => task.schedule !== undefined);
  }

  private arm(task: ScheduledTask, fireAt: number | undefined): void {
    if (!this.running || fireAt === undefined) return;
    // Timers cannot wait longer than ~24.8 days: wake up early and look again.
    const delay = Math.min(Math.max(0, fireAt - Date.now()), 2 ** 31 - 1);
    const timer = setTimeout(() => {
      if (Date.now() < fireAt) return this.arm(task, fireAt);
      this.fire(task.name, fireAt);
      // Fire times passed while this process was too busy to wake are skipped, not stacked.
      const cron = createCron(task.schedule.cron, task.schedule.timezone);
      this.arm(task, cron.nextRun(new Date(Math.max(fireAt, Date.now())))?.getTime());
    }, delay);
    timer.unref();
    this.timers.set(task.name, timer);
  }
}
