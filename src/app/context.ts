import type { Logger } from '../log/logger.js';
import type { HttpRoutes } from './http-routes.js';

/** What an app's `setup` receives. One object with one shape for every app and service. */
export interface AppContext<Config = unknown> {
  /** The instance name from the config (several instances of one app differ here). */
  readonly name: string;
  /** The instance's config, validated by the app's `configSchema`. Replaced on config reload. */
  readonly config: Config;
  readonly logger: Logger;
  readonly workerId: number;
  readonly serviceName: string;
  /** HTTP routes, under the instance's prefix and host. */
  readonly http: HttpRoutes;
  /** After every app of the worker finished setup, before the worker reports ready. */
  onReady(hook: () => void | Promise<void>): void;
  /** A new config for this instance (after `kobold reload`); without this hook the worker is restarted instead. */
  onConfig(hook: (config: Config) => void | Promise<void>): void;
  /** Stop taking new work and finish what is in flight. */
  onDrain(hook: () => void | Promise<void>): void;
  /** Release everything setup opened. */
  onClose(hook: () => void | Promise<void>): void;
}
