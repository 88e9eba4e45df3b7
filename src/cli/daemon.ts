import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { daemonDefaults } from '../config/defaults.js';
import { findConfigFile, loadConfig, readConfigFile, type LoadOptions, type ResolvedConfig } from '../config/load.js';
import { isKoboldError, KoboldError } from '../errors.js';
import { defaultLogFile } from '../supervisor/master.js';
import { isAlive, readPid } from '../supervisor/pidfile.js';

const MASTER_ENTRY = fileURLToPath(new URL('../supervisor/main.js', import.meta.url));

export interface DaemonPaths {
  pidFile: string;
  controlSocket: string;
  gracefulTimeoutMs: number;
}

/**
 * Where the running daemon's pid file and control socket are. Works from a config that
 * no longer validates (someone edited it), so `stop` and `status` still find the daemon.
 */
export async function locateDaemon(options: LoadOptions): Promise<DaemonPaths> {
  try {
    const config = await loadConfig(options);
    return { pidFile: config.pidFile, controlSocket: config.controlSocket, gracefulTimeoutMs: config.gracefulTimeoutMs };
  } catch (error) {
    if (!isKoboldError(error, 'KOBOLD_ERR_CONFIG_INVALID')) throw error;
  }
  const cwd = options.cwd ?? process.cwd();
  const file = findConfigFile(options.configFile, cwd);
  const raw = (file === null ? {} : await readConfigFile(file)) as Record<string, unknown>;
  const base = file === null ? cwd : dirname(file);
  const text = (key: string) => (typeof raw[key] === 'string' ? resolve(base, raw[key] as string) : undefined);
  const runDir = resolve(base, process.env.KOBOLD_RUN_DIR ?? text('runDir') ?? daemonDefaults.runDir);
  return {
    pidFile: text('pidFile') ?? join(runDir, 'kobold.pid'),
    controlSocket: text('controlSocket') ?? join(runDir, 'control.sock'),
    gracefulTimeoutMs: typeof raw.gracefulTimeoutMs === 'number' ? raw.gracefulTimeoutMs : daemonDefaults.gracefulTimeoutMs,
  };
}

/** The live daemon's pid, null when none runs; `stale` when a pid file names a dead process. */
export function daemonPid(paths: DaemonPaths): { pid: number | null; stale: boolean } {
  const pid = readPid(paths.pidFile);
  if (pid === null) return { pid: null, stale: false };
  return isAlive(pid) ? { pid, stale: false } : { pid: null, stale: true };
}

/**
 * Starts the master detached in its own session with stdio on the log file, and waits for
 * its one-line report on a pipe: ready, or why it failed. A master that dies before
 * reporting closes the pipe, which counts as a failure too.
 */
export async function startDetached(config: ResolvedConfig, options: LoadOptions): Promise<number> {
  const running = daemonPid({ pidFile: config.pidFile, controlSocket: config.controlSocket, gracefulTimeoutMs: 0 });
  if (running.pid !== null) throw new KoboldError('KOBOLD_ERR_ALREADY_RUNNING', { pid: running.pid, pidFile: config.pidFile });
  const logFile = config.logFile ?? defaultLogFile(config);
  mkdirSync(dirname(logFile), { recursive: true });
  const logFd = openSync(logFile, 'a');
  const args = [...(config.masterMaxSemiSpaceMb > 0 ? [`--max-semi-space-size=${config.masterMaxSemiSpaceMb}`] : []), MASTER_ENTRY, '--ready-fd', '3'];
  if (options.configFile !== undefined) args.push('--config', options.configFile);
  if (options.workers !== undefined) args.push('--workers', String(options.workers));
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', logFd, logFd, 'pipe'], cwd: options.cwd ?? process.cwd() });
  closeSync(logFd);
  const pipe = child.stdio[3]!;
  const limitMs = config.startTimeoutMs + 10_000;
  const report = await new Promise<string>((resolveReport) => {
    let text = '';
    const timer = setTimeout(() => resolveReport(''), limitMs);
    pipe.on('data', (chunk: Buffer) => (text += chunk.toString()));
    const done = () => {
      clearTimeout(timer);
      resolveReport(text);
    };
    pipe.on('close', done);
    // Workers may hold the pipe open too; the master's own exit settles it sooner.
    child.on('exit', () => setTimeout(done, 50));
  });
  pipe.destroy();
  child.unref();
  const message = parseReport(report);
  if (message?.ok === true) return message.pid;
  if (message === null && child.exitCode === null && child.pid !== undefined) child.kill('SIGTERM');
  const reason = message === null ? `no ready report within ${limitMs} ms or the master died; see ${logFile}` : message.error;
  throw new KoboldError('KOBOLD_ERR_START_FAILED', { reason });
}

function parseReport(text: string): { ok: true; pid: number } | { ok: false; error: string } | null {
  const line = text.split('\n')[0];
  if (!line) return null;
  try {
    return JSON.parse(line) as { ok: true; pid: number } | { ok: false; error: string };
  } catch {
    return null;
  }
}

/** Polls until the process is gone; false if it still lives after `timeoutMs`. */
export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}
