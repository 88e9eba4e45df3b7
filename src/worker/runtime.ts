import { performance } from 'node:perf_hooks';
import { AppInstance } from '../app/instance.js';
import { importApp } from '../app/loader.js';
import { AppResolver } from '../app/resolver.js';
import { WebSocketGateway } from '../app/websocket.js';
import type { AppConfig } from '../config/schema.js';
import { EXIT_NO_RESPAWN } from '../config/defaults.js';
import { describeError, isKoboldError } from '../errors.js';
import { handle, type ToMaster, type ToWorker, type WorkerBoot, type WorkerMetrics } from '../ipc/messages.js';
import { createLogger, type LogOutput } from '../log/logger.js';
import { DebugConsole } from './console.js';
import { type FeatureHandle, WORKER_FEATURES } from './features.js';
import { WorkerHttpServer } from './http-server.js';
import { SupervisorLink } from './supervisor-link.js';

export type WorkerState = 'starting' | 'ready' | 'draining';

/** Start failures that will happen again on a retry: the master should not respawn for them. */
const PERMANENT_START_ERRORS = ['KOBOLD_ERR_APP_LOAD', 'KOBOLD_ERR_APP_HOOK', 'KOBOLD_ERR_APP_CONFIG'];

function send(message: ToMaster): void {
  process.send?.(message);
}

