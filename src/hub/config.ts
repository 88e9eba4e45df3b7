// The `hub` section of kobold.config: every option with its default. configSchema
// (config/schema.ts) validates it with the rest, so `kobold configtest` names a bad hub
// option by its path (e.g. `hub.namespaces.0.joinLeave`).
import { resolve } from 'node:path';
import { z } from 'zod';
import { segmentPrefix } from '../shm/app-api.js';
import { shmAvailable, unavailableReason } from '../shm/native.js';
import { limitsSchema, namespaceProblems, namespaceSchema } from './options.js';

const pathPrefix = z.string().regex(/^\/[^?#]*[^/?#]$/, 'a path starting with "/" and not ending with "/"');

export const hubConfigDefaults = {
  enabled: true,
  pathPrefix: '/hub',
  apiPrefix: '/api',
  tokenRequireExpiry: true,
  maxApiBodyBytes: 1024 * 1024,
  publishSocketEnabled: true,
  publishSocketMode: 0o660,
  writerRequestTimeoutMs: 5_000,
  writerConnectTimeoutMs: 10_000,
  serveClientBundle: true,
  ring: { records: 32_768, recordBytes: 512, persistent: false },
} as const;

const ringSchema = z
  .object({
    /** Records the ring keeps (a power of two): the log's window for history read in place and for recovery. */
    records: z
      .number()
      .int()
      .min(64)
      .max(1 << 24)
      .refine((n) => (n & (n - 1)) === 0, 'a power of two')
      .default(hubConfigDefaults.ring.records),
    /** Bytes per record (a multiple of 8); a larger publication takes several records, up to a quarter of the ring. */
    recordBytes: z
      .number()
      .int()
      .min(64)
      .max(1 << 20)
      .refine((n) => n % 8 === 0, 'a multiple of 8')
      .default(hubConfigDefaults.ring.recordBytes),
    /** Keep the ring in a file (`<runDir>/hub.ring`) instead of /dev/shm, so history survives `kobold restart` and reboots. */
    persistent: z.boolean().default(hubConfigDefaults.ring.persistent),
    /** The ring's segment: a /dev/shm name, or a file path (relative to runDir). Default: private to the daemon, or `hub.ring` when persistent. */
    segment: z.string().min(1).optional(),
    /** The UNIX socket that wakes ring readers; default `<runDir>/hub-ring.sock`. */
    doorbellPath: z.string().min(1).optional(),
  })
  .strict();

export const hubConfigSchema = z
  .object({
    /** Run the hub: a `hub` singleton service (the writer) and the transports in every `http` service. */
    enabled: z.boolean().default(hubConfigDefaults.enabled),
    /** Where the transports live: `<pathPrefix>/ws`, `/sse`, `/poll`, `/refresh`, `/command`, `/client.js`. */
    pathPrefix: pathPrefix.default(hubConfigDefaults.pathPrefix),
    /** Where the server HTTP API lives: `<apiPrefix>/publish`, `/broadcast`, `/presence`, `/history`, `/disconnect`. */
    apiPrefix: pathPrefix.default(hubConfigDefaults.apiPrefix),
    /** Channel namespaces; a channel outside every namespace is refused. */
    namespaces: z.array(namespaceSchema).default([]),
    /** Per-connection limits (docs/protocol.md lists each default). */
    limits: limitsSchema.prefault({}),
    /** HMAC secret of the HS256 tokens the site issues (at least 32 bytes). Without it only anonymous connections work. */
    tokenSecret: z.string().min(32, 'at least 32 characters').optional(),
    /** Refuse tokens without `exp`. */
    tokenRequireExpiry: z.boolean().default(hubConfigDefaults.tokenRequireExpiry),
    tokenIssuer: z.string().min(1).optional(),
    tokenAudience: z.string().min(1).optional(),
    /** Key of the server HTTP API (at least 16 characters). Without it the API answers 403. */
    apiKey: z.string().min(16, 'at least 16 characters').optional(),
    maxApiBodyBytes: z.number().int().positive().default(hubConfigDefaults.maxApiBodyBytes),
    /** The writer's UNIX socket for web workers; default `<runDir>/hub.sock`. */
    writerSocketPath: z.string().min(1).optional(),
    /** The newline-delimited JSON publisher socket; default `<runDir>/publish.sock`. */
    publishSocketPath: z.string().min(1).optional(),
    publishSocketEnabled: z.boolean().default(hubConfigDefaults.publishSocketEnabled),
    /** File mode of the publish socket: who may publish. */
    publishSocketMode: z.number().int().min(0).max(0o777).default(hubConfigDefaults.publishSocketMode),
    /** A web worker's request to the writer fails after this (KOBOLD_ERR_HUB_TIMEOUT). */
    writerRequestTimeoutMs: z.number().int().positive().default(hubConfigDefaults.writerRequestTimeoutMs),
    /** A web worker that cannot reach the writer within this at start starts without it (and follows it once it greets). */
    writerConnectTimeoutMs: z.number().int().positive().default(hubConfigDefaults.writerConnectTimeoutMs),
    /** Serve the browser client at `<pathPrefix>/client.js`. */
    serveClientBundle: z.boolean().default(hubConfigDefaults.serveClientBundle),
    /**
     * How the writer hands the log to web workers: `shm` writes it once to a shared-memory ring
     * they read in place; `socket` sends it to each over its UNIX socket. Default: `shm` when
     * shared memory works on this machine, else `socket`.
     */
    backend: z.enum(['shm', 'socket']).optional(),
    /** The `shm` backend's ring. */
    ring: ringSchema.prefault({}),
  })
  .strict()
  .superRefine((hub, ctx) => {
    for (const problem of namespaceProblems(hub.namespaces)) ctx.addIssue({ code: 'custom', path: problem.path, message: problem.message });
    if (hub.pathPrefix === hub.apiPrefix) ctx.addIssue({ code: 'custom', path: ['apiPrefix'], message: 'must differ from pathPrefix' });
  })
  .prefault({});

export type HubConfigInput = z.input<typeof hubConfigSchema>;
export type HubConfig = z.output<typeof hubConfigSchema>;

/** The hub config with its socket paths made absolute: what the writer app and the web workers share. */
export interface HubSettings extends Omit<HubConfig, 'writerSocketPath' | 'publishSocketPath' | 'ring'> {
  readonly writerSocketPath: string;
  readonly publishSocketPath: string;
  readonly ring: HubConfig['ring'] & { readonly segment: string; readonly doorbellPath: string };
}

/**
 * Fills the paths: defaults in `runDir`, relative ones against it. The default ring is a
 * /dev/shm segment named after runDir, so the master removes it when the daemon stops.
 */
export function resolveHubSettings(hub: HubConfig, runDir: string): HubSettings {
  const at = (path: string | undefined, fallback: string) => resolve(runDir, path ?? fallback);
  const segment = hub.ring.segment ?? (hub.ring.persistent ? 'hub.ring' : `${segmentPrefix(runDir)}hub.ring`);
  return {
    ...hub,
    writerSocketPath: at(hub.writerSocketPath, 'hub.sock'),
    publishSocketPath: at(hub.publishSocketPath, 'publish.sock'),
    ring: {
      ...hub.ring,
      segment: hub.ring.persistent || segment.includes('/') ? resolve(runDir, segment) : segment,
      doorbellPath: at(hub.ring.doorbellPath, 'hub-ring.sock'),
    },
  };
}

/** The backend the writer runs, and why it is `socket` when `shm` was wanted but shared memory is unavailable. */
export function chooseHubBackend(configured: HubConfig['backend']): { backend: 'shm' | 'socket'; fallbackReason?: string } {
  if (configured === 'socket') return { backend: 'socket' };
  if (shmAvailable()) return { backend: 'shm' };
  return { backend: 'socket', fallbackReason: unavailableReason() };
}
