import type { Hub } from '../hub/types.js';
import type { JobsClient } from '../jobs/client.js';
import type { Logger } from '../log/logger.js';
import type { ShmApi } from '../shm/app-api.js';
import type { SupervisorLink } from '../worker/supervisor-link.js';
import type { HttpRoutes } from './http-routes.js';
import type { LineHandlers, ListenOptions } from './listeners.js';
import type { ResourceRegistry } from './resources.js';
import type { DrainTimers } from './timers.js';
import type { WsRoutes } from './websocket.js';

/** What an app's `setup` receives. One object with one shape for every app and service. */
export interface AppContext<Config = unknown> {
  /** The instance name from the config (several instances of one app differ here). */
  readonly name: string;
  /** The instance's config, validated by the app's `configSchema`; replaced on `kobold reload --config-only`. */
  readonly config: Config;
  readonly logger: Logger;
  readonly workerId: number;
  readonly serviceName: string;
  /** The daemon's run dir (absolute): a place for the app's own files, e.g. an SQLite database. */
  readonly runDir: string;
  /** HTTP routes under the instance's prefix and host, plus body helpers with the service's limits. */
  readonly http: HttpRoutes;
  /** WebSocket routes on the same port. */
  readonly ws: WsRoutes;
  /** A line/stream protocol server on a TCP port or a UNIX socket; resolves with its address. */
  listen(options: ListenOptions, handlers: LineHandlers): Promise<string>;
  /** setTimeout/setInterval that are cleared when the worker drains. */
  readonly timers: DrainTimers;
  /** Resources opened in setup and closed (in reverse order) when the worker closes. */
  readonly resources: ResourceRegistry;
  /** Shared memory across the daemon's processes: rings, tables, locks, queues (see docs/shm.md). */
  readonly shm: ShmApi;
  /** Requests to the master: scale a service, hear when another service's workers exit. */
  readonly supervisor: SupervisorLink;
  /** The job runner: enqueue runs and follow them (docs/jobs.md); `enabled` is false without task modules. */
  readonly jobs: JobsClient;
  /** The real-time hub (publish, subscribe, history, presence, disconnect); absent in the hub writer and when the hub is off. */
  readonly hub?: Hub;
  /** After every app of the worker finished setup, before the worker reports ready. */
  onReady(hook: () => void | Promise<void>): void;
  /** A new config for this instance. Without this hook, a config change restarts the worker instead. */
  onConfig(hook: (config: Config) => void | Promise<void>): void;
  /** Stop taking new work and finish what is in flight. */
  onDrain(hook: () => void | Promise<void>): void;
  /** Release everything setup opened. */
  onClose(hook: () => void | Promise<void>): void;
}
