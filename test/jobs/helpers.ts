// A dispatcher in the test process with real task-worker processes forked from here.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Dispatcher } from '../../src/jobs/dispatcher.js';
import { fillJobsOptions, type JobsOptions } from '../../src/jobs/options.js';
import { loadTaskModules, type TaskRegistry } from '../../src/jobs/registry.js';
import type { RunState } from '../../src/jobs/states.js';
import { RunStore, type RunRecord } from '../../src/jobs/store.js';
import { taskWorkerEnvKey } from '../../src/jobs/task-worker.js';

export const fixtureTasks = fileURLToPath(new URL('./fixtures/tasks.ts', import.meta.url));
export const taskWorkerMain = fileURLToPath(new URL('../../src/jobs/task-worker-main.ts', import.meta.url));
export const tsxLoader = import.meta.resolve('tsx');

/** Forks a pool task worker; the caller reports its exit to whoever hosts the dispatcher. */
export function forkTaskWorker(socketPath: string, options: { concurrency?: number; maxRuns?: number; modules?: string[] } = {}): ChildProcess {
  const config = { socketPath, taskModules: options.modules ?? [fixtureTasks], concurrency: options.concurrency ?? 1, maxRuns: options.maxRuns ?? 0 };
  return fork(taskWorkerMain, [], {
    env: { ...process.env, [taskWorkerEnvKey]: JSON.stringify(config) },
    execArgv: ['--import', tsxLoader],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

export async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export interface Harness {
  dir: string;
  store: RunStore;
  dispatcher: Dispatcher;
  children: ChildProcess[];
  addWorkers(count: number, options?: { concurrency?: number; maxRuns?: number }): Promise<ChildProcess[]>;
  waitForState(id: number, states: RunState[], timeoutMs?: number): Promise<RunRecord>;
  close(): Promise<void>;
}

export async function startHarness(options: Partial<JobsOptions> & { dir?: string; tasks?: TaskRegistry } = {}): Promise<Harness> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'kobold-jobs-'));
  const { tasks, dir: _dir, ...jobsOptions } = options;
  const settings = fillJobsOptions({ runDir: dir, taskModules: [fixtureTasks], workerExitWaitMs: 2000, abortGraceMs: 100, killGraceMs: 300, drainTimeoutMs: 0, ...jobsOptions });
  const store = new RunStore(settings.storeFile, settings);
  const dispatcher = new Dispatcher({ store, tasks: tasks ?? (await loadTaskModules(settings.taskModules)), settings });
  await dispatcher.start();
  const children: ChildProcess[] = [];
  const harness: Harness = {
    dir,
    store,
    dispatcher,
    children,
    async addWorkers(count, workerOptions = {}) {
      const before = dispatcher.depth().workers;
      const added = Array.from({ length: count }, () => {
        const child = forkTaskWorker(settings.socketPath, workerOptions);
        child.on('exit', (code, signal) => dispatcher.workerExited(child.pid!, code, signal));
        children.push(child);
        return child;
      });
      await waitFor(`${count} task workers`, () => dispatcher.depth().workers >= before + count, 10_000);
      return added;
    },
    waitForState: (id, states, timeoutMs) =>
      waitFor(`run ${id} to be ${states.join('|')}`, () => {
        const run = store.require(id);
        return states.includes(run.state) ? run : undefined;
      }, timeoutMs),
    async close() {
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await dispatcher.close();
      store.close();
      if (!options.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
  return harness;
}

export const hostFixture = fileURLToPath(new URL('./fixtures/host.ts', import.meta.url));

export interface Host {
  child: ChildProcess;
  port: number;
  workerPids: number[];
  request(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any }>;
}

/** Starts the host fixture (a jobs service in its own process) and waits for it to be ready. */
export async function startHost(runDir: string, apiKey: string, workers = 1): Promise<Host> {
  const child = fork(hostFixture, [], {
    env: { ...process.env, JOBS_HOST: JSON.stringify({ runDir, workers, apiKey }) },
    execArgv: ['--import', tsxLoader],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ready = await new Promise<{ port: number; workerPids: number[] }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('host did not start')), 15_000);
    child.once('message', (message) => { clearTimeout(timer); resolve(message as { port: number; workerPids: number[] }); });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`host exited with ${code}`)); });
  });
  return {
    child,
    ...ready,
    async request(method, path, body, headers = {}) {
      const response = await fetch(`http://127.0.0.1:${ready.port}${path}`, {
        method,
        headers: { authorization: `Bearer ${apiKey}`, ...(body !== undefined && { 'content-type': 'application/json' }), ...headers },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      return { status: response.status, body: text && response.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text };
    },
  };
}

/** Kills whatever is left of a host and its workers, by pid. */
export function killHost(host: Host): void {
  for (const pid of [host.child.pid!, ...host.workerPids]) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  }
}

export function isAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}
