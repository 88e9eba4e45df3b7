// `kobold run` and `kobold jobs list|show|logs|cancel|retry`: the job runner from the
// command line, through the jobs worker's API socket. Output is for people unless --json;
// `run --wait` exits with the run's outcome (runExitCodes).

import { Command, InvalidArgumentError } from 'commander';
import { loadConfig } from '../config/load.js';
import { KoboldError } from '../errors.js';
import { runExitCodes, type WatchEvent } from '../jobs/api.js';
import { JobsApiClient } from '../jobs/api-client.js';
import { jobsApiSocketPath, jobsEnabled } from '../jobs/config.js';
import { isRunState, type RunState } from '../jobs/states.js';
import type { LogLine, RunRecord } from '../jobs/store.js';
import { daemonPid } from './daemon.js';

interface ConfigOptions {
  config?: string;
}

export function registerJobsCommands(program: Command, configOption: readonly [string, string]): void {
  program
    .command('run')
    .description('queue a run of a task; with --wait, stream its log lines and exit with its outcome (0 succeeded, 1 failed, 124 timed out, 130 cancelled, 75 interrupted)')
    .argument('<task>', 'task name')
    .option(...configOption)
    .option('--json <args>', 'the task arguments as JSON', parseJson, {})
    .option('--wait', 'wait for the run to end, streaming its log lines')
    .option('--priority <n>', 'higher runs first (default 0)', integer)
    .option('--delay <ms>', 'run no earlier than this many ms from now', integer)
    .option('--key <idempotencyKey>', 'a second run with the same key returns the first run')
    .action(async (task: string, options: ConfigOptions & { json: unknown; wait?: boolean; priority?: number; delay?: number; key?: string }) => {
      const api = await connect(options);
      const { run, created } = await api.enqueue({
        task,
        args: options.json,
        trigger: 'cli',
        ...(options.priority !== undefined && { priority: options.priority }),
        ...(options.delay !== undefined && { delayMs: options.delay }),
        ...(options.key !== undefined && { idempotencyKey: options.key }),
      });
      const headline = created ? `run ${run.id} (${run.task}) ${run.state}` : `run ${run.id} (${run.task}) already exists for this key: ${run.state}`;
      if (!options.wait) {
        print(headline);
        return api.close();
      }
      process.stderr.write(`${headline}\n`);
      const final = await follow(api, run.id);
      process.stderr.write(`${summary(final)}\n`);
      process.exit(runExitCodes[final.state]);
    });

  const jobs = program.command('jobs').description('runs of the job runner: list, show, logs, cancel, retry');

  jobs
    .command('list')
    .description('recent runs, newest first')
    .option(...configOption)
    .option('--state <states>', 'only these states, comma-separated (queued,delayed,running,succeeded,failed,timed_out,cancelled,interrupted)', parseStates)
    .option('--task <name>', 'only runs of this task')
    .option('--limit <n>', 'at most this many (default 20)', integer, 20)
    .option('--json', 'print JSON')
    .action(async (options: ConfigOptions & { state?: RunState[]; task?: string; limit: number; json?: boolean }) => {
      const api = await connect(options);
      const runs = await api.list({ limit: options.limit, ...(options.state && { states: options.state }), ...(options.task !== undefined && { task: options.task }) });
      print(options.json ? JSON.stringify(runs, null, 2) : runTable(runs));
      api.close();
    });

  jobs
    .command('show')
    .description("a run's record: state, attempts, timings, worker, result or error")
    .argument('<id>', 'run id', runId)
    .option(...configOption)
    .option('--json', 'print JSON')
    .action(async (id: number, options: ConfigOptions & { json?: boolean }) => {
      const api = await connect(options);
      const run = await api.show(id);
      print(options.json ? JSON.stringify(run, null, 2) : runDetails(run));
      api.close();
    });

  jobs
    .command('logs')
    .description("a run's captured lines (its logger, stdout, stderr, and kobold's notes)")
    .argument('<id>', 'run id', runId)
    .option(...configOption)
    .option('-f, --follow', 'keep streaming until the run ends')
    .option('--json', 'print JSON lines')
    .action(async (id: number, options: ConfigOptions & { follow?: boolean; json?: boolean }) => {
      const api = await connect(options);
      if (options.follow) {
        await follow(api, id, options.json);
        process.exit(0);
      }
      const lines = await api.logs(id, { limit: 10_000 });
      for (const line of lines) writeLine(line, options.json);
      api.close();
    });

  jobs
    .command('cancel')
    .description('cancel a waiting run, or stop a running one (aborted, then its worker killed)')
    .argument('<id>', 'run id', runId)
    .option(...configOption)
    .option('--json', 'print JSON')
    .action(async (id: number, options: ConfigOptions & { json?: boolean }) => {
      const api = await connect(options);
      const run = await api.cancel(id);
      print(options.json ? JSON.stringify(run, null, 2) : run.state === 'cancelled' ? `run ${id} cancelled` : `run ${id}: cancel requested, the task is stopping`);
      api.close();
    });

  jobs
    .command('retry')
    .description('queue a finished run (failed, timed out, cancelled, interrupted) again, with one more attempt')
    .argument('<id>', 'run id', runId)
    .option(...configOption)
    .option('--json', 'print JSON')
    .action(async (id: number, options: ConfigOptions & { json?: boolean }) => {
      const api = await connect(options);
      const run = await api.retry(id);
      print(options.json ? JSON.stringify(run, null, 2) : `run ${id} queued again (attempt ${run.attempt + 1} of ${run.maxAttempts})`);
      api.close();
    });
}

