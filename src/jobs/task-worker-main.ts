// A process entry that runs one task worker, configured through the environment:
// KOBOLD_TASK_WORKER='{"socketPath": ..., "taskModules": [...], "baseDir": ..., "maxRuns": 1}'.
// The dispatcher forks it for `isolation: 'fresh'` runs; tests and benchmarks fork it as
// pool workers. The process exits when the worker is done, like a pool worker should.

import { describeError } from '../errors.js';
import { runTaskWorker, taskWorkerEnvKey, type TaskWorkerOptions } from './task-worker.js';

const options = JSON.parse(process.env[taskWorkerEnvKey] ?? 'null') as TaskWorkerOptions | null;
if (options === null) {
  process.stderr.write(`${taskWorkerEnvKey} is not set\n`);
  process.exit(2);
}
try {
  const worker = await runTaskWorker(options);
  process.once('SIGTERM', () => worker.stop());
  const end = await worker.closed;
  process.exit(end === 'protocol-error' ? 1 : 0);
} catch (error) {
  process.stderr.write(`task worker failed to start: ${describeError(error)}\n`);
  process.exit(2);
}
