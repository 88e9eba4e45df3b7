import type { AppConfig, HttpConfig } from '../config/schema.js';
import { describeError, KoboldError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { SupervisorLink } from '../worker/supervisor-link.js';
import type { AppContext } from './context.js';
import type { AppDefinition } from './define.js';
import { hookTimeoutMs, type HookName } from './hooks.js';
import { HttpRoutes } from './http-routes.js';
import { type LineHandlers, Listeners, type ListenOptions } from './listeners.js';
import { ResourceRegistry } from './resources.js';
import { DrainTimers } from './timers.js';
import { WsRoutes } from './websocket.js';

type Hook = (...args: never[]) => void | Promise<void>;

/** One app instance in one worker: its context, routes, servers, timers, resources and hooks. */
export class AppInstance {
  readonly http: HttpRoutes;
  readonly ws: WsRoutes;
  readonly context: AppContext<unknown>;
  private readonly listeners: Listeners;
  private readonly timers = new DrainTimers();
  private readonly resources: ResourceRegistry;
  private readonly hooks = new Map<HookName, Hook[]>();
  private readonly logger: Logger;
  private config: unknown;

  constructor(
    public appConfig: AppConfig,
    private readonly definition: AppDefinition<unknown>,
    parentLogger: Logger,
    workerId: number,
    serviceName: string,
    httpConfig: HttpConfig,
    /** Fields every app's ctx gets from the worker: the supervisor link and the features' (ctx.hub…). */
    private readonly shared: { supervisor: SupervisorLink; runDir: string } & Record<string, unknown>,
  ) {
    this.logger = parentLogger.child({ app: appConfig.name });
    this.http = new HttpRoutes(appConfig.prefix, httpConfig);
    this.ws = new WsRoutes(appConfig.prefix);
    this.listeners = new Listeners(this.logger);
    this.resources = new ResourceRegistry(this.logger);
    this.context = this.createContext(workerId, serviceName);
  }

  get name(): string {
    return this.appConfig.name;
  }

  async setup(): Promise<void> {
    this.config = this.parseConfig(this.appConfig.config);
    await this.withTimeout('setup', () => this.definition.setup(this.context));
  }

  async ready(): Promise<void> {
    await this.run('ready');
  }

  /** Whether the app takes a new config in place (it registered onConfig). */
  get reconfigurable(): boolean {
    return (this.hooks.get('config') ?? []).length > 0;
  }

  /** Validates and applies a new instance config through the app's onConfig hooks. */
  async reconfigure(appConfig: AppConfig): Promise<void> {
    const config = this.parseConfig(appConfig.config);
    await this.run('config', config);
    this.config = config;
    this.appConfig = appConfig;
  }

  /** Stop taking work: drain hooks, then timers and line servers stop. */
  async drain(): Promise<void> {
    try {
      await this.run('drain');
    } finally {
      this.timers.stopAll();
      this.listeners.closeAll();
    }
  }

  /** Close hooks, then every registered resource. */
  async close(): Promise<void> {
    try {
      await this.run('close');
    } finally {
      await this.resources.closeAll();
    }
  }

  private async run(name: Exclude<HookName, 'setup'>, ...args: unknown[]): Promise<void> {
    for (const hook of this.hooks.get(name) ?? []) {
      await this.withTimeout(name, () => (hook as (...a: unknown[]) => void | Promise<void>)(...args));
    }
  }

  private parseConfig(raw: unknown): unknown {
    const schema = this.definition.configSchema;
    if (schema === undefined) return raw;
    const result = schema.safeParse(raw ?? {});
    if (result.success) return result.data;
    const details = result.error.issues.map((issue) => `apps.${this.name}.config.${issue.path.join('.') || '(root)'}: ${issue.message}`).join('; ');
    throw new KoboldError('KOBOLD_ERR_APP_CONFIG', { app: this.name, details });
  }

  private createContext(workerId: number, serviceName: string): AppContext<unknown> {
    const register = (name: HookName) => (hook: Hook) => {
      const list = this.hooks.get(name) ?? [];
      list.push(hook);
      this.hooks.set(name, list);
    };
    const instance = this;
    return {
      ...this.shared,
      name: this.name,
      get config() {
        return instance.config;
      },
      logger: this.logger,
      workerId,
      serviceName,
      http: this.http,
      ws: this.ws,
      listen: (options: ListenOptions, handlers: LineHandlers) => this.listeners.listen(options, handlers),
      timers: this.timers,
      resources: this.resources,
      onReady: register('ready'),
      onConfig: register('config'),
      onDrain: register('drain'),
      onClose: register('close'),
    } as unknown as AppContext<unknown>; // hub, jobs and shm come from the features in `shared`
  }

  private async withTimeout(hook: HookName, fn: () => void | Promise<void>): Promise<void> {
    const timeoutMs = hookTimeoutMs(this.appConfig, hook);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new KoboldError('KOBOLD_ERR_HOOK_TIMEOUT', { app: this.name, hook, timeoutMs })), timeoutMs);
    });
    try {
      await Promise.race([Promise.resolve().then(fn), timeout]);
    } catch (error) {
      if (error instanceof KoboldError) throw error;
      throw new KoboldError('KOBOLD_ERR_APP_HOOK', { app: this.name, hook, reason: describeError(error) }, { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }
}
