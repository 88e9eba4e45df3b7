// Job runner benchmark: start latency (enqueue -> task code running), p50/p99, for a warm
// pool worker and for a fresh process per run; and no-op jobs/s through the whole path
// (record, socket, worker, result), Kobold (SQLite) and BullMQ (a local redis-server) side by
// side, everything on loopback. Run: npm run bench -- bench/jobs/latency.bench.ts
// (bench/jobs/setup.sh installs redis-server from Debian when it is missing.)
//
// Same shape on both sides: 2 worker processes taking one job at a time each (BullMQ
// `concurrency: 1`, Kobold pool workers of capacity 1). The producer is a client, as an app
// is: BullMQ's Queue over TCP to redis (addBulk in chunks of 1000, `removeOnComplete: true`
// as a busy queue would run), Kobold's JobsApiClient over the jobs API socket (every enqueue
// acknowledged only once its record is committed). Completions are counted from BullMQ's
// QueueEvents stream and from the Kobold dispatcher's run events.

import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue, QueueEvents } from 'bullmq';
import { JobsApiClient } from '../../src/jobs/api-client.js';
import { serveJobsApi, type JobsApiServer } from '../../src/jobs/api-socket.js';
import { startJobsService, type JobsService } from '../../src/jobs/service.js';
import type { RunRecord } from '../../src/jobs/store.js';
import { taskWorkerEnvKey } from '../../src/jobs/task-worker.js';

const hardStop = setTimeout(() => {
  console.error('benchmark exceeded its 120 s budget; stopping');
  process.exit(1);
}, 120_000);
hardStop.unref();

/** Kills what the benchmark started (by pid), however it ends. */
const cleanups: Array<() => void> = [];
process.on('exit', () => {
  for (const stop of cleanups) stop();
});

interface JobSystem {
  name: string;
  start(): Promise<void>;
  /** ms from enqueue to the task's code running, one run at a time; null where the system has no such mode. */
  startLatency(task: 'warm' | 'fresh', runs: number): Promise<number[] | null>;
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
  let apiServer: JobsApiServer;
  let client: JobsApiClient;

