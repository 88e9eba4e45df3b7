// What a worker read from the chat's SQLite file (rooms, private-room members, sanctions),
// kept until any worker changes any of it. The change counter lives in shared memory: a
// writer bumps it after its SQLite write, a reader compares it (one shared-memory read)
// before using what it kept. Without shared memory there is no cache: every read goes to
// SQLite, as every worker then sees the other workers' writes at once.
import type { ShmApi } from '../../shm/app-api.js';

/** A counter shared by every worker of the daemon. */
export interface ChangeCounter {
  read(): number;
  bump(): void;
}

/** Entries kept per worker; the cache starts over when it reaches this size. */
const MAX_ENTRIES = 50_000;

export class ReadCache {
  private readonly entries = new Map<string, unknown>();
  private seen: number;

  constructor(private readonly counter: ChangeCounter) {
    this.seen = counter.read();
  }

  /** The kept value for `key`, else `load()`'s (kept). Read the counter before SQLite, so a write racing the load is seen next time. */
  get<T>(key: string, load: () => T): T {
    const now = this.counter.read();
    if (now !== this.seen) {
      this.entries.clear();
      this.seen = now;
    }
    if (this.entries.has(key)) return this.entries.get(key) as T;
    const value = load();
    if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
    this.entries.set(key, value);
    return value;
  }

  /** After a write to SQLite: every worker (this one too) drops what it kept. */
  changed(): void {
    this.counter.bump();
  }
}

/** The chat instance's change counter in shared memory, or undefined without it. */
export function sharedChangeCounter(shm: ShmApi | undefined, instance: string, warn: (message: string) => void): ChangeCounter | undefined {
  if (shm === undefined || !shm.available) return undefined;
  try {
    const table = shm.table(`${instance.slice(0, 40)}-changes`, { capacity: 1, keyMaxBytes: 8, columns: { count: { type: 'int' } } });
    return { read: () => table.getValue('all', 'count') ?? 0, bump: () => void table.increment('all', 'count') };
  } catch (error) {
    warn(`chat: the shared change counter could not be opened (${(error as Error).message}): rooms, members and sanctions are read from SQLite on each request`);
    return undefined;
  }
}
