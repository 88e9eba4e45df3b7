import { availableParallelism } from 'node:os';

// One place for every default. The schema in schema.ts fills these in, so a config
// file only names what it changes.

export const CORES = availableParallelism();

export const daemonDefaults = {
  runDir: '.kobold',
  logLevel: 'info',
  gracefulTimeoutMs: 30_000,
  heartbeatIntervalMs: 1_000,
  heartbeatTimeoutMs: 10_000,
  startTimeoutMs: 30_000,
  /** node:cluster's: `rr` (the master accepts and hands each connection to a worker) or `none` (workers accept themselves). */
  clusterSchedulingPolicy: 'rr',
  /**
   * V8's young-generation semi-space cap for workers, in MiB (V8's own is 16 MiB on 64-bit).
   * Workers hold many idle connections: a burst of them grows the young generation to its
   * cap and the pages stay resident, 2 x 16 MiB per worker. At 4 MiB the hub measured the
   * same CPU per delivery (bench/hub/scenario.bench.ts) and a plain HTTP route the same req/s.
   */
  workerMaxSemiSpaceMb: 4,
  /**
   * The same for the master, set when `kobold start` launches it (a foreground master runs
   * with its own command line's flags). With `clusterSchedulingPolicy: rr` it hands over every
   * new connection; V8's default let a burst of 6,000 grow it by ~12 MiB, 1 MiB by ~3 MiB, at
   * the same CPU.
   */
  masterMaxSemiSpaceMb: 1,
} as const;

export const serviceDefaults = {
  role: 'http',
  host: '127.0.0.1',
  port: 8080,
  minWorkers: 1,
  maxWorkers: CORES,
} as const;

export const limitDefaults = {
  maxRequests: 0, // 0 = no limit
  maxRequestsJitter: 0,
  maxMemoryMb: 0,
  maxIdleMs: 0,
  maxLifetimeMs: 0,
} as const;

export const restartDefaults = {
  backoffInitialMs: 100,
  backoffMaxMs: 30_000,
  crashLimit: 5,
  crashWindowMs: 60_000,
} as const;

export const scalingDefaults = {
  enabled: true,
  windowMs: 10_000,
  highElu: 0.8,
  lowElu: 0.2,
  cooldownMs: 15_000,
} as const;

export const httpDefaults = {
  keepAliveTimeoutMs: 5_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  maxConnections: 10_000,
  maxBodyBytes: 1024 * 1024,
  maxFileBytes: 10 * 1024 * 1024,
  maxFiles: 10,
  maxFields: 100,
} as const;

export const websocketDefaults = {
  maxPayloadBytes: 1024 * 1024,
  pingIntervalMs: 30_000,
  sendBufferBytes: 1024 * 1024,
  slowConsumer: 'close',
} as const;

export const hookTimeoutDefaults = {
  setupMs: 30_000,
  readyMs: 10_000,
  configMs: 10_000,
  drainMs: 30_000,
  closeMs: 10_000,
} as const;

/** The service every default config runs. */
export const DEFAULT_SERVICE_NAME = 'web';

/** Exit code a worker uses to say "don't restart me": the error will not go away by itself. */
export const EXIT_NO_RESPAWN = 78;