/** A client of the running daemon's jobs worker, or an error saying why there is none. */
async function connect(options: ConfigOptions): Promise<JobsApiClient> {
  const config = await loadConfig({ configFile: options.config });
  if (!jobsEnabled(config.jobs)) throw new KoboldError('KOBOLD_ERR_JOBS_DISABLED');
  if (daemonPid(config).pid === null) throw new KoboldError('KOBOLD_ERR_NOT_RUNNING', { pidFile: config.pidFile });
  return new JobsApiClient(jobsApiSocketPath(config.runDir), { connectTimeoutMs: 5_000 });
}

/** Prints the run's lines as they come; resolves with its final record. */
function follow(api: JobsApiClient, id: number, json = false): Promise<RunRecord> {
  return new Promise((resolve, reject) => {
    const onEvent = (event: WatchEvent): void => {
      if (event.type === 'log') writeLine(event.line, json);
      else if (event.type === 'end') resolve(event.run);
    };
    api.watchRun(id, onEvent, reject).catch(reject);
  });
}

function writeLine(line: LogLine, json = false): void {
  if (json) return print(JSON.stringify(line));
  const source = line.stream === 'system' ? 'kobold' : line.stream;
  const text = `${new Date(line.at).toISOString().slice(11, 23)} [${source} ${line.level}] ${line.message}\n`;
  (line.stream === 'stderr' ? process.stderr : process.stdout).write(text);
}

function summary(run: RunRecord): string {
  const took = run.durationMs === null ? '' : ` in ${run.durationMs} ms`;
  const attempts = run.maxAttempts > 1 ? ` (attempt ${run.attempt} of ${run.maxAttempts})` : '';
  if (run.state === 'succeeded') return `run ${run.id} succeeded${took}${attempts}: ${JSON.stringify(run.result)}`;
  const exit = run.exitSignal ? `, worker killed by ${run.exitSignal}` : run.exitCode !== null ? `, worker exit code ${run.exitCode}` : '';
  return `run ${run.id} ${run.state}${took}${attempts}${exit}: ${run.error?.message ?? 'no error recorded'}`;
}

function runTable(runs: RunRecord[]): string {
  if (runs.length === 0) return 'no runs';
  const rows = runs.map((run) => [
    String(run.id),
    run.task,
    run.state,
    `${run.attempt}/${run.maxAttempts}`,
    new Date(run.createdAt).toISOString().replace('T', ' ').slice(0, 19),
    run.durationMs === null ? '-' : `${run.durationMs} ms`,
    run.trigger,
  ]);
  const header = ['ID', 'TASK', 'STATE', 'ATTEMPT', 'CREATED (UTC)', 'DURATION', 'TRIGGER'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  return [header, ...rows].map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()).join('\n');
}

function runDetails(run: RunRecord): string {
  const time = (at: number | null) => (at === null ? '-' : new Date(at).toISOString());
  const fields: Array<[string, string]> = [
    ['run', `${run.id} (${run.task})`],
    ['state', run.state],
    ['attempt', `${run.attempt} of ${run.maxAttempts}`],
    ['trigger', run.trigger],
    ['args', JSON.stringify(run.args)],
    ['created', time(run.createdAt)],
    ['run at', time(run.runAt)],
    ['started', time(run.startedAt)],
    ['finished', time(run.finishedAt)],
    ['duration', run.durationMs === null ? '-' : `${run.durationMs} ms`],
    ['worker pid', run.workerPid === null ? '-' : String(run.workerPid)],
  ];
  if (run.exitCode !== null || run.exitSignal !== null) fields.push(['worker exit', run.exitSignal ?? `code ${run.exitCode}`]);
  if (run.priority !== 0) fields.push(['priority', String(run.priority)]);
  if (run.idempotencyKey !== null) fields.push(['key', run.idempotencyKey]);
  if (run.progress) fields.push(['progress', `${run.progress.percent}%${run.progress.message ? ` ${run.progress.message}` : ''}`]);
  if (run.state === 'succeeded') fields.push(['result', JSON.stringify(run.result)]);
  if (run.error) fields.push(['error', `${run.error.code ? `${run.error.code}: ` : ''}${run.error.message}`]);
  fields.push(['log lines', `${run.logLines}${run.logDropped > 0 ? ` (${run.logDropped} older dropped)` : ''}`]);
  const text = fields.map(([name, value]) => `${name.padEnd(11)} ${value}`).join('\n');
  return run.error?.stack ? `${text}\n\n${run.error.stack}` : text;
}

function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new InvalidArgumentError(`not valid JSON: ${(error as Error).message}`);
  }
}

function integer(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) throw new InvalidArgumentError('expected a whole number');
  return value;
}

function runId(text: string): number {
  const value = integer(text);
  if (value < 1) throw new InvalidArgumentError('expected a run id (a whole number from 1)');
  return value;
}

function parseStates(text: string): RunState[] {
  const states = text.split(',').filter(Boolean);
  const bad = states.find((state) => !isRunState(state));
  if (bad !== undefined) throw new InvalidArgumentError(`unknown state "${bad}"`);
  return states as RunState[];
}
