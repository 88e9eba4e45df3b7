import { z } from 'zod';
import { jobsConfigSchema } from '../jobs/config.js';
import { hubConfigSchema } from '../hub/config.js';
import {
  daemonDefaults,
  DEFAULT_SERVICE_NAME,
  hookTimeoutDefaults,
  httpDefaults,
  limitDefaults,
  restartDefaults,
  scalingDefaults,
  serviceDefaults,
  websocketDefaults,
} from './defaults.js';

const positiveMs = z.number().int().positive();
const nonNegative = z.number().int().nonnegative();
const name = z.string().regex(/^[a-z][a-z0-9_-]*$/i, 'a name of letters, digits, "-" or "_", starting with a letter');

export const limitsSchema = z
  .object({
    maxRequests: nonNegative.default(limitDefaults.maxRequests),
    maxRequestsJitter: nonNegative.default(limitDefaults.maxRequestsJitter),
    maxMemoryMb: nonNegative.default(limitDefaults.maxMemoryMb),
    maxIdleMs: nonNegative.default(limitDefaults.maxIdleMs),
    maxLifetimeMs: nonNegative.default(limitDefaults.maxLifetimeMs),
  })
  .strict()
  .prefault({});

export const restartSchema = z
  .object({
    backoffInitialMs: positiveMs.default(restartDefaults.backoffInitialMs),
    backoffMaxMs: positiveMs.default(restartDefaults.backoffMaxMs),
    crashLimit: z.number().int().min(1).default(restartDefaults.crashLimit),
    crashWindowMs: positiveMs.default(restartDefaults.crashWindowMs),
  })
  .strict()
  .prefault({});

/** What a scaling policy sees; it answers with the worker count it wants. */
export interface ScalingInput {
  service: string;
  workers: number;
  minWorkers: number;
  maxWorkers: number;
  /** Mean event-loop utilization (0..1) of the service's workers over the window. */
  elu: number;
  /** Requests in flight summed over the service's workers, at the last heartbeat. */
  inFlight: number;
}
export type ScalingPolicy = (input: ScalingInput) => number;

export const scalingSchema = z
  .object({
    enabled: z.boolean().default(scalingDefaults.enabled),
    windowMs: positiveMs.default(scalingDefaults.windowMs),
    highElu: z.number().gt(0).max(1).default(scalingDefaults.highElu),
    lowElu: z.number().min(0).lt(1).default(scalingDefaults.lowElu),
    cooldownMs: nonNegative.default(scalingDefaults.cooldownMs),
    policy: z.custom<ScalingPolicy>((value) => typeof value === 'function', 'a function').optional(),
  })
  .strict()
  .prefault({})
  .refine((s) => s.lowElu < s.highElu, { message: 'lowElu must be below highElu', path: ['lowElu'] });

export const httpSchema = z
  .object({
    keepAliveTimeoutMs: positiveMs.default(httpDefaults.keepAliveTimeoutMs),
    headersTimeoutMs: positiveMs.default(httpDefaults.headersTimeoutMs),
    requestTimeoutMs: nonNegative.default(httpDefaults.requestTimeoutMs),
    maxConnections: z.number().int().positive().default(httpDefaults.maxConnections),
    /** Largest request body the body helpers accept (413 above). */
    maxBodyBytes: z.number().int().positive().default(httpDefaults.maxBodyBytes),
    /** Multipart uploads: per file, files per request, non-file fields per request. */
    maxFileBytes: z.number().int().positive().default(httpDefaults.maxFileBytes),
    maxFiles: z.number().int().nonnegative().default(httpDefaults.maxFiles),
    maxFields: z.number().int().nonnegative().default(httpDefaults.maxFields),
  })
  .strict()
  .prefault({});

export const websocketSchema = z
  .object({
    /** A larger incoming message closes the connection with 1009. */
    maxPayloadBytes: z.number().int().positive().default(websocketDefaults.maxPayloadBytes),
    /** Ping this often; a connection that missed the previous pong is terminated. 0 = off. */
    pingIntervalMs: nonNegative.default(websocketDefaults.pingIntervalMs),
    /** Bytes queued for a client beyond which it counts as a slow consumer. */
    sendBufferBytes: z.number().int().positive().default(websocketDefaults.sendBufferBytes),
    /** What happens to a slow consumer's next message: `drop` it, or `close` the connection (1008). */
    slowConsumer: z.enum(['drop', 'close']).default(websocketDefaults.slowConsumer),
  })
  .strict()
  .prefault({});

