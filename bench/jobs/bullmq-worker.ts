// A BullMQ worker process for the jobs benchmark: the same tasks as bench/jobs/tasks.ts
// (`stamp` returns when its code started; `noop` nothing), one job at a time, like a warm
// Kobold task worker. Redis is on 127.0.0.1:$REDIS_PORT.
import { Worker } from 'bullmq';

const worker = new Worker('bench', async (job) => (job.name === 'stamp' ? { at: performance.timeOrigin + performance.now() } : null), {
  connection: { host: '127.0.0.1', port: Number(process.env.REDIS_PORT), maxRetriesPerRequest: null },
  concurrency: 1,
});
await worker.waitUntilReady();
process.send?.('ready');
process.once('SIGTERM', () => void worker.close().then(() => process.exit(0)));