/** One worker process of an `http` service: loads its apps, serves, heartbeats, drains. */
export class WorkerRuntime {
  private state: WorkerState = 'starting';
  private readonly log: LogOutput;
  private readonly apps: AppInstance[] = [];
  private readonly features: FeatureHandle[] = [];
  private readonly supervisor = new SupervisorLink(send);
  private http: WorkerHttpServer | null = null;
  private gateway: WebSocketGateway | null = null;
  private console: DebugConsole | null = null;
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
      await this.startFeatures();
      await this.loadApps();
      if (this.boot.service.role === 'http') await this.serveHttp();
      for (const app of this.apps) await app.ready();
      if (this.boot.consoleSocket !== null) await this.openConsole(this.boot.consoleSocket);
    } catch (error) {
      this.logger.error({ err: error }, `worker failed to start: ${describeError(error)}`);
      const noRespawn = isKoboldError(error) && PERMANENT_START_ERRORS.includes(error.code);
      send({ kind: 'start-failed', error: describeError(error), noRespawn });
      this.exit(noRespawn ? EXIT_NO_RESPAWN : 1);
      return;
    }
    this.state = 'ready';
    send({ kind: 'ready' });
    this.logger.debug(this.http === null ? 'worker ready' : `worker ready on ${this.boot.service.host}:${this.boot.service.port}`);
  }

  private async startFeatures(): Promise<void> {
    for (const feature of WORKER_FEATURES) {
      const handle = await feature.start({ boot: this.boot, logger: this.logger, supervisor: this.supervisor });
      if (handle !== null) this.features.push(handle);
    }
  }

  /** Features answer first (the hub's transports, the jobs API), then the apps by host and prefix. */
  private async serveHttp(): Promise<void> {
    const { service } = this.boot;
    const resolver = new AppResolver(this.apps.map((app) => ({ host: app.appConfig.host, prefix: app.appConfig.prefix, target: app })));
    const gateway = new WebSocketGateway(service.websocket, this.logger);
    this.gateway = gateway;
    const featureHttp = this.features.flatMap((f) => (f.handleHttp ? [f.handleHttp.bind(f)] : []));
    const featureUpgrade = this.features.flatMap((f) => (f.handleUpgrade ? [f.handleUpgrade.bind(f)] : []));
    this.http = new WorkerHttpServer(
      service.http,
      resolver,
      this.logger,
      (req, socket, head) => featureUpgrade.some((upgrade) => upgrade(req, socket, head)) || gateway.upgrade(req, socket, head, resolver.candidates(req)),
      (req, res) => featureHttp.some((answer) => answer(req, res)),
    );
    await this.http.listen(service.host, service.port);
  }

  onMessage(message: unknown): void {
    handle<ToWorker>(
      {
        boot: () => {}, // only the first one counts; see main.ts
        drain: () => void this.drain(),
        'reopen-logs': () => this.log.reopen(),
        'worker-exit': (m) => this.supervisor.workerExited(m),
        config: (m) => {
          this.reconfigure(m.apps).then(
            () => send({ kind: 'reply', ack: m.seq, ok: true }),
            (error: unknown) => send({ kind: 'reply', ack: m.seq, ok: false, error: describeError(error) }),
          );
        },
      },
      message,
    );
  }

  /**
   * Graceful end: stop accepting, apps drain (timers and line servers stop), WebSocket clients
   * get 1012, in-flight requests finish, apps close, then exit.
   */
  async drain(): Promise<void> {
    if (this.state === 'draining') return;
    this.state = 'draining';
    this.sendHeartbeat();
    try {
      this.http?.stopAccepting();
      for (const app of this.apps) await app.drain();
      for (const feature of this.features) await feature.drain?.();
      await this.gateway?.closeAll();
      await this.http?.drained();
      for (const app of [...this.apps].reverse()) await app.close();
      for (const feature of [...this.features].reverse()) await feature.close?.();
    } catch (error) {
      this.logger.error({ err: error }, `drain failed: ${describeError(error)}`);
    }
    this.exit(0);
  }

  exit(code: number): void {
    clearInterval(this.heartbeat);
    this.console?.close();
    this.log.flush();
    process.exit(code);
  }

  /** Applies new instance configs in place; throws if an app whose config changed cannot take it. */
  private async reconfigure(configs: AppConfig[]): Promise<void> {
    const changed = this.apps.filter((app) => {
      const next = configs.find((c) => c.name === app.name);
      return next !== undefined && JSON.stringify(next) !== JSON.stringify(app.appConfig);
    });
    const fixed = changed.find((app) => !app.reconfigurable);
    if (fixed !== undefined) throw new Error(`app "${fixed.name}" has no onConfig hook`);
    for (const app of changed) await app.reconfigure(configs.find((c) => c.name === app.name)!);
    if (changed.length > 0) this.logger.info(`new config applied in place: ${changed.map((app) => app.name).join(', ')}`);
  }

  private async loadApps(): Promise<void> {
    const { workerId, serviceName, service } = this.boot;
    for (const appConfig of this.boot.apps) {
      const definition = await importApp(appConfig);
      const shared = Object.assign({ supervisor: this.supervisor, runDir: this.boot.runDir }, ...this.features.map((f) => f.context ?? {}));
      const app = new AppInstance(appConfig, definition, this.logger, workerId, serviceName, service.http, shared);
      await app.setup();
      this.apps.push(app);
    }
  }

  private async openConsole(path: string): Promise<void> {
    const scope = () => ({
      apps: Object.fromEntries(this.apps.map((app) => [app.name, app.context])),
      worker: { id: this.boot.workerId, service: this.boot.serviceName, pid: process.pid, state: this.state, metrics: () => this.metrics() },
      logger: this.logger,
    });
    this.console = new DebugConsole(path, `kobold ${this.boot.serviceName}#${this.boot.workerId}> `, scope, this.logger);
    await this.console.listen();
  }

  /** Metrics now; ELU since the last heartbeat. */
  private metrics(): WorkerMetrics {
    const memory = process.memoryUsage();
    const elu = performance.eventLoopUtilization(this.eluMark);
    return {
      rss: memory.rss,
      heapUsed: memory.heapUsed,
      elu: elu.utilization,
      requests: this.http?.requests ?? 0,
      inFlight: this.http?.inFlight ?? 0,
      connections: this.http?.connectionCount ?? 0,
      lastActiveAt: this.http?.lastActiveAt ?? this.startedAt,
    };
  }

  private sendHeartbeat(): void {
    send({ kind: 'heartbeat', metrics: this.metrics() });
    this.eluMark = performance.eventLoopUtilization();
  }
}
