// Test harness: a temp project with a config, the real `kobold` CLI, and cleanup of
// every process the daemon started (master and workers, by pid).

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = join(ROOT, 'dist/src/cli/main.js');
export const FIXTURE_APPS = join(ROOT, 'test/fixtures/apps');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function waitFor<T>(probe: () => T | Promise<T>, what: string, timeoutMs = 15_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A daemon project in a temp dir. `config` is written as kobold.config.json unless `configSource` is given. */
export class TestProject {
  /** Named after the test run (scripts/test.mjs) so it can kill what a timed-out test left. */
  readonly dir = mkdtempSync(join(tmpdir(), `kobold-test-${process.env.KOBOLD_TEST_RUN ?? 'x'}-`));
  private readonly seenPids = new Set<number>();

  constructor(
    public port: number,
    config?: Record<string, unknown>,
  ) {
    if (config !== undefined) this.writeConfig(config);
  }

  static async create(build: (port: number) => Record<string, unknown>): Promise<TestProject> {
    const port = await freePort();
    return new TestProject(port, build(port));
  }

  writeConfig(config: Record<string, unknown>, name = 'kobold.config.json'): void {
    writeFileSync(join(this.dir, name), JSON.stringify(config, null, 2));
  }

  writeFile(name: string, text: string): string {
    const path = join(this.dir, name);
    writeFileSync(path, text);
    return path;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pidFile(): string {
    return join(this.dir, '.kobold/kobold.pid');
  }

  get logFile(): string {
    return join(this.dir, '.kobold/kobold.log');
  }

  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  masterPid(): number | null {
    try {
      return Number(readFileSync(this.pidFile, 'utf8').trim()) || null;
    } catch {
      return null;
    }
  }

  /** Runs the CLI to completion. */
  kobold(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): CliResult {
    const result = spawnSync(process.execPath, [CLI, ...args], { cwd: this.dir, env: { ...process.env, ...env }, encoding: 'utf8', timeout: timeoutMs });
    this.rememberPids();
    return { code: result.status, stdout: result.stdout, stderr: result.stderr };
  }

  /** Like kobold(), without blocking the event loop (for commands that run while a test sends load). */
  koboldAsync(args: string[], timeoutMs = 60_000): Promise<CliResult> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [CLI, ...args], { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('close', (code) => {
        clearTimeout(timer);
        this.rememberPids();
        resolve({ code, stdout, stderr });
      });
    });
  }

  start(extra: string[] = []): CliResult {
    const result = this.kobold(['start', ...extra]);
    if (result.code !== 0) throw new Error(`kobold start failed (${result.code}): ${result.stderr}${result.stdout}\n--- log\n${this.log()}`);
    return result;
  }

  fullStatus(): FullStatusJson {
    const result = this.kobold(['fullstatus', '--json']);
    if (result.code !== 0) throw new Error(`fullstatus failed (${result.code}): ${result.stderr}`);
    return JSON.parse(result.stdout) as FullStatusJson;
  }

  workerPids(state = 'ready'): number[] {
    return this.fullStatus().workers.filter((w) => w.state === state).map((w) => w.pid);
  }

  signal(signal: NodeJS.Signals): void {
    const pid = this.masterPid();
    if (pid === null) throw new Error('no master pid');
    process.kill(pid, signal);
  }

  /** Hard-stops the daemon, SIGKILLs anything it started that still lives, removes the dir. */
  async cleanup(): Promise<void> {
    this.rememberPids();
    const master = this.masterPid();
    if (master !== null && isAlive(master)) this.kobold(['stop', '--hard'], {}, 20_000);
    for (const pid of this.seenPids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Notes the master's and workers' pids so cleanup can kill them even if the master died. */
  rememberPids(): void {
    const master = this.masterPid();
    if (master === null || !isAlive(master)) return;
    this.seenPids.add(master);
    const children = spawnSync('pgrep', ['-P', String(master)], { encoding: 'utf8' }).stdout;
    for (const line of children.split('\n')) if (line.trim()) this.seenPids.add(Number(line));
  }
}

export interface FullStatusJson {
  pid: number;
  state: string;
  services: { name: string; workers: number; target: number; failing: string | null; restarts: number; minWorkers: number; maxWorkers: number }[];
  workers: { id: number; pid: number; service: string; state: string; requests: number; restarts: number; slot: number }[];
}

/** A config whose web service runs the fixture app `file` (in test/fixtures/apps). */
export function appConfig(port: number, file: string, extra: Record<string, unknown> = {}, service: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    logLevel: 'debug',
    gracefulTimeoutMs: 10_000,
    heartbeatIntervalMs: 200,
    heartbeatTimeoutMs: 3_000,
    services: { web: { port, workers: 2, maxWorkers: 4, scaling: { enabled: false }, ...service } },
    apps: [{ name: 'app', module: join(FIXTURE_APPS, file) }],
    ...extra,
  };
}
