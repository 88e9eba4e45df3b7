// Example task module: name it in the config (`jobs: { taskModules: ['examples/tasks/reports.ts'] }`).
import { defineTask } from 'kobold';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';

/** On request: `kobold run send-report --json '{"to":"ops@example.com"}' --wait`. */
export const sendReport = defineTask({
  name: 'send-report',
  args: z.object({ to: z.email(), days: z.number().int().min(1).max(90).default(7) }),
  timeoutMs: 30_000,
  retries: 3,
  backoff: { type: 'exponential', delayMs: 2000, maxDelayMs: 60_000 },
  concurrency: 2,
  async run(args, ctx) {
    ctx.logger.info({ to: args.to, days: args.days }, 'building report');
    for (let day = 1; day <= args.days; day++) {
      ctx.signal.throwIfAborted(); // stop promptly on cancel or timeout
      await sleep(10, undefined, { signal: ctx.signal });
      ctx.progress((day / args.days) * 100, `day ${day} of ${args.days}`);
    }
    return { sentTo: args.to };
  },
});

/** On a schedule: every night at 03:00 Berlin time; a run missed while down runs once at start. */
export const nightlyCleanup = defineTask({
  name: 'nightly-cleanup',
  args: z.object({ dryRun: z.boolean().default(false) }),
  timeoutMs: 10 * 60_000,
  schedule: { cron: '0 3 * * *', timezone: 'Europe/Berlin', overlap: 'forbid', missed: 'run-once' },
  run(args, ctx) {
    console.log(`cleanup ${args.dryRun ? '(dry run)' : ''}`); // stdout is kept with the run too
    ctx.logger.info('done');
  },
});

/** In a new process per run: for code that must not share state with other runs. */
export const renderPdf = defineTask({
  name: 'render-pdf',
  args: z.object({ url: z.url() }),
  isolation: 'fresh',
  timeoutMs: 60_000,
  run: (args) => ({ rendered: args.url }),
});
