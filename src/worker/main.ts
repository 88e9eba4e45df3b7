// Entry of every worker process. The master forks it through node:cluster; the worker
// asks for its part of the config once it listens for messages, so none is missed.

import { describeError } from '../errors.js';
import type { ToMaster, ToWorker } from '../ipc/messages.js';
import { WorkerRuntime } from './runtime.js';

// The master decides when workers stop. A terminal's Ctrl-C, Ctrl-\ or hangup reaches the
// whole process group; workers leave it to the master, which drains them in order.
for (const signal of ['SIGINT', 'SIGQUIT', 'SIGHUP'] as const) process.on(signal, () => {});

let runtime: WorkerRuntime | null = null;

process.on('message', (message: ToWorker) => {
  if (runtime === null) {
    if (message?.kind !== 'boot') return;
    runtime = new WorkerRuntime(message.boot);
    void runtime.start();
    return;
  }
  runtime.onMessage(message);
});

process.send?.({ kind: 'boot-request' } satisfies ToMaster);

// The master is gone (killed hard): drain and leave rather than serve unsupervised.
process.on('disconnect', () => {
  if (runtime === null) process.exit(1);
  else void runtime.drain();
});

process.on('uncaughtException', (error) => {
  if (runtime === null) {
    process.stderr.write(`worker crashed: ${error.stack ?? describeError(error)}\n`);
    process.exit(1);
  }
  runtime.logger.fatal({ err: error }, `uncaught exception: ${describeError(error)}`);
  runtime.exit(1);
});

process.on('unhandledRejection', (reason) => {
  runtime?.logger.error({ err: reason }, `unhandled rejection: ${describeError(reason)}`);
});
