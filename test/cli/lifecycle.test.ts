import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import { appConfig, CLI, isAlive, TestProject, waitFor } from '../helpers/daemon.js';
import { httpGet } from '../helpers/http.js';

const projects: TestProject[] = [];
after(() => Promise.all(projects.map((p) => p.cleanup())));

async function project(file = 'hello.mjs', extra: Record<string, unknown> = {}): Promise<TestProject> {
  const p = await TestProject.create((port) => appConfig(port, file, extra));
  projects.push(p);
  return p;
}

test('start, status, a second start refused, stop: exit codes and messages', async () => {
  const p = await project();
  const started = p.start();
  assert.match(started.stdout, /kobold started \(pid \d+\)/);

  const status = p.kobold(['status']);
  assert.equal(status.code, 0);
  assert.match(status.stdout, /kobold is running .*web 2\/2/);
  const json = JSON.parse(p.kobold(['status', '--json']).stdout);
  assert.equal(json.state, 'running');

  const res = await httpGet(p.url);
  assert.equal(res.status, 200);
  assert.match(res.body, /hello from worker \d+/);

  const second = p.kobold(['start']);
  assert.equal(second.code, 1);
  assert.match(second.stderr, /already running \(pid \d+/);

  const master = p.masterPid()!;
  const stop = p.kobold(['stop']);
  assert.equal(stop.code, 0);
  assert.match(stop.stdout, /kobold stopped/);
  assert.equal(isAlive(master), false);

  const stopped = p.kobold(['status']);
  assert.equal(stopped.code, 3);
  assert.match(stopped.stdout, /not running/);
  assert.equal(p.kobold(['stop']).code, 0, 'stopping a stopped daemon succeeds');
});

test('a stale pid file is reported by status and replaced by start', async () => {
  const p = await project();
  const dead = spawnSync(process.execPath, ['-e', 'process.pid']).pid!;
  mkdirSync(`${p.dir}/.kobold`, { recursive: true });
  writeFileSync(p.pidFile, `${dead}\n`);

  const status = p.kobold(['status']);
  assert.equal(status.code, 1, 'LSB: dead with a pid file');
  assert.match(status.stdout, /stale pid file/);

  p.start();
  assert.notEqual(p.masterPid(), dead);
  assert.match(p.log(), /replaced a stale pid file/);
});

test('start reports an app that fails in setup, exits 1 and leaves nothing running', async () => {
  const p = await project('setup-throws.mjs');
  const result = p.kobold(['start']);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /failed to start.*database unreachable \(on purpose\)/s);
  await waitFor(() => p.masterPid() === null, 'the pid file to be removed');
  assert.equal(p.kobold(['status']).code, 3);
});

test('start reports a port that is already taken', async () => {
  const p = await project();
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(p.port, '127.0.0.1', resolve));
  try {
    const result = p.kobold(['start']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /EADDRINUSE/);
  } finally {
    blocker.close();
  }
});

test('configtest prints every problem with its path and never touches the daemon', async () => {
  const p = await project();
  assert.equal(p.kobold(['configtest']).code, 0);
  p.writeConfig({ bogus: 1, services: { web: { port: 'eighty', minWorkers: 3, maxWorkers: 2 } }, apps: [{ name: 'a', module: './missing.mjs', service: 'nope' }] });
  const result = p.kobold(['configtest']);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /\(root\): unknown key\(s\): bogus/);
  assert.match(result.stderr, /services\.web\.port: .*expected number/);
  assert.match(result.stderr, /apps\.0\.service: no service named "nope"/);
  assert.equal(p.masterPid(), null, 'configtest started nothing');
});

test('reload with an invalid config keeps the daemon serving on its old config', async () => {
  const p = await project();
  p.start();
  const before = p.workerPids().sort();
  p.writeConfig({ services: { web: { port: p.port, workers: 'many' } } });
  const bad = p.kobold(['reload']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /services\.web\.workers/);
  assert.deepEqual(p.workerPids().sort(), before, 'no worker was restarted');
  assert.equal((await httpGet(p.url)).status, 200);

  p.writeConfig(appConfig(p.port, 'hello.mjs'));
  const good = p.kobold(['reload']);
  assert.equal(good.code, 0, good.stderr);
  const afterPids = p.workerPids();
  assert.equal(afterPids.length, 2);
  assert.ok(afterPids.every((pid) => !before.includes(pid)), 'every worker was replaced');
});

