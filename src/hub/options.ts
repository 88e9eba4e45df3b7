// Hub options: every limit with its default, validated once at the edge, then frozen.
import { z } from 'zod';
import { KoboldError } from '../errors.js';
import type { NamespaceOptions } from './types.js';

const accessRule = z.union([
  z.enum(['anyone', 'user', 'owner', 'token', 'nobody']),
  z.object({ roles: z.array(z.string().min(1)).min(1) }).strict(),
]);

export const NAMESPACE_DEFAULTS: Omit<NamespaceOptions, 'name'> = Object.freeze({
  historySize: 100,
  historyTtlMs: 10 * 60_000,
  presence: false,
  joinLeave: false,
  subscribe: 'user',
  publish: 'nobody',
  seePresence: 'user',
  seeHistory: 'user',
});

export const namespaceSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_\-.]*$/, 'letters, digits, _ - . only'),
    historySize: z.number().int().min(0).max(1_000_000).default(NAMESPACE_DEFAULTS.historySize),
    historyTtlMs: z.number().int().positive().default(NAMESPACE_DEFAULTS.historyTtlMs),
    presence: z.boolean().default(NAMESPACE_DEFAULTS.presence),
    joinLeave: z.boolean().default(NAMESPACE_DEFAULTS.joinLeave),
    subscribe: accessRule.default(NAMESPACE_DEFAULTS.subscribe as z.infer<typeof accessRule>),
    publish: accessRule.default(NAMESPACE_DEFAULTS.publish as z.infer<typeof accessRule>),
    seePresence: accessRule.default(NAMESPACE_DEFAULTS.seePresence as z.infer<typeof accessRule>),
    seeHistory: accessRule.default(NAMESPACE_DEFAULTS.seeHistory as z.infer<typeof accessRule>),
  })
  .strict();

export type NamespaceInput = z.input<typeof namespaceSchema>;

export interface HubLimits {
  maxMessageBytes: number;
  maxSubscriptionsPerConnection: number;
  commandsPerSecond: number;
  commandBurst: number;
  maxQueueBytes: number;
  slowConsumerPolicy: 'drop' | 'disconnect';
  writeHighWaterBytes: number;
  writeDelayMs: number;
  maxHistoryPublications: number;
  sseHeartbeatMs: number;
  longPollTimeoutMs: number;
  webSocketPingMs: number;
}

/** Defaults of every limit; each is documented in docs/protocol.md. */
export const HUB_LIMIT_DEFAULTS: Readonly<HubLimits> = Object.freeze({
  /** Largest client command (bytes of JSON). */
  maxMessageBytes: 64 * 1024,
  maxSubscriptionsPerConnection: 128,
  /** Sustained command rate per connection; bursts up to `commandBurst`. */
  commandsPerSecond: 50,
  commandBurst: 100,
  /** Bytes waiting for one connection before the slow-consumer policy applies. */
  maxQueueBytes: 1024 * 1024,
  /** `drop`: drop the oldest publications and send a gap marker; `disconnect`: close (code 3001). */
  slowConsumerPolicy: 'drop',
  /** Stop handing frames to a transport whose own buffer holds more than this. */
  writeHighWaterBytes: 256 * 1024,
  /**
   * 0: what is due to a connection leaves at the end of the event-loop turn. N: it waits up
   * to N ms, so a connection that gets messages often gets several per write (fewer system
   * calls, up to N ms more latency).
   */
  writeDelayMs: 0,
  /** Most publications sent back on a resume or a history read. */
  maxHistoryPublications: 1000,
  sseHeartbeatMs: 15_000,
  longPollTimeoutMs: 25_000,
  webSocketPingMs: 25_000,
});

export const limitsSchema = z
  .object({
    maxMessageBytes: z.number().int().min(256),
    maxSubscriptionsPerConnection: z.number().int().min(1),
    commandsPerSecond: z.number().positive(),
    commandBurst: z.number().int().min(1),
    maxQueueBytes: z.number().int().min(1024),
    slowConsumerPolicy: z.enum(['drop', 'disconnect']),
    writeHighWaterBytes: z.number().int().min(1024),
    writeDelayMs: z.number().int().min(0).max(1000),
    maxHistoryPublications: z.number().int().min(1),
    sseHeartbeatMs: z.number().int().min(100),
    longPollTimeoutMs: z.number().int().min(100),
    webSocketPingMs: z.number().int().min(100),
  })
  .partial()
  .strict();

export interface HubOptionsInput {
  namespaces?: NamespaceInput[];
  limits?: Partial<HubLimits>;
}

export interface HubOptions {
  readonly namespaces: readonly NamespaceOptions[];
  readonly limits: Readonly<HubLimits>;
}

/** One namespace with defaults filled; for tests and code that builds namespaces by hand. */
export function namespace(input: NamespaceInput): NamespaceOptions {
  return resolveHubOptions({ namespaces: [input] }).namespaces[0];
}

/** Validates hub options, naming the bad option, and fills defaults. */
export function resolveHubOptions(input: HubOptionsInput = {}): HubOptions {
  const schema = z.object({ namespaces: z.array(namespaceSchema).default([]), limits: limitsSchema.default({}) }).strict();
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new KoboldError('KOBOLD_ERR_HUB_OPTIONS', { option: issue.path.join('.') || '(root)', reason: issue.message });
  }
  const problem = namespaceProblems(parsed.data.namespaces)[0];
  if (problem !== undefined) throw new KoboldError('KOBOLD_ERR_HUB_OPTIONS', { option: problem.path.join('.'), reason: problem.message });
  return deepFreeze({
    namespaces: parsed.data.namespaces as NamespaceOptions[],
    limits: { ...HUB_LIMIT_DEFAULTS, ...parsed.data.limits },
  });
}

/** Checks across namespaces (also used by the config schema): names listed twice, joinLeave without presence. */
export function namespaceProblems(namespaces: readonly { name: string; presence: boolean; joinLeave: boolean }[]): { path: (string | number)[]; message: string }[] {
  const problems: { path: (string | number)[]; message: string }[] = [];
  const names = new Set<string>();
  namespaces.forEach((ns, index) => {
    if (names.has(ns.name)) problems.push({ path: ['namespaces', index, 'name'], message: `"${ns.name}" listed twice` });
    names.add(ns.name);
    if (ns.joinLeave && !ns.presence) problems.push({ path: ['namespaces', index, 'joinLeave'], message: 'needs presence: true' });
  });
  return problems;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
