#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { loadConfig, type LoadOptions } from '../config/load.js';
import { describeError, isKoboldError } from '../errors.js';
import type { DaemonStatus, FullStatus, ReloadResult, ReplacementFailure } from '../ipc/control.js';
import { runMaster } from '../supervisor/master.js';
import { SIGNALS } from '../supervisor/signals.js';
import { attachConsole } from './console-client.js';
import { ControlError, controlRequest } from './control-client.js';
import { daemonPid, locateDaemon, startDetached, waitForExit } from './daemon.js';
import { registerJobsCommands } from './jobs-commands.js';
import { checkJobsConfig } from '../jobs/configtest.js';
import { fullStatusTable, statusLine } from './format.js';

/** LSB exit codes for `status`. */
const STATUS_RUNNING = 0;
const STATUS_DEAD_WITH_PID_FILE = 1;
const STATUS_NOT_RUNNING = 3;

interface CommonOptions {
  config?: string;
  workers?: number;
}

function loadOptions(options: CommonOptions): LoadOptions {
  return { configFile: options.config, workers: options.workers };
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number of 1 or more');
  return n;
}

function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

function fail(message: string, code = 1): never {
  process.stderr.write(`kobold: ${message}\n`);
  process.exit(code);
}

const program = new Command('kobold')
  .description('Kobold: a supervised multi-process daemon and application server')
  .showHelpAfterError()
  .addHelpText('after', `\nSignals to the master (kill -SIGNAL $(cat .kobold/kobold.pid)):\n${SIGNALS.map((s) => `  ${s.signal.padEnd(8)} ${s.description}`).join('\n')}`);

const configOption = ['-c, --config <file>', 'config file (default: kobold.config.{ts,mjs,js,json} in the current directory)'] as const;

program
  .command('start')
  .description('start the daemon (detached, or in the foreground with -F); waits until it is ready')
  .option(...configOption)
  .option('-F, --foreground', 'stay in the foreground (logs to the terminal unless logFile is set)')
  .option('-w, --workers <n>', 'web workers to start with', positiveInt)
  .action(async (options: CommonOptions & { foreground?: boolean }) => {
    if (options.foreground) process.exit(await runMaster({ foreground: true, loadOptions: loadOptions(options) }));
    await start(options);
  });

program
  .command('stop')
  .description('stop the daemon: gracefully (finish in-flight work), or at once with --hard')
  .option(...configOption)
  .option('--hard', 'stop at once')
  .action(async (options: CommonOptions & { hard?: boolean }) => {
    const stopped = await stop(options);
    print(stopped ? 'kobold stopped' : 'kobold is not running');
  });

program
  .command('restart')
  .description('stop the daemon (if it runs), then start it again')
  .option(...configOption)
  .option('--hard', 'stop at once instead of gracefully')
  .option('-w, --workers <n>', 'web workers to start with', positiveInt)
  .action(async (options: CommonOptions & { hard?: boolean }) => {
    await stop(options);
    await start(options);
  });

program
  .command('reload')
  .description('re-read and validate the config, then replace workers one by one onto the new config and code (an invalid config changes nothing)')
  .option(...configOption)
  .option('--config-only', 'apps with an onConfig hook take their new config in place; only other workers are replaced')
  .action(async (options: CommonOptions & { configOnly?: boolean }) => {
    const paths = await locateDaemon(loadOptions(options));
    const result = (await control(paths.controlSocket, { cmd: 'reload', configOnly: options.configOnly ?? false }, 600_000)) as ReloadResult;
    print(`kobold reloaded: ${result.replaced} workers replaced, ${result.reconfigured} reconfigured in place (services: ${result.services.join(', ')})`);
    if (result.failed.length > 0) fail(`${result.failed.length} worker(s) could not be replaced:\n${result.failed.map(describeFailure).join('\n')}`);
  });

function describeFailure(failure: ReplacementFailure): string {
  const after = failure.keptServing ? 'it keeps serving the previous config and code' : 'it had handed its work over, so a fresh worker was started in its place';
  return `  worker ${failure.worker} (${failure.service}): ${failure.reason}; ${after}`;
}

program
  .command('console')
  .description('open a REPL inside a running worker (the app contexts are in `apps`); leaving it leaves the worker running')
  .option(...configOption)
  .option('--worker <id>', 'worker id from `kobold fullstatus` (default: the first ready worker)', positiveInt)
  .action(async (options: CommonOptions & { worker?: number }) => {
    const paths = await locateDaemon(loadOptions(options));
    const status = (await control(paths.controlSocket, { cmd: 'fullstatus' })) as FullStatus;
    const worker = options.worker === undefined ? status.workers.find((w) => w.state === 'ready') : status.workers.find((w) => w.id === options.worker);
    if (worker === undefined) fail(options.worker === undefined ? 'no ready worker' : `no worker with id ${options.worker} (see kobold fullstatus)`);
    if (worker.consoleSocket === null) fail('debug consoles are off (config: console: false)');
    await attachConsole(worker.consoleSocket);
  });

