import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { KoboldError } from '../errors.js';
import type { WorkerFeature } from '../worker/features.js';
import { SharedMutex, SharedSemaphore, type SemaphoreOptions } from './lock.js';
import { shmAvailable, unavailableReason } from './native.js';
import { SharedQueue, type QueueOptions } from './queue.js';
import { SharedRing, type RingOptions } from './ring.js';
import { unlinkSegment } from './segment.js';
import { SharedTable, type TableOptions, type TableSchema } from './table.js';

/**
 * `ctx.shm`: the shared-memory primitives under names private to this daemon, so every worker
 * of it (any service) that opens the same name shares one segment, and another daemon on the
 * machine does not. Segments live in /dev/shm until the daemon stops.
 */
export interface ShmApi {
  readonly available: boolean;
  /** Why shared memory is unavailable (the addon did not build or load), or null. */
  readonly unavailableReason: string | null;
  /** A ring with one writer (call `.writer()` in one process) and readers anywhere. */
  ring(name: string, options: Omit<RingOptions, 'addonPath'>): SharedRing;
  table<S extends TableSchema>(name: string, options: TableOptions<S>): SharedTable<S>;
  mutex(name: string): SharedMutex;
  semaphore(name: string, options: SemaphoreOptions): SharedSemaphore;
  queue(name: string, options: QueueOptions): SharedQueue;
}

const NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/i;

/** The prefix of every segment of the daemon whose run dir is `runDir`. */
export function segmentPrefix(runDir: string): string {
  return `kobold.${createHash('sha256').update(runDir).digest('hex').slice(0, 12)}.`;
}

export function createShmApi(runDir: string): ShmApi {
  const prefix = segmentPrefix(runDir);
  const available = shmAvailable();
  const segment = (kind: string, name: string) => {
    if (!available) throw new KoboldError('KOBOLD_ERR_SHM_UNAVAILABLE', { reason: unavailableReason() });
    if (!NAME.test(name)) throw new KoboldError('KOBOLD_ERR_SHM_OPTION', { option: `${kind} name "${name}"`, reason: 'use 1-64 letters, digits, "-" or "_"' });
    return `${prefix}${kind}.${name}`;
  };
  return {
    available,
    unavailableReason: available ? null : unavailableReason(),
    ring: (name, options) => SharedRing.create(segment('ring', name), options),
    table: (name, options) => SharedTable.create(segment('table', name), options),
    mutex: (name) => SharedMutex.open(segment('mutex', name)),
    semaphore: (name, options) => SharedSemaphore.open(segment('semaphore', name), options),
    queue: (name, options) => SharedQueue.create(segment('queue', name), options),
  };
}

/** Removes every /dev/shm segment of the daemon (at stop); returns how many. */
export function removeDaemonSegments(runDir: string): number {
  const prefix = segmentPrefix(runDir);
  let removed = 0;
  let names: string[];
  try {
    names = readdirSync('/dev/shm');
  } catch {
    return 0; // no /dev/shm here: nothing was created
  }
  for (const name of names) if (name.startsWith(prefix) && unlinkSegment(name)) removed += 1;
  return removed;
}

export const shmFeature: WorkerFeature = {
  name: 'shm',
  start: async ({ boot }) => ({ context: { shm: createShmApi(boot.runDir) } }),
};
