// Loads the shared-memory addon (native/kobold_shm.cc, built into build/Release by
// scripts/build-native.mjs). When it cannot load — another OS, a failed build — callers
// get null, the reason is recorded once, and Kobold uses its socket path instead.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, parse } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Result of a futex wait. */
export const WaitResult = { Woken: 0, NotEqual: 1, TimedOut: 2 } as const;
export type WaitResult = (typeof WaitResult)[keyof typeof WaitResult];

/** The addon's functions, exactly as native/kobold_shm.cc exports them. */
export interface ShmNative {
  /** Opens (creating when asked) and maps a segment; the fd comes back holding an exclusive flock. */
  map(path: string, isFile: boolean, size: number, create: boolean): { buffer: ArrayBuffer; fd: number };
  /** Drops map()'s flock and closes the fd; the mapping stays. */
  release(fd: number): void;
  /** True when removed, false when it did not exist. */
  unlink(path: string, isFile: boolean): boolean;
  /** Blocks the calling thread; timeoutMs < 0 waits forever. */
  wait(buffer: ArrayBuffer, byteOffset: number, expected: number, timeoutMs: number): WaitResult;
  wake(buffer: ArrayBuffer, byteOffset: number, count: number): number;
  /** Waits on a thread of its own; the event loop keeps running. */
  waitAsync(buffer: ArrayBuffer, byteOffset: number, expected: number, timeoutMs: number): Promise<WaitResult>;
}

export interface LoadOptions {
  /** Path of kobold_shm.node; found from the package root when absent. */
  addonPath?: string;
}

let loaded: { native: ShmNative | null; reason: string } | undefined;

/** The addon, or null when it cannot load (see unavailableReason()). Loads once per process. */
export function loadNative(options: LoadOptions = {}): ShmNative | null {
  if (options.addonPath !== undefined) return tryLoad(options.addonPath).native;
  loaded ??= tryLoad(defaultAddonPath());
  return loaded.native;
}

/** Whether shared memory works in this process; callers fall back to sockets when not. */
export function shmAvailable(options: LoadOptions = {}): boolean {
  return loadNative(options) !== null;
}

/** Why the addon did not load ('' when it did). */
export function unavailableReason(options: LoadOptions = {}): string {
  if (options.addonPath !== undefined) return tryLoad(options.addonPath).reason;
  loadNative();
  return loaded?.reason ?? '';
}

const reported = new Set<string>();

function tryLoad(path: string): { native: ShmNative | null; reason: string } {
  if (process.platform !== 'linux') return unavailable(`needs Linux futexes (this is ${process.platform})`);
  if (!existsSync(path)) return unavailable(`addon not built (${path} missing; run node scripts/build-native.mjs)`);
  try {
    return { native: createRequire(import.meta.url)(path) as ShmNative, reason: '' };
  } catch (error) {
    return unavailable(`addon ${path} failed to load: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function unavailable(reason: string): { native: null; reason: string } {
  if (!reported.has(reason)) {
    reported.add(reason);
    process.emitWarning(`Kobold shared memory is off, using the socket fallback: ${reason}`, { code: 'KOBOLD_SHM_UNAVAILABLE' });
  }
  return { native: null, reason };
}

/** build/Release/kobold_shm.node under the package root (works from src/ and dist/src/). */
function defaultAddonPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (dir !== parse(dir).root && !existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return join(dir, 'build', 'Release', 'kobold_shm.node');
}
