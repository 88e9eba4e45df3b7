import { extname } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AppConfig } from '../config/schema.js';
import { describeError, KoboldError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { AppContext } from './context.js';
import { type AppDefinition, isAppDefinition } from './define.js';
import { hookTimeoutMs, type HookName } from './hooks.js';
import { HttpRoutes } from './http-routes.js';

const BUILTIN_APPS: Record<string, () => Promise<{ default: unknown }>> = {
  hello: () => import('./builtin/hello.js'),
};

/** Imports an app module (compiled JS, or TypeScript through tsx with no build step). */
export async function importApp(appConfig: AppConfig): Promise<AppDefinition<unknown>> {
  const { module } = appConfig;
  let loaded: unknown;
  try {
    if (module.startsWith('kobold:')) {
      const builtin = BUILTIN_APPS[module.slice('kobold:'.length)];
      if (builtin === undefined) throw new Error(`no built-in app "${module}" (built-ins: ${Object.keys(BUILTIN_APPS).join(', ')})`);
      loaded = (await builtin()).default;
    } else if (['.ts', '.mts', '.cts'].includes(extname(module))) {
      const { tsImport } = await import('tsx/esm/api');
      loaded = unwrap(await tsImport(pathToFileURL(module).href, import.meta.url));
    } else {
      loaded = unwrap(await import(pathToFileURL(module).href));
    }
  } catch (error) {
    throw new KoboldError('KOBOLD_ERR_APP_LOAD', { app: appConfig.name, module, reason: describeError(error) }, { cause: error });
  }
  if (!isAppDefinition(loaded)) {
    throw new KoboldError('KOBOLD_ERR_APP_LOAD', { app: appConfig.name, module, reason: 'its default export is not a defineApp(...) result' });
  }
  return loaded;
}

function unwrap(module: Record<string, unknown>): unknown {
  const value = module.default;
  if (isAppDefinition(value)) return value;
  // tsx wraps a CommonJS-compiled default once more
  return (value as { default?: unknown } | undefined)?.default ?? value;
}

type Hook = (...args: never[]) => void | Promise<void>;

/** One app instance in one worker: its context, routes and hooks. */
export class AppInstance {
  readonly routes: HttpRoutes;
  private readonly hooks = new Map<HookName, Hook[]>();
  private config: unknown;

  constructor(
    readonly appConfig: AppConfig,
    private readonly definition: AppDefinition<unknown>,
    private readonly logger: Logger,
    private readonly workerId: number,
    private readonly serviceName: string,
  ) {
    this.routes = new HttpRoutes(appConfig.prefix);
  }

  get name(): string {
    return this.appConfig.name;
  }

  async setup(): Promise<void> {
    this.config = this.parseConfig(this.appConfig.config);
    const context = this.createContext();
    await this.withTimeout('setup', () => this.definition.setup(context));
  }

  /** Runs every hook registered under `name`, in registration order. */
  async run(name: Exclude<HookName, 'setup'>, ...args: unknown[]): Promise<void> {
    for (const hook of this.hooks.get(name) ?? []) {
      await this.withTimeout(name, () => (hook as (...a: unknown[]) => void | Promise<void>)(...args));
    }
  }

  private parseConfig(raw: unknown): unknown {
    const schema = this.definition.configSchema;
    if (schema === undefined) return raw;
    const result = schema.safeParse(raw ?? {});
    if (result.success) return result.data;
    const details = result.error.issues.map((issue) => `apps.${this.name}.config.${issue.path.join('.')}: ${issue.message}`).join('; ');
    throw new KoboldError('KOBOLD_ERR_APP_HOOK', { app: this.name, hook: 'setup', reason: `invalid config: ${details}` });
  }

  private createContext(): AppContext<unknown> {
    const register = (name: HookName) => (hook: Hook) => {
      const list = this.hooks.get(name) ?? [];
      list.push(hook);
      this.hooks.set(name, list);
    };
    const instance = this;
    return {
      name: this.name,
      get config() {
        return instance.config;
      },
      logger: this.logger.child({ app: this.name }),
      workerId: this.workerId,
      serviceName: this.serviceName,
      http: this.routes,
      onReady: register('ready'),
      onConfig: register('config'),
      onDrain: register('drain'),
      onClose: register('close'),
    };
  }

  private async withTimeout(hook: HookName, fn: () => void | Promise<void>): Promise<void> {
    const timeoutMs = hookTimeoutMs(hook);
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
