import cluster from 'node:cluster';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXIT_NO_RESPAWN } from '../config/defaults.js';
import { loadConfig, type LoadOptions, type ResolvedConfig } from '../config/load.js';
import type { AppConfig } from '../config/schema.js';
import { describeError, KoboldError } from '../errors.js';
import type { DaemonStatus, FullStatus, ReloadResult, ReplacementFailure, RolloutResult, ServiceStatus } from '../ipc/control.js';
import { handle, type ToMaster, type WorkerBoot } from '../ipc/messages.js';
import { removeSocketFile } from '../ipc/unix-socket.js';
import type { LogOutput } from '../log/logger.js';
import { reachedLimit, requestLimitWithJitter } from './limits.js';
import type { Identity } from './privileges.js';
import { ServiceRuntime } from './service-runtime.js';
import { ACTION_ORDER, HARD_ON_REPEAT, type SignalAction } from './signals.js';
import { clampWorkers, defaultScalingPolicy } from './scaling.js';
import { WorkerHandle } from './worker-handle.js';

const WORKER_ENTRY = fileURLToPath(new URL('../worker/main.js', import.meta.url));
/** After a hard stop's SIGTERM, workers still alive this long later get SIGKILL. */
const HARD_STOP_KILL_MS = 1_000;
/** At a graceful stop, what the services after the http ones get at least, even when those used up gracefulTimeoutMs. */
const STOP_SECOND_WAVE_MIN_MS = 1_000;

export type SupervisorState = 'starting' | 'running' | 'stopping';

/** How a replace() ended: the new worker took over, nothing was tried (service gone, daemon stopping), or it failed. */
type Replacement = 'replaced' | 'skipped' | ReplacementFailure;

/**
 * The master: owns every worker process, restarts crashed ones, recycles them on limits,
 * scales services, reloads without downtime. It runs no application code.
 */
export class Supervisor {
  private state: SupervisorState = 'starting';
  private readonly startedAt = Date.now();
  private readonly services = new Map<string, ServiceRuntime>();
  private readonly workers = new Set<WorkerHandle>();
  /** Replacements still starting: if one dies, the worker it replaces still serves. */
  private readonly replacements = new Set<WorkerHandle>();
  /** Recorded signal actions and how often each came (TTIN twice means two more workers). */
  private readonly pending = new Map<SignalAction, number>();
  private nextWorkerId = 1;
  /** "service\nworkerId" pairs: that worker is told when a worker of that service exits. */
  private readonly exitWatchers = new Set<string>();
  private watchdog: NodeJS.Timeout | undefined;
  private rolling: Promise<unknown> = Promise.resolve();
  private hardStopping = false;
  private resolveStopped!: () => void;
  /** Resolves once a stop has ended every worker. */
  readonly stopped = new Promise<void>((resolve) => {
    this.resolveStopped = resolve;
  });

  constructor(
    private config: ResolvedConfig,
    private readonly log: LogOutput,
    private readonly loadOptions: LoadOptions,
    /** uid/gid the workers run as (the master keeps its own, to bind ports); empty to inherit. */
    workerIdentity: Identity = {},
  ) {
    // Both are process-wide: the policy is read when the first worker is forked.
    cluster.schedulingPolicy = config.clusterSchedulingPolicy === 'none' ? cluster.SCHED_NONE : cluster.SCHED_RR;
    const execArgv = config.workerMaxSemiSpaceMb > 0 ? [...process.execArgv, `--max-semi-space-size=${config.workerMaxSemiSpaceMb}`] : process.execArgv;
    cluster.setupPrimary({ exec: WORKER_ENTRY, args: [], serialization: 'json', execArgv, ...workerIdentity });
  }

  private get logger() {
    return this.log.logger;
  }

