// The `hub` section of kobold.config: every option with its default. configSchema
// (config/schema.ts) validates it with the rest, so `kobold configtest` names a bad hub
// option by its path (e.g. `hub.namespaces.0.joinLeave`).
import { resolve } from 'node:path';
import { z } from 'zod';
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
} as const;

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
    /** A web worker that cannot reach the writer within this at start fails to start. */
    writerConnectTimeoutMs: z.number().int().positive().default(hubConfigDefaults.writerConnectTimeoutMs),
    /** Serve the browser client at `<pathPrefix>/client.js`. */
    serveClientBundle: z.boolean().default(hubConfigDefaults.serveClientBundle),
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
export interface HubSettings extends Omit<HubConfig, 'writerSocketPath' | 'publishSocketPath'> {
  readonly writerSocketPath: string;
  readonly publishSocketPath: string;
}

/** Fills the socket paths: defaults in `runDir`, relative ones against it. */
export function resolveHubSettings(hub: HubConfig, runDir: string): HubSettings {
  const at = (path: string | undefined, fallback: string) => resolve(runDir, path ?? fallback);
  return {
    ...hub,
    writerSocketPath: at(hub.writerSocketPath, 'hub.sock'),
    publishSocketPath: at(hub.publishSocketPath, 'publish.sock'),
  };
}
