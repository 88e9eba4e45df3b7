import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CLI, FIXTURE_APPS, freePort, isAlive, TestProject } from '../helpers/daemon.js';
import { httpGet } from '../helpers/http.js';

const projects: TestProject[] = [];
after(() => Promise.all(projects.map((p) => p.cleanup())));

function runConsole(p: TestProject, args: string[], input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'console', ...args], { cwd: p.dir, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('exit', () => {
      clearTimeout(timer);
      resolve(output);
    });
    child.on('error', reject);
    child.stdin.end(input);
  });
}

test('kobold console evaluates expressions inside the chosen worker, with the app contexts in scope', async () => {
  const port = await freePort();
  const p = new TestProject(port);
  projects.push(p);
  p.writeConfig({
    services: { web: { port, workers: 2, scaling: { enabled: false } } },
    apps: [{ name: 'english', module: join(FIXTURE_APPS, 'greeter.mjs'), config: { greeting: 'hello' } }],
  });
  p.start();
  const second = p.fullStatus().workers[1]!;
  const output = await runConsole(p, ['--worker', String(second.id)], 'process.pid\napps.english.config.greeting.toUpperCase()\nworker.service\n.exit\n');
  assert.match(output, new RegExp(`kobold web#${second.id}> `));
  assert.match(output, new RegExp(`\\b${second.pid}\\b`));
  assert.match(output, /'HELLO'/);
  assert.match(output, /'web'/);
  assert.ok(isAlive(second.pid), 'leaving the console leaves the worker running');
  assert.equal((await httpGet(p.url)).status, 200);
  const missing = await runConsole(p, ['--worker', '999'], '');
  assert.match(missing, /no worker with id 999/);
});