  /** Starts every service and resolves once all workers are ready; rejects on the first failure. */
  async start(): Promise<void> {
    for (const [name, serviceConfig] of Object.entries(this.config.services)) {
      this.services.set(name, new ServiceRuntime(name, serviceConfig));
    }
    const starting = [...this.services.values()].flatMap((service) =>
      Array.from({ length: service.target }, (_, slot) => this.spawn(service, slot)),
    );
    const outcomes = await Promise.all(starting.map((worker) => worker.ready));
    const failed = outcomes.find((outcome) => !outcome.ok);
    if (failed !== undefined && !failed.ok) {
      throw new KoboldError('KOBOLD_ERR_START_FAILED', { reason: failed.reason });
    }
    this.state = 'running';
    this.watchdog = setInterval(() => this.watch(), this.config.heartbeatIntervalMs);
    this.logger.info({ workers: starting.length }, `kobold ready: ${this.describeServices()}`);
  }

  /** Records a signal; the action runs on the next turn, in ACTION_ORDER. */
  onSignal(signal: NodeJS.Signals, action: SignalAction): void {
    const hard = this.state === 'stopping' && HARD_ON_REPEAT.includes(signal);
    this.logger.info(`received ${signal}`);
    const recorded = hard ? 'stop-hard' : action;
    this.pending.set(recorded, (this.pending.get(recorded) ?? 0) + 1);
    setImmediate(() => this.runPending());
  }

  private runPending(): void {
    for (const action of ACTION_ORDER) {
      const count = this.pending.get(action) ?? 0;
      if (count === 0) continue;
      this.pending.delete(action);
      const times = action === 'scale-up' || action === 'scale-down' ? count : 1;
      for (let i = 0; i < times; i += 1) {
        this.actionFor(action)().catch((error: unknown) => this.logger.error({ err: error }, `${action} failed: ${describeError(error)}`));
      }
    }
  }

  private actionFor(action: SignalAction): () => Promise<unknown> {
    switch (action) {
      case 'stop-hard':
        return () => this.stop(true);
      case 'stop':
        return () => this.stop(false);
      case 'reload':
        return () => this.reload();
      case 'reopen-logs':
        return async () => this.reopenLogs();
      case 'restart-workers':
        return () => this.restartWorkers('restart-workers');
      case 'scale-up':
        return async () => this.scale(this.webServiceName(), +1);
      case 'scale-down':
        return async () => this.scale(this.webServiceName(), -1);
    }
  }

  // --- commands (signals and the control socket both end up here)

  /**
   * Re-reads and validates the config; on success replaces workers one by one (new code and
   * config). With `configOnly`, apps that registered onConfig take their new config in place;
   * only workers that cannot, or whose service settings changed, are replaced. The answer
   * names every worker that could not be replaced.
   */
  async reload(configOnly = false): Promise<ReloadResult> {
    this.assertRunning();
    const next = await loadConfig(this.loadOptions); // throws with every problem: the old config stays
    const previous = this.config;
    for (const key of ['pidFile', 'controlSocket', 'runDir', 'logFile', 'user', 'group'] as const) {
      if (next[key] !== this.config[key]) this.logger.warn(`config: a change of "${key}" takes effect on restart, not reload`);
    }
    this.config = { ...next, pidFile: this.config.pidFile, controlSocket: this.config.controlSocket, runDir: this.config.runDir, logFile: this.config.logFile };
    this.logger.level = next.logLevel;
    for (const [name, service] of this.services) {
      if (name in next.services) continue;
      service.removed = true;
      for (const worker of this.activeWorkers(name)) worker.drain('service removed', this.config.gracefulTimeoutMs);
      this.services.delete(name);
    }
    const unchanged = new Set<string>();
    for (const [name, serviceConfig] of Object.entries(next.services)) {
      const existing = this.services.get(name);
      if (existing === undefined) {
        this.services.set(name, new ServiceRuntime(name, serviceConfig));
        continue;
      }
      if (JSON.stringify(existing.config) === JSON.stringify(serviceConfig) && sameAppLayout(previous.apps, next.apps, name)) unchanged.add(name);
      existing.update(serviceConfig);
    }
    this.logger.info(`config reloaded from ${next.configFile ?? 'defaults'}${configOnly ? ' (config only)' : ''}`);
    const tally: RolloutResult = { replaced: 0, failed: [] };
    let reconfigured = 0;
    if (configOnly) {
      reconfigured = await this.reconfigureInPlace(unchanged, tally);
      addTo(tally, await this.restartWorkers('reload', (service) => !unchanged.has(service)));
    } else {
      addTo(tally, await this.restartWorkers('reload'));
    }
    return { services: [...this.services.keys()], reconfigured, ...tally };
  }

