import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger } from 'pino';

export interface LoggerOptions {
  level: string;
  /** Append JSON lines here; stdout when absent. */
  file?: string | undefined;
  /** Base fields on every line (pid, service, worker id). */
  base?: Record<string, unknown>;
  /** Synchronous writes: for the master, whose lines must not be lost at exit. */
  sync?: boolean;
}

export interface LogOutput {
  logger: Logger;
  /** Reopens the log file (after logrotate moved it). */
  reopen(): void;
  /** Writes out anything buffered; call before exiting. */
  flush(): void;
}

/**
 * One log file for master and workers: every process appends whole lines (O_APPEND),
 * so lines from different processes never interleave mid-line.
 * Without a file: readable lines on a TTY, JSON lines otherwise.
 */
export function createLogger(options: LoggerOptions): LogOutput {
  const base = { pid: process.pid, ...options.base };
  if (options.file === undefined && process.stdout.isTTY) {
    const stream = pretty({ colorize: true, sync: true, ignore: 'hostname' });
    return { logger: pino({ level: options.level, base }, stream), reopen() {}, flush() {} };
  }
  if (options.file !== undefined) mkdirSync(dirname(options.file), { recursive: true });
  const destination = pino.destination({ dest: options.file ?? 1, append: true, sync: options.sync ?? false });
  return {
    logger: pino({ level: options.level, base }, destination),
    reopen: () => {
      if (options.file !== undefined) destination.reopen();
    },
    flush: () => {
      try {
        destination.flushSync();
      } catch {
        // not ready yet (nothing written) or already closed: nothing to flush
      }
    },
  };
}
