// Shared by the benchmarks: ports, autocannon load, a Kobold daemon in a temp dir, plain node:cluster servers.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const CLI = join(ROOT, 'dist/src/cli/main.js');

export interface Load {
  requestsPerSecond: number;
  failed: number;
  total: number;
}

/** Keep-alive HTTP load from this process for `seconds`. */
export async function load(url: string, connections: number, seconds: number): Promise<Load> {
  const result = await autocannon({ url, connections, duration: seconds });
  return { requestsPerSecond: result.requests.average, failed: result.errors + result.timeouts + result.non2xx, total: result.requests.total };
}

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function waitForPort(port: number, path = '/'): Promise<void> {
  for (let i = 0; i < 200; i += 1) {
    if (await fetch(`http://127.0.0.1:${port}${path}`).then((r) => r.ok, () => false)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing answered on port ${port}`);
}

export function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): void {
  const result = spawnSync(command, args, { encoding: 'utf8', ...options, env: { ...process.env, ...options.env } });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr}${result.stdout}`);
}

export function ratio(a: number, b: number): string {
  return b === 0 ? 'n/a' : `${(a / b).toFixed(2)}x`;
}

/** A Kobold daemon in a temp dir running `appModule` on `workers` fixed workers. */
export class KoboldDaemon {
  readonly dir = mkdtempSync(join(tmpdir(), 'kobold-bench-'));

  constructor(
    readonly port: number,
    appModule: string,
    workers: number,
  ) {
    writeFileSync(
      join(this.dir, 'kobold.config.json'),
      JSON.stringify({
        logLevel: 'warn',
        services: { web: { port, workers, minWorkers: workers, maxWorkers: workers, scaling: { enabled: false } } },
        apps: [{ name: 'bench', module: appModule }],
      }),
    );
  }

  /** Starts it; returns the milliseconds `kobold start` took (it returns once every worker is ready). */
  start(): number {
    const started = performance.now();
    run(process.execPath, [CLI, 'start'], { cwd: this.dir });
    return performance.now() - started;
  }

  stop(): void {
    run(process.execPath, [CLI, 'stop', '--hard'], { cwd: this.dir });
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A plain node:cluster script (PORT and WORKERS from the environment), what a user writes by hand. */
export class PlainCluster {
  private child: ChildProcess | null = null;

  constructor(
    readonly port: number,
    private readonly script: string,
    private readonly workers: number,
  ) {}

  async start(): Promise<void> {
    this.child = spawn(process.execPath, [this.script], { env: { ...process.env, PORT: String(this.port), WORKERS: String(this.workers) }, stdio: 'ignore' });
    await waitForPort(this.port);
  }

  stop(): void {
    this.child?.kill('SIGTERM');
  }
}
