// A pool worker that reached its run limit is replaced like a limit recycle, not as a crash.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ROOT, TestProject, waitFor } from '../helpers/daemon.js';

const FIXTURES = join(ROOT, 'test/fixtures/jobs');
let p: TestProject | undefined;
after(() => p?.cleanup());

test('pool.maxRuns: the worker asks for a replacement and is drained; nothing counts as a crash', async () => {
  p = await TestProject.create((port) => ({
    heartbeatIntervalMs: 200,
    services: { web: { port, workers: 1, maxWorkers: 1 } },
    jobs: { taskModules: [join(FIXTURES, 'tasks.ts')], pool: { minWorkers: 1, maxWorkers: 1, maxRuns: 2 } },
  }));
  p.start();
  const first = p.fullStatus().workers.find((w) => w.service === 'tasks')!.pid;
  for (let i = 0; i < 5; i += 1) {
    const run = p.kobold(['run', 'echo', '--json', JSON.stringify({ text: `run ${i}` }), '--wait']);
    assert.equal(run.code, 0, `${run.stdout}${run.stderr}`);
  }
  await waitFor(() => /recycling worker \d+ \(tasks\): it asked \(task worker drained\)/.test(p!.log()), 'a recycle on the run limit');
  const status = p.fullStatus();
  assert.notEqual(status.workers.find((w) => w.service === 'tasks' && w.state === 'ready')?.pid, first);
  assert.equal(status.services.find((s) => s.name === 'tasks')!.restarts, 0, 'no crash was counted');
  assert.doesNotMatch(p.log(), /crashed/);
});
