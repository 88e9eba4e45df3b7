// The job runner in the real daemon: the jobs singleton, a pool of 2 task workers and a web
// worker, driven through the CLI, the HTTP API and ctx.jobs as users do.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { isAlive, ROOT, TestProject, waitFor } from '../helpers/daemon.js';

const FIXTURES = join(ROOT, 'test/fixtures/jobs');
const API_KEY = 'test-key-0123456789abcdef';

interface Run {
  id: number;
  task: string;
  state: string;
  attempt: number;
  idempotencyKey: string | null;
  workerPid: number | null;
  exitSignal: string | null;
  result: unknown;
}

let p: TestProject;
before(async () => {
  p = await TestProject.create((port) => ({
    logLevel: 'debug',
    gracefulTimeoutMs: 10_000,
    heartbeatIntervalMs: 200,
    heartbeatTimeoutMs: 5_000,
    services: { web: { port, workers: 1, maxWorkers: 1 } },
    apps: [{ name: 'enqueuer', module: join(FIXTURES, 'enqueuer.mjs') }],
    jobs: { taskModules: [join(FIXTURES, 'tasks.ts')], apiKeys: [API_KEY], pool: { minWorkers: 2, maxWorkers: 2 }, drainTimeoutMs: 300 },
  }));
  p.start();
});
after(() => p.cleanup());

function cli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  return p.kobold(args);
}

function show(id: number): Run {
  const result = cli(['jobs', 'show', String(id), '--json']);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as Run;
}

function list(...args: string[]): Run[] {
  const result = cli(['jobs', 'list', '--json', ...args]);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as Run[];
}

/** Polls the run until `ready(run)`; returns that record. */
async function runWhen(id: number, ready: (run: Run) => boolean, what: string): Promise<Run> {
  let last: Run | undefined;
  await waitFor(() => ready((last = show(id))), what);
  return last!;
}

/** Queues a run from the CLI and returns its id. */
function enqueue(task: string, args: unknown = {}, extra: string[] = []): number {
  const result = cli(['run', task, '--json', JSON.stringify(args), ...extra]);
  assert.equal(result.code, 0, result.stderr);
  return Number(/run (\d+)/.exec(result.stdout)![1]);
}

test('kobold run --wait streams the log lines and exits with the outcome', async () => {
  const ok = cli(['run', 'echo', '--json', '{"text":"hello"}', '--wait']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /\[log info\] echoing hello/);
  assert.match(ok.stdout, /\[stdout info\] stdout says hello/);
  assert.match(ok.stderr, /succeeded .*"echoed":"hello"/);

  const failed = cli(['run', 'fail', '--wait']);
  assert.equal(failed.code, 1);
  assert.match(failed.stderr, /failed .*this task always fails/);

  const timedOut = cli(['run', 'nap', '--json', '{"ms":10000}', '--wait']);
  assert.equal(timedOut.code, 124);
  assert.match(timedOut.stderr, /timed_out/);

  const waiting = p.koboldAsync(['run', 'gate', '--json', '{"ms":30000}', '--wait']);
  const running = await waitFor(() => list('--task', 'gate', '--state', 'running')[0], 'the gate run to start');
  const cancel = cli(['jobs', 'cancel', String(running.id)]);
  assert.equal(cancel.code, 0, cancel.stderr);
  const cancelled = await waiting;
  assert.equal(cancelled.code, 130, cancelled.stderr);
  assert.equal(show(running.id).state, 'cancelled');
});

test('bad input is refused with a clear error', () => {
  const unknown = cli(['run', 'no-such-task']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /unknown task "no-such-task"/);
  const badArgs = cli(['run', 'echo', '--json', '{"text":5}']);
  assert.equal(badArgs.code, 1);
  assert.match(badArgs.stderr, /arguments for task "echo" are invalid.*\n.*text/);
  const notJson = cli(['run', 'echo', '--json', '{text']);
  assert.notEqual(notJson.code, 0);
  assert.match(notJson.stderr, /not valid JSON/);
  const noRun = cli(['jobs', 'show', '999999']);
  assert.equal(noRun.code, 1);
  assert.match(noRun.stderr, /no run with id 999999/);
});

