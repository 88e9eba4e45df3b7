// Job runner benchmark: start latency (enqueue -> task code running), p50/p99, for a warm
// pool worker and for a fresh process per run; and no-op jobs/s through the whole path
// (SQLite record, socket, worker, result). Run: node --import tsx bench/jobs/latency.bench.ts
//
// Each system under test implements `JobSystem`. BullMQ goes in `systems` once a
// redis-server is available to the benchmark (it is not installed on this machine yet):
// implement JobSystem with a BullMQ Queue + Worker in this file's process pair, and the
// table below prints it side by side with ratios.

import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startJobsService, type JobsService } from '../../src/jobs/service.js';
import { taskWorkerEnvKey } from '../../src/jobs/task-worker.js';

const hardStop = setTimeout(() => {
  console.error('benchmark exceeded its 60 s budget; stopping');
  process.exit(1);
}, 60_000);
hardStop.unref();

interface JobSystem {
  name: string;
  start(): Promise<void>;
  /** ms from enqueue to the task's code running, one run at a time. */
  startLatency(task: 'warm' | 'fresh', runs: number): Promise<number[]>;
  /** No-op jobs completed per second with `total` enqueued at once. */
  throughput(total: number): Promise<number>;
  stop(): Promise<void>;
}

const taskModule = fileURLToPath(new URL('./tasks.ts', import.meta.url));
const workerMain = fileURLToPath(new URL('../../src/jobs/task-worker-main.ts', import.meta.url));

function kobold(poolWorkers: number): JobSystem {
  const dir = mkdtempSync(join(tmpdir(), 'kobold-bench-jobs-'));
  const children: ChildProcess[] = [];
  let service: JobsService;

  /** Resolves with the run's result once it succeeded. */
  const completion = (id: number): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const stop = service.dispatcher.subscribe(id, (event) => {
        if (event.type !== 'state' || ['queued', 'delayed', 'running'].includes(event.run.state)) return;
        stop();
        if (event.run.state === 'succeeded') resolve(event.run.result);
        else reject(new Error(`run ${id} ended ${event.run.state}: ${event.run.error?.message}`));
      });
    });

  return {
    name: `kobold (${poolWorkers} warm workers)`,
    async start() {
      service = await startJobsService({ runDir: dir, taskModules: [taskModule], maxQueued: 100_000 });
      for (let i = 0; i < poolWorkers; i++) {
        const child = fork(workerMain, [], {
          env: { ...process.env, [taskWorkerEnvKey]: JSON.stringify({ socketPath: service.settings.socketPath, taskModules: [taskModule] }) },
          execArgv: ['--import', import.meta.resolve('tsx')],
        });
        child.on('exit', (code, signal) => service.workerExited(child.pid!, code, signal));
        children.push(child);
      }
      while (service.dispatcher.depth().workers < poolWorkers) await new Promise((resolve) => setTimeout(resolve, 20));
    },
    async startLatency(kind, runs) {
      const latencies: number[] = [];
      for (let i = 0; i < runs; i++) {
        const enqueuedAt = performance.timeOrigin + performance.now();
        const { run } = service.dispatcher.enqueue({ task: kind === 'warm' ? 'stamp' : 'stamp-fresh', args: {} });
        const result = (await (service.store.require(run.id).state === 'succeeded' ? service.store.require(run.id).result : completion(run.id))) as { at: number };
        latencies.push(result.at - enqueuedAt);
      }
      return latencies;
    },
    async throughput(total) {
      const started = performance.now();
      const done: Promise<unknown>[] = [];
      for (let i = 0; i < total; i++) done.push(completion(service.dispatcher.enqueue({ task: 'noop', args: {} }).run.id));
      await Promise.all(done);
      return total / ((performance.now() - started) / 1000);
    },
    async stop() {
      for (const child of children) child.kill('SIGKILL');
      await service.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const systems: JobSystem[] = [kobold(2)];
const rows: Array<{ system: string; measure: string; value: number; unit: string }> = [];
for (const system of systems) {
  await system.start();
  try {
    await system.startLatency('warm', 50); // warm-up: JIT, SQLite page cache
    const warm = await system.startLatency('warm', 1000);
    const fresh = await system.startLatency('fresh', 15);
    const jobsPerSecond = await system.throughput(5000);
    rows.push(
      { system: system.name, measure: 'start latency warm p50', value: percentile(warm, 50), unit: 'ms' },
      { system: system.name, measure: 'start latency warm p99', value: percentile(warm, 99), unit: 'ms' },
      { system: system.name, measure: 'start latency fresh p50', value: percentile(fresh, 50), unit: 'ms' },
      { system: system.name, measure: 'start latency fresh p99', value: percentile(fresh, 99), unit: 'ms' },
      { system: system.name, measure: 'no-op jobs/s (5000 at once)', value: jobsPerSecond, unit: 'jobs/s' },
    );
  } finally {
    await system.stop();
  }
}

console.log('\njob runner benchmark');
for (const row of rows) console.log(`${row.system.padEnd(28)} ${row.measure.padEnd(30)} ${row.value.toFixed(row.unit === 'ms' ? 3 : 0).padStart(10)} ${row.unit}`);
const value = (measure: string): number => rows.find((row) => row.measure === measure)!.value;
console.log(`\nfresh process / warm worker, p50 start latency: ${(value('start latency fresh p50') / value('start latency warm p50')).toFixed(0)}x`);
console.log('BullMQ: not measured (needs a local redis-server; see the note at the top of this file)');