  /** Resolves with the run's result once it succeeded (it may have, before the ack reached the client). */
  const completion = (id: number): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const settle = (run: RunRecord): boolean => {
        if (['queued', 'delayed', 'running'].includes(run.state)) return false;
        if (run.state === 'succeeded') resolve(run.result);
        else reject(new Error(`run ${id} ended ${run.state}: ${run.error?.message}`));
        return true;
      };
      if (settle(service.store.require(id))) return;
      const stop = service.dispatcher.subscribe(id, (event) => {
        if (event.type === 'state' && settle(event.run)) stop();
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
        cleanups.push(() => child.kill('SIGKILL'));
      }
      while (service.dispatcher.depth().workers < poolWorkers) await new Promise((resolve) => setTimeout(resolve, 20));
      const socketPath = join(dir, 'jobs-api.sock');
      apiServer = await serveJobsApi(service.api, { socketPath, maxMessageBytes: service.settings.maxMessageBytes, logger: console });
      client = new JobsApiClient(socketPath);
    },
    async startLatency(kind, runs) {
      const latencies: number[] = [];
      for (let i = 0; i < runs; i++) {
        const enqueuedAt = performance.timeOrigin + performance.now();
        const { run } = await client.enqueue({ task: kind === 'warm' ? 'stamp' : 'stamp-fresh', args: {} });
        const result = (await completion(run.id)) as { at: number };
        latencies.push(result.at - enqueuedAt);
      }
      return latencies;
    },
    async throughput(total) {
      const started = performance.now();
      const done: Promise<unknown>[] = [];
      for (let i = 0; i < total; i++) done.push(client.enqueue({ task: 'noop', args: {} }).then(({ run }) => completion(run.id)));
      await Promise.all(done);
      return total / ((performance.now() - started) / 1000);
    },
    async stop() {
      for (const child of children) child.kill('SIGKILL');
      client.close();
      await apiServer.close();
      await service.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** BullMQ with its own redis-server on an ephemeral port and a temp dir, killed by pid at the end. */
function bullmq(workers: number): JobSystem {
  const dir = mkdtempSync(join(tmpdir(), 'kobold-bench-redis-'));
  const children: ChildProcess[] = [];
  let redis: ChildProcess;
  let queue: Queue;
  let events: QueueEvents;

  return {
    name: `bullmq (${workers} workers)`,
    async start() {
      execFileSync('bash', [fileURLToPath(new URL('./setup.sh', import.meta.url))], { stdio: 'inherit' });
      const port = await freePort();
      redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
      cleanups.push(() => redis.kill('SIGKILL'));
      await waitForPort(port);
      const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
      queue = new Queue('bench', { connection });
      events = new QueueEvents('bench', { connection });
      await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
      for (let i = 0; i < workers; i++) {
        const child = fork(fileURLToPath(new URL('./bullmq-worker.ts', import.meta.url)), [], {
          env: { ...process.env, REDIS_PORT: String(port) },
          execArgv: ['--import', import.meta.resolve('tsx')],
        });
        children.push(child);
        cleanups.push(() => child.kill('SIGKILL'));
        await new Promise((resolve) => child.once('message', resolve));
      }
    },
    async startLatency(kind, runs) {
      if (kind === 'fresh') return null;
      const latencies: number[] = [];
      for (let i = 0; i < runs; i++) {
        const enqueuedAt = performance.timeOrigin + performance.now();
        const job = await queue.add('stamp', {});
        const result = (await job.waitUntilFinished(events)) as { at: number };
        latencies.push(result.at - enqueuedAt);
      }
      return latencies;
    },
    async throughput(total) {
      let completed = 0;
      const done = new Promise<void>((resolve) => {
        const onCompleted = () => {
          completed += 1;
          if (completed === total) {
            events.off('completed', onCompleted);
            resolve();
          }
        };
        events.on('completed', onCompleted);
      });
      const started = performance.now();
      for (let i = 0; i < total; i += 1000) await queue.addBulk(Array.from({ length: Math.min(1000, total - i) }, () => ({ name: 'noop', data: {}, opts: { removeOnComplete: true } })));
      await done;
      return total / ((performance.now() - started) / 1000);
    },
    async stop() {
      for (const child of children) child.kill('SIGKILL');
      await Promise.all([queue.close(), events.close()]);
      redis.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number): Promise<void> {
  for (let tries = 0; tries < 100; tries++) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => (socket.destroy(), resolve(true))).once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`redis-server did not listen on ${port}`);
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const systems: JobSystem[] = [kobold(2), bullmq(2)];
const rows: Array<{ system: string; measure: string; value: number | null; unit: string }> = [];
for (const system of systems) {
  await system.start();
  try {
    await system.startLatency('warm', 50); // warm-up: JIT, page caches
    const warm = (await system.startLatency('warm', 1000))!;
    const fresh = await system.startLatency('fresh', 15);
    await system.throughput(500); // warm-up
    const jobsPerSecond = await system.throughput(5000);
    rows.push(
      { system: system.name, measure: 'start latency warm p50', value: percentile(warm, 50), unit: 'ms' },
      { system: system.name, measure: 'start latency warm p99', value: percentile(warm, 99), unit: 'ms' },
      { system: system.name, measure: 'start latency fresh p50', value: fresh && percentile(fresh, 50), unit: 'ms' },
      { system: system.name, measure: 'start latency fresh p99', value: fresh && percentile(fresh, 99), unit: 'ms' },
      { system: system.name, measure: 'no-op jobs/s (5000 at once)', value: jobsPerSecond, unit: 'jobs/s' },
    );
  } finally {
    await system.stop();
  }
}

console.log('\njob runner benchmark (2 worker processes each, one job at a time; producer a client over loopback)');
for (const row of rows) {
  const shown = row.value === null ? 'n/a'.padStart(10) : row.value.toFixed(row.unit === 'ms' ? 3 : 0).padStart(10);
  console.log(`${row.system.padEnd(28)} ${row.measure.padEnd(30)} ${shown} ${row.unit}`);
}
const value = (system: JobSystem, measure: string): number => rows.find((row) => row.system === system.name && row.measure === measure)!.value!;
const [koboldSystem, bullSystem] = systems as [JobSystem, JobSystem];
console.log(`\nkobold fresh process / warm worker, p50 start latency: ${(value(koboldSystem, 'start latency fresh p50') / value(koboldSystem, 'start latency warm p50')).toFixed(0)}x`);
console.log(`bullmq / kobold, warm p50 start latency: ${(value(bullSystem, 'start latency warm p50') / value(koboldSystem, 'start latency warm p50')).toFixed(2)}x`);
console.log(`bullmq / kobold, warm p99 start latency: ${(value(bullSystem, 'start latency warm p99') / value(koboldSystem, 'start latency warm p99')).toFixed(2)}x`);
console.log(`kobold / bullmq, no-op jobs/s: ${(value(koboldSystem, 'no-op jobs/s (5000 at once)') / value(bullSystem, 'no-op jobs/s (5000 at once)')).toFixed(2)}x`);
process.exit(0);