export const serviceSchema = z
  .object({
    /**
     * `http`: workers share `host:port` through node:cluster and serve the service's apps.
     * `singleton`: exactly one worker (the hub, the job dispatcher). `pool`: warm workers that a
     * dispatcher leases work to. `daemon`: N workers running app loops (queue consumers).
     * Only `http` listens on the service's port.
     */
    role: z.enum(['http', 'singleton', 'pool', 'daemon']).default(serviceDefaults.role),
    host: z.string().min(1).default(serviceDefaults.host),
    port: z.number().int().min(0).max(65535).default(serviceDefaults.port),
    /** Workers at start; defaults to maxWorkers. */
    workers: z.number().int().positive().optional(),
    minWorkers: z.number().int().positive().default(serviceDefaults.minWorkers),
    /** Defaults to the number of cores (1 for a singleton). */
    maxWorkers: z.number().int().positive().optional(),
    /** Overrides the daemon's heartbeatTimeoutMs for this service (e.g. workers running long CPU-bound tasks). */
    heartbeatTimeoutMs: positiveMs.optional(),
    limits: limitsSchema,
    restart: restartSchema,
    scaling: scalingSchema,
    http: httpSchema,
    websocket: websocketSchema,
  })
  .strict()
  // Cross-field checks run even when another field failed, so one pass reports every problem.
  .superRefine(
    (service, ctx) => {
      const { minWorkers: min, maxWorkers: givenMax, workers, role } = service as Partial<Record<'minWorkers' | 'maxWorkers' | 'workers' | 'role', unknown>>;
      const max = givenMax ?? (role === 'singleton' ? 1 : serviceDefaults.maxWorkers);
      if (role === 'singleton' && [min, givenMax, workers].some((n) => n !== undefined && n !== 1)) {
        ctx.addIssue({ code: 'custom', path: ['role'], message: 'a singleton service has exactly one worker: leave workers/minWorkers/maxWorkers unset or 1' });
      } else if (typeof min === 'number' && typeof max === 'number' && min > max) {
        ctx.addIssue({ code: 'custom', path: ['minWorkers'], message: `minWorkers (${min}) is above maxWorkers (${max})` });
      } else if (typeof workers === 'number' && typeof min === 'number' && typeof max === 'number' && (workers < min || workers > max)) {
        ctx.addIssue({ code: 'custom', path: ['workers'], message: `workers (${workers}) must be between minWorkers (${min}) and maxWorkers (${max})` });
      }
    },
    { when: () => true },
  )
  .transform((service) =>
    service.role === 'singleton'
      ? { ...service, workers: 1, minWorkers: 1, maxWorkers: 1, scaling: { ...service.scaling, enabled: false } }
      : { ...service, maxWorkers: service.maxWorkers ?? serviceDefaults.maxWorkers, workers: service.workers ?? service.maxWorkers ?? serviceDefaults.maxWorkers },
  );