test('reload whose new workers cannot start exits 1, names each worker and why, and the old ones keep serving', async () => {
  const p = await project();
  p.start();
  const before = p.fullStatus().workers.map((worker) => worker.id).sort();
  p.writeConfig(appConfig(p.port, 'setup-throws.mjs'));
  const bad = p.kobold(['reload']);
  assert.equal(bad.code, 1, bad.stdout);
  assert.match(bad.stdout, /kobold reloaded: 0 workers replaced/);
  assert.match(bad.stderr, /2 worker\(s\) could not be replaced/);
  for (const id of before) {
    assert.match(bad.stderr, new RegExp(`worker ${id} \\(web\\): .*database unreachable \\(on purpose\\).*; it keeps serving the previous config and code`));
  }
  assert.deepEqual(p.fullStatus().workers.map((worker) => worker.id).sort(), before, 'the old workers are still there');
  assert.equal((await httpGet(p.url)).status, 200);

  p.writeConfig(appConfig(p.port, 'hello.mjs'));
  const good = p.kobold(['reload']);
  assert.equal(good.code, 0, good.stderr);
  assert.match(good.stdout, /kobold reloaded: 2 workers replaced/);
});

test('USR1 reopens the log file after it was moved away', async () => {
  const p = await project();
  p.start();
  renameSync(p.logFile, `${p.logFile}.1`);
  p.signal('SIGUSR1');
  await waitFor(() => p.log().includes('log files reopened'), 'a line in the new log file');
});

test('start -F runs in the foreground and stops gracefully on Ctrl-C (SIGINT)', async () => {
  const p = await project();
  const child = spawn(process.execPath, [CLI, 'start', '-F'], { cwd: p.dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    await waitFor(() => output.includes('kobold ready'), 'the foreground daemon to be ready');
    assert.equal((await httpGet(p.url)).status, 200);
    p.rememberPids();
    child.kill('SIGINT');
    assert.equal(await exited, 0);
    assert.equal(p.masterPid(), null, 'the pid file is removed');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

test('every command has --help', async () => {
  const p = await project();
  const top = p.kobold(['--help']);
  assert.equal(top.code, 0);
  for (const command of ['start', 'stop', 'restart', 'reload', 'status', 'fullstatus', 'configtest', 'console']) {
    assert.match(top.stdout, new RegExp(`\\b${command}\\b`));
    const help = p.kobold([command, '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, new RegExp(`Usage: kobold ${command}`));
  }
  assert.match(top.stdout, /SIGHUP\s+re-read the config/);
});

test('restart replaces the master and keeps serving on the same port', async () => {
  const p = await project();
  p.start();
  const before = p.masterPid();
  const result = p.kobold(['restart']);
  assert.equal(result.code, 0, result.stderr);
  assert.notEqual(p.masterPid(), before);
  assert.equal((await httpGet(p.url)).status, 200);
});

test('as root with user "nobody", workers run as nobody while the master keeps root', { skip: process.getuid?.() !== 0 && 'needs root' }, async () => {
  const p = await project('hello.mjs', { user: 'nobody' });
  chmodSync(p.dir, 0o755); // the temp dir is 0700; the workers (as nobody) must reach their log file in it
  p.start();
  const uidOf = (pid: number) => Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
  const nobody = Number(spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).stdout.trim());
  assert.equal(uidOf(p.masterPid()!), 0);
  for (const pid of p.workerPids()) assert.equal(uidOf(pid), nobody);
  assert.equal((await httpGet(p.url)).status, 200);
});

test('the control socket answers bad requests with an error line and keeps serving', async () => {
  const p = await project();
  p.start();
  const socket = connect(join(p.dir, '.kobold/control.sock'));
  const lines: string[] = [];
  createInterface({ input: socket }).on('line', (line) => lines.push(line));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write('not json\n{"id":2,"cmd":"explode"}\n{"id":3,"cmd":"scale","service":"web","delta":"lots"}\n{"id":4,"cmd":"scale","service":"nope","delta":1}\n{"id":5,"cmd":"ping"}\n');
  await waitFor(() => lines.length === 5, 'five replies');
  socket.destroy();
  const replies = lines.map((line) => JSON.parse(line) as { id: number; ok: boolean; error?: { code: string; message: string } });
  assert.match(replies[0]!.error!.message, /not a JSON line/);
  assert.match(replies.find((r) => r.id === 2)!.error!.message, /unknown command "explode"/);
  assert.match(replies.find((r) => r.id === 3)!.error!.message, /scale needs "service" \(string\) and "delta" \(integer\)/);
  assert.equal(replies.find((r) => r.id === 4)!.error!.code, 'KOBOLD_ERR_UNKNOWN_SERVICE');
  assert.equal(replies.find((r) => r.id === 5)!.ok, true);
  assert.equal(p.kobold(['status']).code, 0);
});
