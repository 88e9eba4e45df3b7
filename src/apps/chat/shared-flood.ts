// Flood control shared by every web worker: one bucket per user in a SharedTable, so a
// user whose requests reach several workers still gets the configured rate in total.
//
// The bucket is kept as GCRA's "theoretical arrival time" (TAT, µs): the time at which
// the bucket would be full again. A take is allowed when TAT − now ≤ (burst − 1) × interval,
// and moves TAT to max(TAT, now) + interval. The table only offers atomic increments, so
// a take adds what it expects to add (catching an idle TAT up to now, plus one interval),
// then reads from the increment's result what the cell held just before it — whatever
// other workers did meanwhile — and corrects its own contribution with a second
// increment. Increments commute, so concurrent takes never lose each other's tokens: the
// total stays within the rate. (In a race of three takes on one user within microseconds,
// one may be refused while another's correction is in flight: stricter, never looser.)
//
// Capacity is fixed. Rows whose TAT has passed are full buckets, the same as no row, and
// `sweep` deletes them. When the table is still full, the users without a row fall back
// to this worker's own buckets (logged once), rather than being refused or let through.
import type { ShmApi } from '../../shm/app-api.js';
import type { SharedTable } from '../../shm/table.js';
import { FloodControl, type FloodLimiter } from './flood.js';

const COLUMNS = { tat: { type: 'int' } } as const;
type FloodTable = SharedTable<typeof COLUMNS>;

/** User ids are at most 128 characters (identity.ts). */
const KEY_MAX_BYTES = 128;
/** A full table is swept at most this often before overflowing users go to local buckets. */
const FULL_SWEEP_INTERVAL_MS = 1000;

/** Microseconds on the wall clock, comparable across the daemon's processes. */
const wallClockUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);

export class SharedFloodControl implements FloodLimiter {
  private readonly intervalUs: number;
  private readonly toleranceUs: number;
  private lastFullSweep = -Infinity;
  private reportedFull = false;

  constructor(
    private readonly table: FloodTable,
    readonly ratePerSecond: number,
    readonly burst: number,
    /** Users the table has no room for. */
    private readonly overflow: FloodLimiter,
    private readonly onFull: () => void,
    private readonly now: () => number = wallClockUs,
  ) {
    this.intervalUs = Math.max(1, Math.round(1e6 / ratePerSecond));
    this.toleranceUs = (burst - 1) * this.intervalUs;
  }

  take(userId: string): boolean {
    const now = this.now();
    const read = this.table.getValue(userId, 'tat') ?? 0;
    if (read - now > this.toleranceUs) return false; // over the limit: nothing to write
    const catchUp = read < now ? now - read : 0;
    const added = catchUp + this.intervalUs;
    const value = this.increment(userId, added);
    if (value === undefined) return this.overflow.take(userId);
    // What the cell held just before our increment, as of now; then what it should hold after this take.
    const start = Math.max(value - added, now);
    const allowed = start - now <= this.toleranceUs;
    const correction = value - (allowed ? start + this.intervalUs : start);
    if (correction !== 0) this.table.increment(userId, 'tat', -correction);
    return allowed;
  }

  sweep(): void {
    const now = this.now();
    for (const [userId, row] of this.table.entries()) if (row.tat <= now) this.table.delete(userId);
    this.overflow.sweep();
  }

  /** Rows in use (a snapshot). */
  get size(): number {
    return this.table.size;
  }

  /** The cell's new value, or undefined when the table has no room for this user. */
  private increment(userId: string, by: number): number | undefined {
    try {
      return this.table.increment(userId, 'tat', by);
    } catch (error) {
      if ((error as { code?: string }).code !== 'KOBOLD_ERR_SHM_TABLE_FULL') throw error;
    }
    const now = performance.now();
    if (now - this.lastFullSweep >= FULL_SWEEP_INTERVAL_MS) {
      this.lastFullSweep = now;
      this.sweep();
      try {
        return this.table.increment(userId, 'tat', by);
      } catch (error) {
        if ((error as { code?: string }).code !== 'KOBOLD_ERR_SHM_TABLE_FULL') throw error;
      }
    }
    if (!this.reportedFull) {
      this.reportedFull = true;
      this.onFull();
    }
    return undefined;
  }
}

export interface FloodOptions {
  ratePerSecond: number;
  burst: number;
  /** Rows of the shared table: users that sent within the last minute or so. */
  trackedUsers: number;
}

/**
 * The chat's flood control: shared by every worker when shared memory works, else this
 * worker's own buckets. `warn` is called once per worker with the reason for any fallback.
 */
export function createFloodLimiter(shm: ShmApi | undefined, instance: string, options: FloodOptions, warn: (message: string) => void): FloodLimiter {
  const local = new FloodControl(options.ratePerSecond, options.burst);
  const perWorker = 'flood control is per worker (a user whose requests reach N workers may send N× the rate)';
  if (shm === undefined || !shm.available) {
    warn(`chat: shared memory is unavailable (${shm?.unavailableReason ?? 'not provided'}): ${perWorker}`);
    return local;
  }
  // The capacity is part of the name: a changed config gets a new table instead of a layout error.
  const name = `${instance.slice(0, 40)}-flood-${options.trackedUsers}`;
  let table: FloodTable;
  try {
    table = shm.table(name, { capacity: options.trackedUsers, keyMaxBytes: KEY_MAX_BYTES, columns: COLUMNS });
  } catch (error) {
    warn(`chat: the shared flood table could not be opened (${(error as Error).message}): ${perWorker}`);
    return local;
  }
  return new SharedFloodControl(table, options.ratePerSecond, options.burst, local, () => {
    warn(`chat: the shared flood table is full (${options.trackedUsers} users, flood.trackedUsers): users beyond it get per-worker buckets`);
  });
}
