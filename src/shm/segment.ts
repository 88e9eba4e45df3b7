// Named shared-memory segments and the header convention every structure on them shares:
// word 0 holds a magic number, word 1 the layout version. A segment is created and its
// header written under an exclusive flock, magic last, so no process ever sees half a header.
import { KoboldError } from '../errors.js';
import { loadNative, unavailableReason, type LoadOptions, type ShmNative } from './native.js';

/**
 * Where a segment lives. A name without '/' ("chat.ring") is a POSIX shared-memory object
 * (/dev/shm/chat.ring, gone at reboot); anything with a '/' is a regular file path, for data
 * that must survive a reboot.
 */
export type SegmentName = string;

/** Options every shared structure accepts. */
export interface SegmentOptions {
  /** Load the addon from here instead of build/Release (tests use a missing path). */
  addonPath?: string;
  /** How long open() waits for a segment that another process is still creating. Default 1000. */
  openTimeoutMs?: number;
}

export interface StructureKind {
  /** For error messages: 'ring', 'table'... */
  readonly label: string;
  readonly magic: number;
  readonly version: number;
}

export interface CreateSpec {
  /** Bytes to allocate when the segment is new. */
  readonly size: number;
  /** Writes the header of a new segment; must store the magic word last (Atomics.store). */
  init(buffer: ArrayBuffer): void;
}

/**
 * x86 keeps loads in order with loads and stores with stores, so plain reads and writes
 * between two Atomics (a seqlock) are safe there; elsewhere structures use Atomics or locks.
 */
export const PLAIN_ACCESS_IS_ORDERED = process.arch === 'x64' || process.arch === 'ia32';

const SHM_NAME = /^[A-Za-z0-9._-]{1,200}$/;

/** The addon, or a KoboldError saying why shared memory is off. */
export function requireNative(options: LoadOptions = {}): ShmNative {
  const native = loadNative(options);
  if (native === null) throw new KoboldError('KOBOLD_ERR_SHM_UNAVAILABLE', { reason: unavailableReason(options) });
  return native;
}

function locate(name: SegmentName): { path: string; isFile: boolean } {
  if (name.includes('/')) return { path: name, isFile: true };
  if (!SHM_NAME.test(name)) {
    throw new KoboldError('KOBOLD_ERR_SHM_OPTION', { option: 'name', reason: `"${name}" must be 1-200 of A-Z a-z 0-9 . _ - (or a file path)` });
  }
  return { path: `/${name}`, isFile: false };
}

/**
 * Maps a structure's segment. With `create`, a missing segment is created and initialised;
 * an existing one is attached as it is (its header decides the geometry). Without it, the
 * segment must exist; a segment still being created is waited for up to openTimeoutMs.
 */
export function openStructure(name: SegmentName, kind: StructureKind, create: CreateSpec | undefined, options: SegmentOptions = {}): ArrayBuffer {
  const native = requireNative(options);
  const { path, isFile } = locate(name);
  const deadline = Date.now() + (options.openTimeoutMs ?? 1000);
  for (;;) {
    const mapped = mapOrNull(native, name, path, isFile, create?.size ?? 0, create !== undefined);
    if (mapped !== null) {
      try {
        const header = new Int32Array(mapped.buffer, 0, 2);
        const magic = Atomics.load(header, 0);
        if (magic === 0 && create !== undefined) {
          create.init(mapped.buffer);
          return mapped.buffer;
        }
        if (magic !== 0) {
          if (magic !== kind.magic) throw layoutError(name, kind, 'it holds another kind of structure');
          if (header[1] !== kind.version) throw layoutError(name, kind, `layout version ${header[1]}, expected ${kind.version}`);
          return mapped.buffer;
        }
      } finally {
        native.release(mapped.fd);
      }
    }
    if (Date.now() >= deadline) throw new KoboldError('KOBOLD_ERR_SHM_OPEN', { segment: name, reason: 'it exists but was never initialised' });
    sleepSync(2);
  }
}

function mapOrNull(native: ShmNative, name: string, path: string, isFile: boolean, size: number, create: boolean): { buffer: ArrayBuffer; fd: number } | null {
  try {
    return native.map(path, isFile, size, create);
  } catch (error) {
    const errno = (error as { errno?: number }).errno;
    if (errno === ENODATA) return null;
    const reason = errno === ENOENT ? 'it does not exist' : error instanceof Error ? error.message : String(error);
    throw new KoboldError('KOBOLD_ERR_SHM_OPEN', { segment: name, reason }, { cause: error });
  }
}

const ENOENT = 2;
const ENODATA = 61;

/** Removes a segment's name; processes that mapped it keep their mapping. True when it existed. */
export function unlinkSegment(name: SegmentName, options: SegmentOptions = {}): boolean {
  const { path, isFile } = locate(name);
  return requireNative(options).unlink(path, isFile);
}

export function layoutError(name: string, kind: StructureKind, reason: string): KoboldError {
  return new KoboldError('KOBOLD_ERR_SHM_LAYOUT', { segment: name, kind: kind.label, reason });
}

export function optionError(option: string, reason: string): KoboldError {
  return new KoboldError('KOBOLD_ERR_SHM_OPTION', { option, reason });
}

/** Checks that a numeric option is an integer within [min, max]. */
export function checkInteger(option: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) throw optionError(option, `must be an integer from ${min} to ${max}, got ${value}`);
  return value;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Sleeps the calling thread; only for waits of a few milliseconds. */
export function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

/** Whether a process with this pid exists (in this pid namespace). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}
