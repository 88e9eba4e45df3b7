// Tasks for the job runner benchmark.
import { z } from 'zod';
import { defineTask } from '../../src/jobs/task.js';

/** Returns when its code started, on the epoch clock both processes share, in ms with µs digits. */
export const stamp = defineTask({
  name: 'stamp',
  args: z.object({}),
  run: () => ({ at: performance.timeOrigin + performance.now() }),
});

export const stampFresh = defineTask({
  name: 'stamp-fresh',
  args: z.object({}),
  isolation: 'fresh',
  run: () => ({ at: performance.timeOrigin + performance.now() }),
});

export const noop = defineTask({
  name: 'noop',
  args: z.object({}),
  run: () => null,
});
