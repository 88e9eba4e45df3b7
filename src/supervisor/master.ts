import { chownSync, closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, type LoadOptions, type ResolvedConfig } from '../config/load.js';
import { describeError, isKoboldError } from '../errors.js';
import type { ControlRequest } from '../ipc/control.js';
import { createLogger } from '../log/logger.js';
import { removeDaemonSegments } from '../shm/app-api.js';
import { ControlServer } from './control-server.js';
import { acquirePidFile, releasePidFile } from './pidfile.js';
import { type Identity, resolveIdentity } from './privileges.js';
import { SIGNALS } from './signals.js';
import { Supervisor } from './supervisor.js';

export interface MasterOptions {
  loadOptions: LoadOptions;
  foreground: boolean;
  /** A pipe to `kobold start`: one JSON line says whether the daemon came up. */
  readyFd?: number;
}

/** Where a daemonized master logs when the config names no log file. */
export function defaultLogFile(config: ResolvedConfig): string {
  return join(config.runDir, 'kobold.log');
}

/** Runs the master until it stops; resolves with the process exit code. */
export async function runMaster(options: MasterOptions): Promise<number> {
  const report = readyReporter(options.readyFd);
  let config: ResolvedConfig;
  try {
    config = await loadConfig(options.loadOptions);
  } catch (error) {
    report({ ok: false, error: describeError(error) });
    if (options.readyFd === undefined) process.stderr.write(`${describeError(error)}\n`);
    return 1;
  }
  if (!options.foreground) process.umask(0o027);
  config = Object.freeze({ ...config, logFile: config.logFile ?? (options.foreground ? undefined : defaultLogFile(config)) });
  const log = createLogger({ level: config.logLevel, file: config.logFile, base: { role: 'master' }, sync: true });
  const logger = log.logger;

  try {
    const { replacedStale } = acquirePidFile(config.pidFile);
    if (replacedStale) logger.warn(`replaced a stale pid file ${config.pidFile}`);
  } catch (error) {
    logger.error(describeError(error));
    report({ ok: false, error: describeError(error) });
    log.flush();
    return 1;
  }

  let identity: Identity;
  try {
    identity = workerIdentity(config);
  } catch (error) {
    logger.error(describeError(error));
    report({ ok: false, error: describeError(error) });
    releasePidFile(config.pidFile);
    return 1;
  }
  const supervisor = new Supervisor(config, log, options.loadOptions, identity);
  const control = new ControlServer(config.controlSocket, (request) => answer(supervisor, request));
  const cleanUp = () => {
    control.close();
    const segments = removeDaemonSegments(config.runDir);
    if (segments > 0) logger.debug(`removed ${segments} shared-memory segments`);
    releasePidFile(config.pidFile);
  };
  process.on('uncaughtException', (error) => logger.fatal({ err: error }, `master: uncaught exception: ${describeError(error)}`));
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, `master: unhandled rejection: ${describeError(reason)}`));
  for (const { signal, action } of SIGNALS) process.on(signal, () => supervisor.onSignal(signal, action));

  try {
    await control.listen();
    await supervisor.start();
  } catch (error) {
    logger.error(`start failed: ${describeError(error)}`);
    report({ ok: false, error: isKoboldError(error, 'KOBOLD_ERR_START_FAILED') ? String(error.params.reason) : describeError(error) });
    await supervisor.stop(true);
    cleanUp();
    log.flush();
    return 1;
  }
  report({ ok: true, pid: process.pid });
  await supervisor.stopped;
  cleanUp();
  logger.info('kobold stopped');
  log.flush();
  return 0;
}

/**
 * Workers run as `user`/`group` when the master runs as root: the master keeps root so it can
 * bind ports below 1024 for new workers at any time (as nginx's master does). The log file
 * is handed to that user so workers can append to it.
 */
function workerIdentity(config: ResolvedConfig): Identity {
  if ((config.user === undefined && config.group === undefined) || process.getuid?.() !== 0) return {};
  const identity = resolveIdentity(config.user, config.group);
  if (config.logFile !== undefined) {
    closeSync(openSync(config.logFile, 'a'));
    chownSync(config.logFile, identity.uid ?? -1, identity.gid ?? -1);
  }
  if (config.console) {
    const consoleDir = join(config.runDir, 'console');
    mkdirSync(consoleDir, { recursive: true, mode: 0o700 });
    chownSync(consoleDir, identity.uid ?? -1, identity.gid ?? -1);
  }
  return identity;
}

async function answer(supervisor: Supervisor, request: ControlRequest): Promise<unknown> {
  switch (request.cmd) {
    case 'ping':
      return { pid: process.pid };
    case 'status':
      return supervisor.status();
    case 'fullstatus':
      return supervisor.fullStatus();
    case 'reload':
      return supervisor.reload(request.configOnly ?? false);
    case 'restart-workers':
      return supervisor.restartWorkers('restart-workers');
    case 'reopen-logs':
      supervisor.reopenLogs();
      return { reopened: true };
    case 'stop':
      void supervisor.stop(request.hard ?? false);
      return { stopping: true, pid: process.pid };
    case 'scale':
      return supervisor.scale(request.service, request.delta);
  }
}

type ReadyMessage = { ok: true; pid: number } | { ok: false; error: string };

function readyReporter(fd: number | undefined): (message: ReadyMessage) => void {
  let open = fd !== undefined;
  return (message) => {
    if (!open || fd === undefined) return;
    open = false;
    try {
      writeSync(fd, `${JSON.stringify(message)}\n`);
      closeSync(fd);
    } catch {
      // `kobold start` gave up waiting and closed its end
    }
  };
}