  /** Sends new app configs to the workers of `services`; replaces each that cannot take them (counted in `tally`). */
  private async reconfigureInPlace(services: Set<string>, tally: RolloutResult): Promise<number> {
    let reconfigured = 0;
    await Promise.all(
      [...this.workers].filter((worker) => services.has(worker.service) && worker.state === 'ready').map(async (worker) => {
        const apps = this.config.apps.filter((app) => app.service === worker.service);
        const reply = await worker.request({ kind: 'config', apps }, this.config.startTimeoutMs);
        if (reply.ok) {
          reconfigured += 1;
          return;
        }
        this.logger.info(`worker ${worker.id} cannot take the new config in place (${reply.error}); replacing it`);
        count(tally, await this.replace(worker, 'reload'));
      }),
    );
    return reconfigured;
  }

  /**
   * Graceful restart of every worker, one at a time per service: start the new, then drain
   * the old. Rolling restarts run one after another; each answers what it replaced and what not.
   */
  restartWorkers(reason: string, include: (service: string) => boolean = () => true): Promise<RolloutResult> {
    this.assertRunning();
    const rollout = this.rolling.then(async () => {
      const tally: RolloutResult = { replaced: 0, failed: [] };
      await Promise.all(
        [...this.services.values()].map(async (service) => {
          const old = include(service.name) ? this.activeWorkers(service.name) : [];
          for (const worker of old) {
            if (this.state !== 'running') return;
            if (worker.state === 'ready' && !worker.replacing) count(tally, await this.replace(worker, reason));
          }
          this.applyTarget(service);
        }),
      );
      return tally;
    });
    this.rolling = rollout;
    return rollout;
  }

  reopenLogs(): void {
    this.log.reopen();
    for (const worker of this.workers) worker.send({ kind: 'reopen-logs' });
    this.logger.info('log files reopened');
  }

  /** One more or fewer worker, within the service's min and max. */
  scale(serviceName: string, delta: number): { service: string; workers: number } {
    this.assertRunning();
    const service = this.services.get(serviceName);
    if (service === undefined) throw new KoboldError('KOBOLD_ERR_UNKNOWN_SERVICE', { service: serviceName });
    const target = clampWorkers(service.target + delta, service.config.minWorkers, service.config.maxWorkers);
    if (target !== service.target) {
      this.logger.info(`scaling ${serviceName}: ${service.target} -> ${target} workers`);
      service.setTarget(target);
      this.applyTarget(service);
    } else {
      this.logger.info(`scaling ${serviceName}: stays at ${target} (min ${service.config.minWorkers}, max ${service.config.maxWorkers})`);
    }
    return { service: serviceName, workers: target };
  }

  /** Graceful: workers drain (up to gracefulTimeoutMs, then SIGKILL). Hard: SIGTERM now, SIGKILL soon after. */
  stop(hard: boolean): Promise<void> {
    if (hard && !this.hardStopping) {
      this.hardStopping = true;
      this.logger.info('stopping now');
      for (const worker of this.workers) {
        worker.kill('SIGTERM');
        worker.killAfter(HARD_STOP_KILL_MS);
      }
    }
    if (this.state === 'stopping') return this.stopped;
    this.state = 'stopping';
    clearInterval(this.watchdog);
    if (!hard) {
      this.logger.info(`stopping gracefully (up to ${this.config.gracefulTimeoutMs} ms)`);
      this.drainForStop();
    }
    if (this.workers.size === 0) this.resolveStopped();
    return this.stopped;
  }

