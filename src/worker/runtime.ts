import { performance } from 'node:perf_hooks';
import { AppInstance, importApp } from '../app/instance.js';
import { AppResolver } from '../app/resolver.js';
import { EXIT_NO_RESPAWN } from '../config/defaults.js';
import { describeError, isKoboldError } from '../errors.js';
import { handle, type ToMaster, type ToWorker, type WorkerBoot, type WorkerMetrics } from '../ipc/messages.js';
import { createLogger, type LogOutput } from '../log/logger.js';
import { WorkerHttpServer } from './http-server.js';

export type WorkerState = 'starting' | 'ready' | 'draining';

function send(message: ToMaster): void {
  process.send?.(message);
}

/** One worker process of an `http` service: loads its apps, serves, heartbeats, drains. */
export class WorkerRuntime {
  private state: WorkerState = 'starting';
  private readonly log: LogOutput;
  private readonly apps: AppInstance[] = [];
  private http: WorkerHttpServer | null = null;
  private heartbeat: NodeJS.Timeout | undefined;
  private eluMark = performance.eventLoopUtilization();
  private readonly startedAt = Date.now();

  constructor(private readonly boot: WorkerBoot) {
    this.log = createLogger({
      level: boot.logLevel,
      file: boot.logFile,
      base: { service: boot.serviceName, worker: boot.workerId },
    });
  }

  get logger() {
    return this.log.logger;
  }

  async start(): Promise<void> {
    this.heartbeat = setInterval(() => this.sendHeartbeat(), this.boot.heartbeatIntervalMs);
    this.sendHeartbeat();
    try {
      await this.loadApps();
      const resolver = new AppResolver(this.apps.map((app) => ({ host: app.appConfig.host, prefix: app.appConfig.prefix, target: app })));
      this.http = new WorkerHttpServer(this.boot.service.http, resolver, this.logger);
      await this.http.listen(this.boot.service.host, this.boot.service.port);
      for (const app of this.apps) await app.run('ready');
    } catch (error) {
      this.logger.error({ err: error }, `worker failed to start: ${describeError(error)}`);
      // A bad app module or config will fail the same way again: don't respawn for it.
      const noRespawn = isKoboldError(error) && ['KOBOLD_ERR_APP_LOAD', 'KOBOLD_ERR_APP_HOOK'].includes(error.code);
      send({ kind: 'start-failed', error: describeError(error), noRespawn });
      this.exit(noRespawn ? EXIT_NO_RESPAWN : 1);
      return;
    }
    this.state = 'ready';
    send({ kind: 'ready' });
    this.logger.debug(`worker ready on ${this.boot.service.host}:${this.boot.service.port}`);
  }

  onMessage(message: unknown): void {
    handle<ToWorker>(
      {
        boot: () => {}, // only the first one counts; see main.ts
        drain: () => void this.drain(),
        'reopen-logs': () => this.log.reopen(),
      },
      message,
    );
  }

  /** Graceful end: apps stop taking work, the server drains, apps close, then exit. */
  async drain(): Promise<void> {
    if (this.state === 'draining') return;
    this.state = 'draining';
    this.sendHeartbeat();
    try {
      for (const app of this.apps) await app.run('drain');
      await this.http?.drain();
      for (const app of [...this.apps].reverse()) await app.run('close');
    } catch (error) {
      this.logger.error({ err: error }, `drain failed: ${describeError(error)}`);
    }
    this.exit(0);
  }

  exit(code: number): void {
    clearInterval(this.heartbeat);
    this.log.flush();
    process.exit(code);
  }

  private async loadApps(): Promise<void> {
    for (const appConfig of this.boot.apps) {
      const definition = await importApp(appConfig);
      const app = new AppInstance(appConfig, definition, this.logger, this.boot.workerId, this.boot.serviceName);
      await app.setup();
      this.apps.push(app);
    }
  }

  private sendHeartbeat(): void {
    const memory = process.memoryUsage();
    const elu = performance.eventLoopUtilization(this.eluMark);
    this.eluMark = performance.eventLoopUtilization();
    const metrics: WorkerMetrics = {
      rss: memory.rss,
      heapUsed: memory.heapUsed,
      elu: elu.utilization,
      requests: this.http?.requests ?? 0,
      inFlight: this.http?.inFlight ?? 0,
      connections: this.http?.connectionCount ?? 0,
      lastActiveAt: this.http?.lastActiveAt ?? this.startedAt,
    };
    send({ kind: 'heartbeat', metrics });
  }
}
