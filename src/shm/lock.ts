// Cross-process locks over shared memory. A lock word holds its holder's pid (0 = free)
// plus a "waiters" bit, so a release only makes a futex syscall when someone sleeps, and
// a waiter that sleeps a whole slice without a release checks whether the holder still
// lives: a lock whose holder died is taken over instead of blocking forever.
import { KoboldError } from '../errors.js';
import type { ShmNative } from './native.js';
import { WaitResult } from './native.js';
import { checkInteger, isProcessAlive, openStructure, requireNative, type SegmentName, type SegmentOptions } from './segment.js';

const WAITERS = 0x40000000;
const PID_MASK = 0x3fffffff;
/** A waiter checks the holder's pid after sleeping this long without a release. */
const SLICE_MS = 50;

const ACQUIRED = -1;
const RECOVERED = -2;
const RETRY = -3;

/**
 * One attempt at a lock word. Returns ACQUIRED, RECOVERED (taken from a dead holder),
 * RETRY (the word changed under us), or the word's value to futex-wait on.
 */
function attempt(view: Int32Array, index: number, pid: number, contended: boolean, checkHolder: boolean): number {
  const value = Atomics.load(view, index);
  if (value === 0) return Atomics.compareExchange(view, index, 0, contended ? pid | WAITERS : pid) === 0 ? ACQUIRED : RETRY;
  if (checkHolder && !isProcessAlive(value & PID_MASK)) {
    return Atomics.compareExchange(view, index, value, pid | WAITERS) === value ? RECOVERED : RETRY;
  }
  if ((value & WAITERS) === 0 && Atomics.compareExchange(view, index, value, value | WAITERS) !== value) return RETRY;
  return value | WAITERS;
}

/**
 * Takes the lock word at view[index] for this process, sleeping in short slices while it is
 * held. For the short critical sections of tables and queues only: it blocks the thread.
 * Returns true when it was taken from a dead holder (what it guards may be half-written).
 */
export function lockWord(native: ShmNative, view: Int32Array, index: number): boolean {
  const pid = process.pid;
  if (Atomics.compareExchange(view, index, 0, pid) === 0) return false;
  let contended = false;
  let checkHolder = false;
  for (;;) {
    const outcome = attempt(view, index, pid, contended, checkHolder);
    if (outcome === ACQUIRED) return false;
    if (outcome === RECOVERED) return true;
    if (outcome === RETRY) continue;
    const result = native.wait(view.buffer as ArrayBuffer, view.byteOffset + index * 4, outcome, SLICE_MS);
    contended = true;
    checkHolder = result === WaitResult.TimedOut;
  }
}

/** Frees a lock word taken with lockWord() and wakes one sleeper if there is one. */
export function unlockWord(native: ShmNative, view: Int32Array, index: number): void {
  if ((Atomics.exchange(view, index, 0) & WAITERS) !== 0) native.wake(view.buffer as ArrayBuffer, view.byteOffset + index * 4, 1);
}

export interface AcquireOptions {
  /** Give up (reject with KOBOLD_ERR_SHM_LOCK_TIMEOUT) after this long. Default: wait forever. */
  timeoutMs?: number;
}

export interface LockOptions extends SegmentOptions {
  /** Create the segment when it does not exist. Default true. */
  create?: boolean;
}

// --- SharedMutex: header [0 magic][4 version][8 lock word][12 recoveries]
const MUTEX = { label: 'mutex', magic: 0x4b424d58, version: 1 } as const;
const M_LOCK = 2;
const M_RECOVERIES = 3;

/** A mutex shared by every process that opens the same name; recovers from a dead holder. */
export class SharedMutex {
  /** True when the last acquisition took the lock from a holder that had died. */
  recovered = false;
  readonly #name: string;
  readonly #native: ShmNative;
  readonly #view: Int32Array;

  private constructor(name: string, native: ShmNative, buffer: ArrayBuffer) {
    this.#name = name;
    this.#native = native;
    this.#view = new Int32Array(buffer, 0, 4);
  }