  /**
   * Drains the http services' workers first and the others (the hub writer, the jobs
   * dispatcher and its task workers) once those have exited, so requests still in flight
   * can publish and enqueue; all within gracefulTimeoutMs.
   */
  private drainForStop(): void {
    const deadline = Date.now() + this.config.gracefulTimeoutMs;
    const serving = (worker: WorkerHandle) => this.services.get(worker.service)?.config.role === 'http';
    const first = [...this.workers].filter(serving);
    const rest = [...this.workers].filter((worker) => !serving(worker));
    for (const worker of first) worker.drain('stop', this.config.gracefulTimeoutMs);
    void Promise.all(first.map((worker) => worker.exited)).then(() => {
      const timeoutMs = Math.max(deadline - Date.now(), Math.min(this.config.gracefulTimeoutMs, STOP_SECOND_WAVE_MIN_MS));
      for (const worker of rest) worker.drain('stop', timeoutMs);
    });
  }

  status(): DaemonStatus {
    return {
      pid: process.pid,
      uptimeMs: Date.now() - this.startedAt,
      configFile: this.config.configFile,
      state: this.state,
      services: [...this.services.values()].map((service) => this.serviceStatus(service)),
    };
  }

  fullStatus(): FullStatus {
    const now = Date.now();
    const workers = [...this.workers].sort((a, b) => a.service.localeCompare(b.service) || a.slot - b.slot || a.id - b.id);
    return { ...this.status(), workers: workers.map((worker) => worker.status(now)) };
  }

  // --- workers

  private spawn(service: ServiceRuntime, slot: number): WorkerHandle {
    const id = this.nextWorkerId++;
    const worker = cluster.fork({ KOBOLD_WORKER_ID: String(id), KOBOLD_SERVICE: service.name });
    const consoleSocket = this.config.console ? consoleSocketPath(this.config.runDir, id) : null;
    const handleOf = new WorkerHandle(id, service.name, slot, service.restartsOf(slot), worker, requestLimitWithJitter(service.config.limits), consoleSocket);
    this.workers.add(handleOf);
    worker.on('message', (message: unknown) => this.onWorkerMessage(handleOf, service, message));
    worker.on('exit', (code, signal) => this.onWorkerExit(handleOf, code, signal));
    worker.on('error', (error) => this.logger.warn({ worker: id, err: error }, `worker ${id} channel error: ${describeError(error)}`));
    const startTimer = setTimeout(() => {
      if (handleOf.state !== 'starting') return;
      this.logger.error(`worker ${id} (${service.name}) not ready within ${this.config.startTimeoutMs} ms; killing it`);
      handleOf.markStartFailed(`not ready within startTimeoutMs (${this.config.startTimeoutMs} ms)`, false);
      handleOf.kill('SIGKILL');
    }, this.config.startTimeoutMs);
    startTimer.unref();
    void handleOf.ready.then(() => clearTimeout(startTimer));
    this.logger.debug(`started worker ${id} (${service.name} slot ${slot}, pid ${handleOf.pid})`);
    return handleOf;
  }

  private onWorkerMessage(worker: WorkerHandle, service: ServiceRuntime, message: unknown): void {
    handle<ToMaster>(
      {
        'boot-request': () => worker.send({ kind: 'boot', boot: this.bootFor(worker, service) }),
        ready: () => worker.markReady(),
        'start-failed': (m) => {
          this.logger.error(`worker ${worker.id} (${service.name}) failed to start: ${m.error}`);
          worker.markStartFailed(m.error, m.noRespawn);
        },
        reply: (m) => worker.settle(m),
        scale: (m) => this.scaleTo(m.service, m.workers),
        recycle: (m) => {
          if (this.state !== 'running' || worker.state !== 'ready' || worker.replacing) return;
          this.logger.info(`recycling worker ${worker.id} (${service.name}): it asked (${m.reason})`);
          void this.replace(worker, m.reason);
        },
        'watch-exits': (m) => this.exitWatchers.add(`${m.service}\n${worker.id}`),
        'handed-over': () => {
          worker.handedOver = true;
          // No replacement of it is starting (something else took its work): it must not serve on.
          if (this.state === 'running' && worker.state === 'ready' && !worker.replacing) this.replaceHandedOver(worker, service, 'no replacement of it is starting');
        },
        heartbeat: (m) => {
          worker.metrics = m.metrics;
          worker.lastHeartbeatAt = Date.now();
          this.checkLimits(worker, service);
        },
      },
      message,
    );
  }

