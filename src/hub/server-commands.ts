// Commands from trusted servers (the HTTP API and the UNIX-socket publisher): no access
// rules apply, the caller is the site itself. One schema and one executor for both.
import { z } from 'zod';
import { KoboldError } from '../errors.js';
import { MAX_CHANNEL_LENGTH } from './channels.js';
import type { HubNode } from './node.js';
import { encodeHistoryResult, encodePresenceResult, position } from './protocol.js';

const channel = z.string().min(1).max(MAX_CHANNEL_LENGTH);

export const serverCommand = z.discriminatedUnion('method', [
  z.object({ method: z.literal('publish'), channel, data: z.unknown() }).strict(),
  z.object({ method: z.literal('broadcast'), channels: z.array(channel).min(1).max(1000), data: z.unknown() }).strict(),
  z.object({ method: z.literal('presence'), channel }).strict(),
  z.object({ method: z.literal('history'), channel, limit: z.number().int().min(0).optional(), since: position.optional() }).strict(),
  z.object({ method: z.literal('disconnect'), user: z.string().min(1), reconnect: z.boolean().optional() }).strict(),
]);
export type ServerCommand = z.infer<typeof serverCommand>;
export const SERVER_METHODS = serverCommand.options.map((option) => option.shape.method.value) as string[];

/** Validates a server command, naming the bad field. */
export function parseServerCommand(value: unknown): ServerCommand {
  const method = (value as { method?: unknown } | null)?.method;
  if (typeof method === 'string' && !SERVER_METHODS.includes(method)) {
    throw new KoboldError('KOBOLD_ERR_HUB_UNKNOWN_COMMAND', { command: method.slice(0, 40) });
  }
  const parsed = serverCommand.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue.path.length > 0 ? `field "${issue.path.join('.')}": ` : '';
    throw new KoboldError('KOBOLD_ERR_HUB_BAD_COMMAND', { reason: field + issue.message });
  }
  return parsed.data;
}

/**
 * The common line, checked by hand: a publish that `serverCommand` accepts as it is
 * (an `id` key aside). Anything else, null: parseServerCommand() then names the problem.
 */
export function asPublishCommand(value: Record<string, unknown>): { channel: string; data: unknown } | null {
  for (const key in value) if (key !== 'method' && key !== 'channel' && key !== 'data' && key !== 'id') return null;
  const { method, channel, data } = value;
  if (method !== 'publish' || typeof channel !== 'string' || channel.length < 1 || channel.length > MAX_CHANNEL_LENGTH || data === undefined) return null;
  return { channel, data };
}

/**
 * Runs a publish; without a promise when the backend assigns positions itself (the
 * writer's own state: HubNode.publishNow).
 */
export function runPublish(node: HubNode, channel: string, data: unknown): string | Promise<string> {
  const assigned = node.publishNow(channel, data);
  if (assigned === null) return node.publish(channel, data).then((position) => JSON.stringify(position));
  return '{"offset":' + assigned.offset + ',"epoch":' + JSON.stringify(assigned.epoch) + '}';
}

/** Runs a server command; resolves with the result as JSON text. */
export async function runServerCommand(node: HubNode, command: ServerCommand): Promise<string> {
  switch (command.method) {
    case 'publish':
      return runPublish(node, command.channel, command.data);
    case 'broadcast': {
      // Check every channel first, so a bad one fails the whole broadcast before anything is sent.
      for (const name of command.channels) node.namespaces.resolve(name);
      const positions = await Promise.all(command.channels.map((name) => node.publish(name, command.data)));
      return JSON.stringify({ positions: Object.fromEntries(command.channels.map((name, i) => [name, positions[i]])) });
    }
    case 'presence': {
      const [users, counts] = await Promise.all([node.presence(command.channel), node.presenceCounts(command.channel)]);
      return encodePresenceResult(users, counts);
    }
    case 'history': {
      const max = node.options.limits.maxHistoryPublications;
      return encodeHistoryResult(await node.history(command.channel, { limit: Math.min(command.limit ?? max, max), since: command.since }));
    }
    case 'disconnect':
      await node.disconnect(command.user, { reconnect: command.reconnect });
      return '{}';
  }
}