test('runs are enqueued over the HTTP API (with its key) and from app code (ctx.jobs)', async () => {
  const post = (headers: Record<string, string>) =>
    fetch(`${p.url}/api/jobs`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ task: 'echo', args: { text: 'http' } }) });
  assert.equal((await post({})).status, 401);
  const created = await post({ 'x-api-key': API_KEY });
  assert.equal(created.status, 201);
  const { run } = (await created.json()) as { run: Run };
  let done: Run | undefined;
  await waitFor(async () => {
    done = ((await (await fetch(`${p.url}/api/jobs/${run.id}`, { headers: { authorization: `Bearer ${API_KEY}` } })).json()) as { run: Run }).run;
    return done.state === 'succeeded';
  }, 'the HTTP run to succeed');
  assert.deepEqual((done!.result as { echoed: string }).echoed, 'http');
  assert.equal((await fetch(`${p.url}/api/jobs/${run.id}`, { headers: { 'x-api-key': API_KEY } })).status, 200);

  const fromApp = (await (await fetch(`${p.url}/enqueue?text=ctx`)).json()) as Run & { trigger: string };
  assert.equal(fromApp.state, 'succeeded');
  assert.equal(fromApp.trigger, 'code');
  assert.deepEqual((fromApp.result as { echoed: string }).echoed, 'ctx');
});

test('a task worker SIGKILLed mid-run: the run fails, or is retried per its policy', async () => {
  // Long enough that it is still running when the kill lands, however slow the machine.
  const sleeping = enqueue('gate', { ms: 30_000 });
  const sleeper = (await runWhen(sleeping, (run) => run.state === 'running', 'the gate run to start')).workerPid!;
  process.kill(sleeper, 'SIGKILL');
  const failed = await runWhen(sleeping, (run) => ['failed', 'succeeded'].includes(run.state), 'the gate run to end');
  assert.equal(failed.state, 'failed');
  assert.equal(failed.exitSignal, 'SIGKILL');

  const retried = enqueue('hang-once');
  const first = (await runWhen(retried, (run) => run.state === 'running', 'hang-once to start')).workerPid!;
  process.kill(first, 'SIGKILL');
  const done = await runWhen(retried, (run) => run.state === 'succeeded', 'the retry to succeed');
  assert.equal(done.attempt, 2);
  assert.match(cli(['jobs', 'logs', String(retried)]).stdout, /died mid-run \(killed by SIGKILL\)/);
  // The supervisor replaced the killed workers.
  await waitFor(() => p.fullStatus().workers.filter((w) => w.service === 'tasks' && w.state === 'ready').length === 2, 'the pool to be whole again');
});

test('a schedule every second fires once per second with 2 task workers', async () => {
  await waitFor(() => list('--task', 'tick', '--limit', '100').length >= 3, 'three ticks');
  const ticks = list('--task', 'tick', '--limit', '100');
  const fireTimes = ticks.map((run) => Number(run.idempotencyKey!.split(':').pop()));
  assert.equal(new Set(fireTimes).size, ticks.length, 'one run per fire time');
  const span = (Math.max(...fireTimes) - Math.min(...fireTimes)) / 1000;
  assert.ok(ticks.length <= span + 1, `${ticks.length} runs in ${span} s of fire times`);
  assert.ok(fireTimes.every((at) => at % 1000 === 0));
});

test('waiting runs survive kobold restart; runs cut off by a killed daemon are interrupted and retried', async () => {
  const delayed = enqueue('echo', { text: 'later' }, ['--delay', '600000']);
  const holding = enqueue('gate', { ms: 60_000 });
  await runWhen(holding, (run) => run.state === 'running', 'the gate to hold');
  const queued = enqueue('gate', { ms: 0 });
  assert.equal(show(queued).state, 'queued');

  const restart = cli(['restart']);
  assert.equal(restart.code, 0, restart.stderr);
  assert.equal(show(delayed).state, 'delayed');
  assert.equal(show(holding).state, 'interrupted'); // no retries left: it stays so
  await runWhen(queued, (run) => run.state === 'succeeded', 'the queued run to run after the restart');

  const cut = enqueue('hang-once');
  await runWhen(cut, (run) => run.state === 'running', 'hang-once to run');
  const pids = [p.masterPid()!, ...p.fullStatus().workers.map((w) => w.pid)];
  for (const pid of pids) process.kill(pid, 'SIGKILL');
  await waitFor(() => pids.every((pid) => !isAlive(pid)), 'the daemon to die');
  p.start();
  const retried = await runWhen(cut, (run) => run.state === 'succeeded', 'the interrupted run to be retried');
  assert.equal(retried.attempt, 2);
  assert.match(cli(['jobs', 'logs', String(cut)]).stdout, /cut off by a daemon stop/);
  assert.equal(show(delayed).state, 'delayed');
});

test('configtest loads the task modules and refuses a malformed cron expression', () => {
  const ok = cli(['configtest']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /tasks: .*echo.*tick \(\* \* \* \* \* \*\)/);
  const bad = new TestProject(0, { jobs: { taskModules: [join(FIXTURES, 'bad-cron.ts')] } });
  try {
    const result = bad.kobold(['configtest']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /broken-schedule.*bad schedule cron.*61 \* \* \* \*/);
  } finally {
    void bad.cleanup();
  }
});