  private bootFor(worker: WorkerHandle, service: ServiceRuntime): WorkerBoot {
    const { scaling: _scaling, ...serviceConfig } = service.config;
    return {
      workerId: worker.id,
      serviceName: service.name,
      service: serviceConfig,
      apps: this.config.apps.filter((app) => app.service === service.name),
      logFile: this.config.logFile,
      logLevel: this.config.logLevel,
      heartbeatIntervalMs: this.config.heartbeatIntervalMs,
      runDir: this.config.runDir,
      configFile: this.config.configFile,
      consoleSocket: worker.consoleSocket,
      config: JSON.parse(JSON.stringify(this.config)) as unknown,
    };
  }

  private onWorkerExit(worker: WorkerHandle, code: number | null, signal: string | null): void {
    const wasStarting = worker.state === 'starting';
    worker.markExited(code, signal);
    this.workers.delete(worker);
    if (worker.consoleSocket !== null) removeSocketFile(worker.consoleSocket); // a killed worker leaves its socket
    this.notifyExit(worker, code, signal);
    const how = signal ?? `code ${code}`;
    const service = this.services.get(worker.service);
    if (this.workers.size === 0 && this.state === 'stopping') this.resolveStopped();
    if (worker.endReason !== null || this.state === 'stopping' || service === undefined || service.removed) {
      this.logger.debug(`worker ${worker.id} exited (${how}) after ${worker.endReason ?? this.state}`);
      return;
    }
    service.recordRestart(worker.slot);
    if (this.state === 'starting') return; // start() reports it
    if (code === EXIT_NO_RESPAWN) {
      service.crashes.markPermanent(`worker ${worker.id} exited with code ${EXIT_NO_RESPAWN} (do not respawn)`);
      this.logger.error(`SERVICE ${service.name} FAILING: worker ${worker.id} cannot start; not restarting it until reload`);
      return;
    }
    const delay = service.crashes.recordCrash(Date.now() - worker.startedAt, how);
    if (this.replacements.has(worker)) {
      this.logger.error(`replacement worker ${worker.id} (${service.name}) died while starting (${how})`);
      return; // replace() decides what happens to the worker it was to replace
    }
    const failing = service.crashes.failing;
    if (failing !== null) this.logger.error(`SERVICE ${service.name} FAILING: ${failing}; next restart in ${delay} ms`);
    else this.logger.warn(`worker ${worker.id} (${service.name}) ${wasStarting ? 'died while starting' : 'crashed'} (${how}); restarting in ${delay} ms`);
    setTimeout(() => this.refill(service), delay).unref();
  }

  /** Starts the new worker first and drains the old one once the new one is ready. */
  private async replace(old: WorkerHandle, reason: string): Promise<Replacement> {
    const service = this.services.get(old.service);
    if (service === undefined || this.state !== 'running') return 'skipped';
    old.replacing = true;
    const fresh = this.spawn(service, old.slot);
    this.replacements.add(fresh);
    const outcome = await fresh.ready;
    if (!outcome.ok) {
      // Decide once it is gone: a failed start ends in an exit (made sure of here).
      fresh.killAfter(this.config.gracefulTimeoutMs);
      await fresh.exited;
      this.replacements.delete(fresh);
      old.replacing = false;
      const failure = { worker: old.id, service: old.service, reason: outcome.reason, keptServing: !old.handedOver };
      if (old.handedOver) this.replaceHandedOver(old, service, `its replacement failed (${reason}): ${outcome.reason}`);
      else this.logger.error(`could not replace worker ${old.id} (${reason}): ${outcome.reason}; it keeps serving`);
      return failure;
    }
    this.replacements.delete(fresh);
    this.logger.info(`worker ${old.id} replaced by ${fresh.id} (${reason})`);
    old.drain(reason, this.config.gracefulTimeoutMs);
    return 'replaced';
  }