  static open(name: SegmentName, options: LockOptions = {}): SharedMutex {
    const create = options.create === false ? undefined : {
      size: 16,
      init(buffer: ArrayBuffer) {
        const view = new Int32Array(buffer);
        view[1] = MUTEX.version;
        Atomics.store(view, 0, MUTEX.magic);
      },
    };
    return new SharedMutex(name, requireNative(options), openStructure(name, MUTEX, create, options));
  }

  /** The holder's pid, 0 when free. */
  get holder(): number {
    return Atomics.load(this.#view, M_LOCK) & PID_MASK;
  }

  /** How many times, ever, the lock was taken from a dead holder. */
  get recoveries(): number {
    return Atomics.load(this.#view, M_RECOVERIES);
  }

  /** Takes the lock if it is free (or its holder died); never waits. */
  tryAcquire(): boolean {
    for (;;) {
      const outcome = attempt(this.#view, M_LOCK, process.pid, false, true);
      if (outcome === RETRY) continue;
      return this.#settle(outcome);
    }
  }

  /** Waits for the lock without blocking the event loop. */
  async acquire(options: AcquireOptions = {}): Promise<void> {
    const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    let contended = false;
    let checkHolder = false;
    for (;;) {
      const outcome = attempt(this.#view, M_LOCK, process.pid, contended, checkHolder);
      if (outcome === RETRY) continue;
      if (this.#settle(outcome)) return;
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new KoboldError('KOBOLD_ERR_SHM_LOCK_TIMEOUT', { kind: 'mutex', segment: this.#name, timeoutMs: options.timeoutMs });
      const slice = Math.min(SLICE_MS, remaining);
      const result = await this.#native.waitAsync(this.#view.buffer as ArrayBuffer, M_LOCK * 4, outcome, slice);
      contended = true;
      checkHolder = result === WaitResult.TimedOut && slice === SLICE_MS;
    }
  }

  /** Frees the lock; throws KOBOLD_ERR_SHM_LOCK_NOT_HELD when this process does not hold it. */
  release(): void {
    if (this.holder !== process.pid) throw new KoboldError('KOBOLD_ERR_SHM_LOCK_NOT_HELD', { kind: 'mutex', segment: this.#name });
    unlockWord(this.#native, this.#view, M_LOCK);
  }

  /** Runs fn holding the lock, releasing it however fn ends. */
  async withLock<T>(fn: () => T | Promise<T>, options: AcquireOptions = {}): Promise<T> {
    await this.acquire(options);
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  #settle(outcome: number): boolean {
    if (outcome !== ACQUIRED && outcome !== RECOVERED) return false;
    this.recovered = outcome === RECOVERED;
    if (this.recovered) Atomics.add(this.#view, M_RECOVERIES, 1);
    return true;
  }
}

// --- SharedSemaphore: header [0 magic][4 version][8 permits][12 releases][16 sleepers][20..32 reserved]
// then one int32 slot per permit holding the pid that holds it (0 = free).
const SEMAPHORE = { label: 'semaphore', magic: 0x4b425346, version: 1 } as const;
const S_PERMITS = 2;
const S_RELEASES = 3;
const S_SLEEPERS = 4;
const S_SLOTS = 8;
const MAX_PERMITS = 4096;

export interface SemaphoreOptions extends LockOptions {
  /** Permits of a new semaphore (1-4096). Ignored when it exists. Default 1. */
  permits?: number;
}

/**
 * A counting semaphore shared across processes. Each permit records its holder's pid, so
 * permits held by a process that died are reclaimed by the next process that waits.
 */
export class SharedSemaphore {
  readonly #name: string;
  readonly #native: ShmNative;
  readonly #view: Int32Array;
  readonly #permits: number;

  private constructor(name: string, native: ShmNative, buffer: ArrayBuffer) {
    this.#name = name;
    this.#native = native;
    this.#permits = new Int32Array(buffer, 0, S_SLOTS)[S_PERMITS];
    this.#view = new Int32Array(buffer, 0, S_SLOTS + this.#permits);
  }

  static open(name: SegmentName, options: SemaphoreOptions = {}): SharedSemaphore {
    const permits = checkInteger('permits', options.permits ?? 1, 1, MAX_PERMITS);
    const create = options.create === false ? undefined : {
      size: (S_SLOTS + permits) * 4,
      init(buffer: ArrayBuffer) {
        const view = new Int32Array(buffer);
        view[1] = SEMAPHORE.version;
        view[S_PERMITS] = permits;
        Atomics.store(view, 0, SEMAPHORE.magic);
      },
    };
    return new SharedSemaphore(name, requireNative(options), openStructure(name, SEMAPHORE, create, options));
  }

  get permits(): number {
    return this.#permits;
  }

  /** Permits free right now (a snapshot). */
  get available(): number {
    let free = 0;
    for (let slot = 0; slot < this.#permits; slot++) if (Atomics.load(this.#view, S_SLOTS + slot) === 0) free++;
    return free;
  }

  /** Takes a permit if one is free (or held by a dead process); never waits. */
  tryAcquire(): boolean {
    return this.#takeFree() || this.#takeFromDead();
  }

  /** Waits for a permit without blocking the event loop. */
  async acquire(options: AcquireOptions = {}): Promise<void> {
    const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    const buffer = this.#view.buffer as ArrayBuffer;
    for (;;) {
      const releases = Atomics.load(this.#view, S_RELEASES);
      if (this.#takeFree()) return;
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new KoboldError('KOBOLD_ERR_SHM_LOCK_TIMEOUT', { kind: 'semaphore', segment: this.#name, timeoutMs: options.timeoutMs });
      const slice = Math.min(SLICE_MS, remaining);
      Atomics.add(this.#view, S_SLEEPERS, 1);
      const result = await this.#native.waitAsync(buffer, S_RELEASES * 4, releases, slice);
      Atomics.sub(this.#view, S_SLEEPERS, 1);
      if (result === WaitResult.TimedOut && slice === SLICE_MS && this.#takeFromDead()) return;
    }
  }

  /** Returns one permit held by this process; throws KOBOLD_ERR_SHM_LOCK_NOT_HELD when it holds none. */
  release(): void {
    const pid = process.pid;
    for (let slot = 0; slot < this.#permits; slot++) {
      if (Atomics.compareExchange(this.#view, S_SLOTS + slot, pid, 0) === pid) {
        Atomics.add(this.#view, S_RELEASES, 1);
        if (Atomics.load(this.#view, S_SLEEPERS) > 0) this.#native.wake(this.#view.buffer as ArrayBuffer, S_RELEASES * 4, 1);
        return;
      }
    }
    throw new KoboldError('KOBOLD_ERR_SHM_LOCK_NOT_HELD', { kind: 'semaphore', segment: this.#name });
  }

  /** Runs fn holding a permit, returning it however fn ends. */
  async withPermit<T>(fn: () => T | Promise<T>, options: AcquireOptions = {}): Promise<T> {
    await this.acquire(options);
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  #takeFree(): boolean {
    const pid = process.pid;
    for (let slot = 0; slot < this.#permits; slot++) {
      if (Atomics.load(this.#view, S_SLOTS + slot) === 0 && Atomics.compareExchange(this.#view, S_SLOTS + slot, 0, pid) === 0) return true;
    }
    return false;
  }

  #takeFromDead(): boolean {
    const pid = process.pid;
    for (let slot = 0; slot < this.#permits; slot++) {
      const holder = Atomics.load(this.#view, S_SLOTS + slot);
      if (holder !== 0 && !isProcessAlive(holder) && Atomics.compareExchange(this.#view, S_SLOTS + slot, holder, pid) === holder) return true;
    }
    return false;
  }
}
