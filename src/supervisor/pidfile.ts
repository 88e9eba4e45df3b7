import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { KoboldError } from '../errors.js';

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // alive, but not ours to signal
  }
}

/** The pid in the file, or null when there is no file or it holds no pid. */
export function readPid(pidFile: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(pidFile, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Creates the pid file exclusively, so two daemons starting at once cannot both win.
 * A file left by a dead daemon (stale) is replaced; a live one is refused.
 * Returns true when a stale file was replaced.
 */
export function acquirePidFile(pidFile: string, pid = process.pid): { replacedStale: boolean } {
  mkdirSync(dirname(pidFile), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      writeFileSync(pidFile, `${pid}\n`, { flag: 'wx', mode: 0o644 });
      return { replacedStale: attempt > 0 };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = readPid(pidFile);
    if (holder !== null && holder !== pid && isAlive(holder)) {
      throw new KoboldError('KOBOLD_ERR_ALREADY_RUNNING', { pid: holder, pidFile });
    }
    unlinkSync(pidFile);
  }
  throw new KoboldError('KOBOLD_ERR_ALREADY_RUNNING', { pid: readPid(pidFile) ?? '?', pidFile });
}

/** Removes the pid file if it is still ours. */
export function releasePidFile(pidFile: string, pid = process.pid): void {
  if (readPid(pidFile) === pid) {
    try {
      unlinkSync(pidFile);
    } catch {
      // already gone
    }
  }
}