export const appSchema = z
  .object({
    /** Instance name: several instances of one module may run with different names and config. */
    name,
    /** Path of the app module (.ts or .js; relative to the config file), or `kobold:NAME` for a built-in app. */
    module: z.string().min(1),
    service: name.default(DEFAULT_SERVICE_NAME),
    /** Answer only requests for this Host (without port); any host when absent. */
    host: z.string().min(1).optional(),
    /** Answer only under this path prefix, e.g. "/chat". */
    prefix: z.string().regex(/^\/([^?#]*[^/?#])?$/, 'a path starting with "/" and not ending with "/"').default('/'),
    /** The app's own options, validated by the app's schema. */
    config: z.unknown().optional(),
    /** How long each lifecycle hook may take before the worker gives up on it. */
    timeouts: z
      .object({
        setupMs: positiveMs.default(hookTimeoutDefaults.setupMs),
        readyMs: positiveMs.default(hookTimeoutDefaults.readyMs),
        configMs: positiveMs.default(hookTimeoutDefaults.configMs),
        drainMs: positiveMs.default(hookTimeoutDefaults.drainMs),
        closeMs: positiveMs.default(hookTimeoutDefaults.closeMs),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export const configSchema = z
  .object({
    runDir: z.string().min(1).default(daemonDefaults.runDir),
    pidFile: z.string().min(1).optional(),
    controlSocket: z.string().min(1).optional(),
    /** JSON lines go here; without it a foreground daemon logs to stdout. */
    logFile: z.string().min(1).optional(),
    logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default(daemonDefaults.logLevel),
    user: z.string().min(1).optional(),
    group: z.string().min(1).optional(),
    gracefulTimeoutMs: positiveMs.default(daemonDefaults.gracefulTimeoutMs),
    heartbeatIntervalMs: positiveMs.default(daemonDefaults.heartbeatIntervalMs),
    heartbeatTimeoutMs: positiveMs.default(daemonDefaults.heartbeatTimeoutMs),
    startTimeoutMs: positiveMs.default(daemonDefaults.startTimeoutMs),
    /**
     * `rr`: the master accepts every connection and passes it to a worker (even spread, a
     * hand-off per connection); `none`: workers accept on the shared socket themselves.
     * Read at start, not on reload.
     */
    clusterSchedulingPolicy: z.enum(['rr', 'none']).default(daemonDefaults.clusterSchedulingPolicy),
    /**
     * Caps V8's young generation in every worker (`--max-semi-space-size`, MiB). A burst of
     * connections grows it to V8's maximum and the pages stay resident afterwards; a small cap
     * keeps idle connections cheap. Default 4; 0: V8's default. Read at start, not on reload.
     */
    workerMaxSemiSpaceMb: nonNegative.default(daemonDefaults.workerMaxSemiSpaceMb),
    /** The same for the master, when `kobold start` launches it. Default 1; 0: V8's default. */
    masterMaxSemiSpaceMb: nonNegative.default(daemonDefaults.masterMaxSemiSpaceMb),
    /** `kobold console`: a REPL socket per worker in `<runDir>/console/` (mode 0600). */
    console: z.boolean().default(true),
    services: z.record(name, serviceSchema).prefault({ [DEFAULT_SERVICE_NAME]: {} } as never),
    /** Without `apps`, loadConfig fills in the chat demo (src/config/demo.ts). */
    apps: z.array(appSchema).default([]),
    /** Job runner (src/jobs/config.ts, docs/jobs.md): on when `jobs.taskModules` is set. */
    jobs: jobsConfigSchema,
    /** Real-time hub (src/hub/config.ts, docs/protocol.md). */
    hub: hubConfigSchema,
  })
  .strict()
  .superRefine(checkCrossReferences, { when: () => true });

/** Checks across keys; runs on partly invalid input too, so it only trusts what it tests. */
function checkCrossReferences(value: unknown, ctx: z.RefinementCtx): void {
  const config = value as { heartbeatTimeoutMs?: unknown; heartbeatIntervalMs?: unknown; services?: unknown; apps?: unknown };
  if (typeof config.heartbeatTimeoutMs === 'number' && typeof config.heartbeatIntervalMs === 'number' && config.heartbeatTimeoutMs <= config.heartbeatIntervalMs) {
    ctx.addIssue({ code: 'custom', path: ['heartbeatTimeoutMs'], message: 'must be longer than heartbeatIntervalMs' });
  }
  const services =
    config.services === undefined ? [DEFAULT_SERVICE_NAME] : config.services !== null && typeof config.services === 'object' ? Object.keys(config.services) : null;
  if (services !== null && services.length === 0) ctx.addIssue({ code: 'custom', path: ['services'], message: 'at least one service is needed' });
  if (!Array.isArray(config.apps)) return;
  const appNames = new Set<unknown>();
  config.apps.forEach((app: { name?: unknown; service?: unknown } | null, index) => {
    if (app === null || typeof app !== 'object') return;
    if (appNames.has(app.name)) ctx.addIssue({ code: 'custom', path: ['apps', index, 'name'], message: `app name "${String(app.name)}" is used twice` });
    appNames.add(app.name);
    const service = app.service ?? DEFAULT_SERVICE_NAME;
    if (services !== null && typeof service === 'string' && !services.includes(service)) {
      ctx.addIssue({ code: 'custom', path: ['apps', index, 'service'], message: `no service named "${service}" (services: ${services.join(', ')})` });
    }
  });
}

/** What a config file may contain (every key optional). */
export type KoboldConfigInput = z.input<typeof configSchema>;
/** A validated config with every default filled in. */
export type KoboldConfig = z.output<typeof configSchema>;
export type ServiceConfig = KoboldConfig['services'][string];
export type LimitsConfig = ServiceConfig['limits'];
export type RestartConfig = ServiceConfig['restart'];
export type ScalingConfig = ServiceConfig['scaling'];
export type HttpConfig = ServiceConfig['http'];
export type WebSocketConfig = ServiceConfig['websocket'];
export type AppConfig = KoboldConfig['apps'][number];

/** Typed helper for config files: `export default defineConfig({ ... })`. */
export function defineConfig(config: KoboldConfigInput): KoboldConfigInput {
  return config;
}
