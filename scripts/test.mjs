// Runs every test file under test/ with node's test runner (TypeScript through tsx).
// Node 20's runner takes no globs, so the files are listed here.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function findTests(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return findTests(path);
    return name.endsWith('.test.ts') ? [path] : [];
  });
}

const only = process.argv.slice(2);
const files = only.length > 0 ? only : findTests('test').sort();
const run = String(process.pid);
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=120000', ...files],
  { stdio: 'inherit', env: { ...process.env, KOBOLD_TEST_RUN: run } },
);
killLeftoverDaemons();
process.exit(result.status ?? 1);

/**
 * A test file that times out is killed before its `after` hooks run, so a daemon it started
 * (detached, in its own session) would outlive the run. Kill those, by the pid files in the
 * temp projects of this run (test/helpers/daemon.ts names them after KOBOLD_TEST_RUN), with
 * their workers.
 */
function killLeftoverDaemons() {
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(`kobold-test-${run}-`)) continue;
    const dir = join(tmpdir(), name);
    let master;
    try {
      master = Number(readFileSync(join(dir, '.kobold/kobold.pid'), 'utf8').trim());
    } catch {
      continue;
    }
    const workers = spawnSync('pgrep', ['-P', String(master)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
    for (const pid of [master, ...workers]) {
      try {
        process.kill(pid, 'SIGKILL');
        console.error(`test run: killed pid ${pid}, left running by a test in ${dir}`);
      } catch {
        // not running
      }
    }
  }
}