  /**
   * A worker that gave its work to a replacement which then failed cannot serve again: drain
   * it and start a fresh worker in its slot (which starts from what the work left behind,
   * e.g. the hub's ring). Should that one fail too, the usual crash handling applies.
   */
  private replaceHandedOver(old: WorkerHandle, service: ServiceRuntime, why: string): void {
    this.logger.error(`worker ${old.id} (${service.name}) handed its work over and ${why}; starting a fresh worker in its place`);
    old.drain('handed over to a failed replacement', this.config.gracefulTimeoutMs);
    this.refill(service);
  }

  private checkLimits(worker: WorkerHandle, service: ServiceRuntime): void {
    if (worker.metrics === null || worker.state !== 'ready') return;
    const now = Date.now();
    if (now - worker.startedAt > service.config.restart.crashWindowMs) service.crashes.recordSurvivor();
    if (this.state !== 'running' || worker.replacing) return;
    const limit = reachedLimit(service.config.limits, { metrics: worker.metrics, startedAt: worker.startedAt, requestLimit: worker.requestLimit, now });
    if (limit === null) return;
    this.logger.info(`recycling worker ${worker.id} (${service.name}): ${limit}`);
    void this.replace(worker, limit);
  }

  private notifyExit(exited: WorkerHandle, code: number | null, signal: string | null): void {
    for (const watcher of this.workers) {
      if (this.exitWatchers.has(`${exited.service}\n${watcher.id}`)) {
        watcher.send({ kind: 'worker-exit', service: exited.service, pid: exited.pid, code, signal });
      }
    }
  }

  /** A worker asked for a worker count (a job pool following its queue). */
  private scaleTo(serviceName: string, workers: number): void {
    const service = this.services.get(serviceName);
    if (service === undefined || this.state !== 'running') return;
    const target = clampWorkers(workers, service.config.minWorkers, service.config.maxWorkers);
    if (target === service.target) return;
    this.logger.info(`scaling ${serviceName}: ${service.target} -> ${target} workers (asked by a worker)`);
    service.setTarget(target);
    this.applyTarget(service);
  }

  /** Brings a service to its target: starts missing workers, drains the newest extras. */
  private applyTarget(service: ServiceRuntime): void {
    if (this.state !== 'running' || service.removed) return;
    const active = this.activeWorkers(service.name);
    const used = new Set(active.map((worker) => worker.slot));
    for (let slot = 0, missing = service.target - active.length; missing > 0; slot += 1) {
      if (used.has(slot)) continue;
      this.spawn(service, slot);
      missing -= 1;
    }
    const extra = active.length - service.target;
    if (extra > 0) {
      const newestFirst = [...active].sort((a, b) => b.startedAt - a.startedAt);
      for (const worker of newestFirst.slice(0, extra)) worker.drain('scale-down', this.config.gracefulTimeoutMs);
    }
  }

  private refill(service: ServiceRuntime): void {
    if (this.state === 'running' && this.services.get(service.name) === service) this.applyTarget(service);
  }

  /** Every heartbeat interval: kill silent workers, sample load, scale. */
  private watch(): void {
    const now = Date.now();
    for (const worker of this.workers) {
      const timeoutMs = this.services.get(worker.service)?.config.heartbeatTimeoutMs ?? this.config.heartbeatTimeoutMs;
      if (worker.state === 'exited' || now - worker.lastHeartbeatAt <= timeoutMs) continue;
      this.logger.error(`worker ${worker.id} (${worker.service}, pid ${worker.pid}) sent no heartbeat for ${now - worker.lastHeartbeatAt} ms; killing it`);
      worker.lastHeartbeatAt = now; // one kill per timeout
      worker.kill('SIGKILL');
    }
    for (const service of this.services.values()) this.autoscale(service, now);
  }

