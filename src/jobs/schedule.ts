// The pure part of schedules: checking a schedule and computing its fire times with
// croner. No timers and no store here, so config checks can call it without a daemon.

import { Cron } from 'croner';
import { KoboldError } from '../errors.js';

export interface ScheduleInput {
  cron: unknown;
  timezone?: unknown;
  overlap?: unknown;
  missed?: unknown;
}

const overlapPolicies = ['allow', 'forbid', 'replace'];
const missedPolicies = ['skip', 'run-once'];

/** Throws KOBOLD_ERR_JOBS_BAD_SCHEDULE naming the bad field; returns nothing when valid. */
export function validateSchedule(task: string, schedule: ScheduleInput): void {
  const fail = (field: string, reason: string): never => {
    throw new KoboldError('KOBOLD_ERR_JOBS_BAD_SCHEDULE', { task, field, reason });
  };
  if (typeof schedule !== 'object' || schedule === null) fail('(schedule)', 'must be an object');
  if (typeof schedule.cron !== 'string' || schedule.cron.trim() === '') fail('cron', 'must be a cron expression');
  if (schedule.timezone !== undefined) {
    if (typeof schedule.timezone !== 'string' || !isTimeZone(schedule.timezone)) {
      fail('timezone', `"${String(schedule.timezone)}" is not an IANA time zone`);
    }
  }
  if (schedule.overlap !== undefined && !overlapPolicies.includes(schedule.overlap as string)) {
    fail('overlap', `must be one of ${overlapPolicies.join(', ')}`);
  }
  if (schedule.missed !== undefined && !missedPolicies.includes(schedule.missed as string)) {
    fail('missed', `must be one of ${missedPolicies.join(', ')}`);
  }
  try {
    createCron(schedule.cron as string, schedule.timezone as string | undefined).nextRun();
  } catch (error) {
    fail('cron', `"${String(schedule.cron)}": ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** A croner pattern object used only to compute times; it never starts a timer itself. */
export function createCron(pattern: string, timezone?: string): Cron {
  return new Cron(pattern, { ...(timezone !== undefined && { timezone }), mode: '5-or-6-parts' });
}

/** Every fire time in (after, until], oldest first, at most `limit` of them. */
export function fireTimesBetween(cron: Cron, after: number, until: number, limit: number): number[] {
  const times: number[] = [];
  let cursor = new Date(after);
  while (times.length < limit) {
    const next = cron.nextRun(cursor);
    if (next === null || next.getTime() > until) break;
    times.push(next.getTime());
    cursor = next;
  }
  return times;
}

function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}
