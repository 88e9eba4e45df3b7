import type { ZodType } from 'zod';
import type { AppContext } from './context.js';

export interface AppDefinition<Config = unknown> {
  /** Names the app in logs and errors; the config's `name` names each instance. */
  name: string;
  /** Validates the instance's `config` from kobold.config; the parsed value is `ctx.config`. */
  configSchema?: ZodType<Config>;
  /** Runs once per worker before it reports ready: register routes, open connections, load data. */
  setup(ctx: AppContext<Config>): void | Promise<void>;
}

const APP_MARK = Symbol.for('kobold.app');

/** Declares an app: `export default defineApp({ name, setup(ctx) { ... } })`. */
export function defineApp<Config = unknown>(definition: AppDefinition<Config>): AppDefinition<Config> {
  return Object.freeze({ ...definition, [APP_MARK]: true });
}

export function isAppDefinition(value: unknown): value is AppDefinition<unknown> {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[APP_MARK] === true;
}