program
  .command('status')
  .description('one line about the daemon; exit 0 running, 3 not running, 1 dead with a pid file')
  .option(...configOption)
  .option('--json', 'print JSON')
  .action(async (options: CommonOptions & { json?: boolean }) => {
    const status = await queryStatus<DaemonStatus>(options, 'status');
    print(options.json ? JSON.stringify(status) : statusLine(status));
  });

program
  .command('fullstatus')
  .description('services and workers: pid, state, uptime, RSS, requests, connections, event-loop use, restarts')
  .option(...configOption)
  .option('--json', 'print JSON')
  .action(async (options: CommonOptions & { json?: boolean }) => {
    const status = await queryStatus<FullStatus>(options, 'fullstatus');
    print(options.json ? JSON.stringify(status, null, 2) : fullStatusTable(status));
  });

program
  .command('configtest')
  .description('validate the config and print every error with its path; never touches a running daemon')
  .option(...configOption)
  .action(async (options: CommonOptions) => {
    const config = await loadConfig(loadOptions(options));
    const missing = config.apps.filter((app) => !app.module.startsWith('kobold:') && !existsSync(app.module));
    if (missing.length > 0) fail(`invalid configuration:\n${missing.map((app) => `  apps.${app.name}.module: file not found: ${app.module}`).join('\n')}`);
    const jobs = await checkJobsConfig(config);
    const services = Object.entries(config.services).map(([name, s]) => `${name} (${s.role}, ${s.workers} workers${s.role === 'http' ? `, ${s.host}:${s.port}` : ''})`);
    print(`config OK: ${config.configFile ?? 'defaults (no config file)'}\n  services: ${services.join(', ')}\n  apps: ${config.apps.map((a) => a.name).join(', ')}`);
    if (jobs !== null) print(`  ${jobs}`);
  });

registerJobsCommands(program, configOption);

async function start(options: CommonOptions): Promise<void> {
  const config = await loadConfig(loadOptions(options));
  const pid = await startDetached(config, loadOptions(options));
  const services = Object.entries(config.services).map(([name, s]) => (s.role === 'http' ? `${name} on ${s.host}:${s.port}` : `${name} (${s.role})`));
  print(`kobold started (pid ${pid}): ${services.join(', ')}`);
}

/** Asks the daemon to stop and waits until its process is gone; false when none ran. */
async function stop(options: CommonOptions & { hard?: boolean }): Promise<boolean> {
  const paths = await locateDaemon(loadOptions(options));
  const { pid } = daemonPid(paths);
  if (pid === null) return false;
  try {
    await controlRequest(paths.controlSocket, { cmd: 'stop', hard: options.hard ?? false });
  } catch {
    process.kill(pid, 'SIGTERM'); // the control socket is gone; the signal still works
  }
  const waitMs = (options.hard ? 0 : paths.gracefulTimeoutMs) + 10_000;
  if (!(await waitForExit(pid, waitMs))) fail(`kobold (pid ${pid}) did not stop within ${waitMs} ms`);
  return true;
}

async function queryStatus<T>(options: CommonOptions & { json?: boolean }, cmd: 'status' | 'fullstatus'): Promise<T> {
  const paths = await locateDaemon(loadOptions(options));
  const { pid, stale } = daemonPid(paths);
  if (pid === null) {
    if (options.json) print(JSON.stringify({ running: false, stalePidFile: stale }));
    else print(stale ? `kobold is not running (stale pid file ${paths.pidFile})` : 'kobold is not running');
    process.exit(stale ? STATUS_DEAD_WITH_PID_FILE : STATUS_NOT_RUNNING);
  }
  return (await control(paths.controlSocket, { cmd })) as T;
}

async function control(socket: string, request: Parameters<typeof controlRequest>[1], timeoutMs?: number): Promise<unknown> {
  try {
    return await controlRequest(socket, request, timeoutMs);
  } catch (error) {
    if (isKoboldError(error, 'KOBOLD_ERR_NOT_RUNNING')) fail('kobold is not running');
    throw error;
  }
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  fail(error instanceof ControlError || isKoboldError(error) ? error.message : describeError(error));
}