  private autoscale(service: ServiceRuntime, now: number): void {
    const scaling = service.config.scaling;
    if (!scaling.enabled || this.state !== 'running') return;
    const ready = this.activeWorkers(service.name).filter((worker) => worker.state === 'ready' && worker.metrics !== null);
    if (ready.length === 0) return;
    service.elu.add(ready.reduce((sum, worker) => sum + worker.metrics!.elu, 0) / ready.length, now);
    const elu = service.elu.mean(scaling.windowMs, now);
    if (elu === null || now - service.lastScaleAt < scaling.cooldownMs) return;
    const policy = scaling.policy ?? defaultScalingPolicy(scaling);
    let wanted: number;
    try {
      const inFlight = ready.reduce((sum, worker) => sum + worker.metrics!.inFlight, 0);
      wanted = policy({ service: service.name, workers: service.target, minWorkers: service.config.minWorkers, maxWorkers: service.config.maxWorkers, elu, inFlight });
    } catch (error) {
      this.logger.error({ err: error }, `scaling policy of ${service.name} threw: ${describeError(error)}`);
      return;
    }
    const target = clampWorkers(wanted, service.config.minWorkers, service.config.maxWorkers);
    if (target === service.target) return;
    this.logger.info(`autoscaling ${service.name}: ${service.target} -> ${target} workers (mean ELU ${elu.toFixed(2)})`);
    service.setTarget(target);
    this.applyTarget(service);
  }

  // --- helpers

  private activeWorkers(serviceName: string): WorkerHandle[] {
    return [...this.workers].filter((worker) => worker.service === serviceName && worker.active);
  }

  private serviceStatus(service: ServiceRuntime): ServiceStatus {
    return {
      name: service.name,
      role: service.config.role,
      workers: this.activeWorkers(service.name).length,
      minWorkers: service.config.minWorkers,
      maxWorkers: service.config.maxWorkers,
      target: service.target,
      failing: service.crashes.failing,
      restarts: service.restarts,
    };
  }

  /** The service TTIN/TTOU resize: "web", else the first http service. */
  private webServiceName(): string {
    if (this.services.has('web')) return 'web';
    const first = [...this.services.values()].find((service) => service.config.role === 'http');
    if (first === undefined) throw new KoboldError('KOBOLD_ERR_UNKNOWN_SERVICE', { service: 'web' });
    return first.name;
  }

  private describeServices(): string {
    return [...this.services.values()]
      .map((service) => `${service.name} (${service.config.role}, ${service.target} workers${service.config.role === 'http' ? `, ${service.config.host}:${service.config.port}` : ''})`)
      .join(', ');
  }

  private assertRunning(): void {
    if (this.state !== 'running') throw new KoboldError('KOBOLD_ERR_SERVICE_UNAVAILABLE', { reason: `the daemon is ${this.state}` });
  }
}

export function consoleSocketPath(runDir: string, workerId: number): string {
  return join(runDir, 'console', `${workerId}.sock`);
}


/** Whether a service's apps are the same in both configs except for their own `config`. */
function sameAppLayout(before: AppConfig[], after: AppConfig[], service: string): boolean {
  const layout = (apps: AppConfig[]) => JSON.stringify(apps.filter((app) => app.service === service).map(({ config: _config, ...rest }) => rest));
  return layout(before) === layout(after);
}

/** Counts one replace() in a rollout's tally. */
function count(tally: RolloutResult, replacement: Replacement): void {
  if (replacement === 'replaced') tally.replaced += 1;
  else if (replacement !== 'skipped') tally.failed.push(replacement);
}

function addTo(tally: RolloutResult, more: RolloutResult): void {
  tally.replaced += more.replaced;
  tally.failed.push(...more.failed);
}
