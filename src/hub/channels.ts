// Channel names (`ns:name`), the namespace each belongs to, and who may do what in it.
import { KoboldError } from '../errors.js';
import type { AccessRule, NamespaceOptions, Principal } from './types.js';

export const MAX_CHANNEL_LENGTH = 255;
const CHANNEL_PATTERN = /^[A-Za-z0-9_\-.:@=,#!~+]+$/;

/** Channels starting with `$` are the hub's own (control messages between nodes). */
export const CONTROL_CHANNEL = '$hub:control';

export function namespaceOf(channel: string): string {
  const colon = channel.indexOf(':');
  return colon === -1 ? '' : channel.slice(0, colon);
}

/** Checks a channel name from outside; throws KOBOLD_ERR_HUB_BAD_CHANNEL naming the problem. */
export function checkChannelName(channel: string): void {
  if (channel.length === 0) throw new KoboldError('KOBOLD_ERR_HUB_BAD_CHANNEL', { channel, reason: 'empty name' });
  if (channel.length > MAX_CHANNEL_LENGTH) {
    throw new KoboldError('KOBOLD_ERR_HUB_BAD_CHANNEL', {
      channel: channel.slice(0, 40) + '…',
      reason: `longer than ${MAX_CHANNEL_LENGTH} characters`,
    });
  }
  if (!CHANNEL_PATTERN.test(channel)) {
    throw new KoboldError('KOBOLD_ERR_HUB_BAD_CHANNEL', {
      channel,
      reason: 'use letters, digits and _-.:@=,#!~+ only',
    });
  }
}

/** Namespaces by name, resolved once at setup. */
export class NamespaceTable {
  private readonly byName = new Map<string, NamespaceOptions>();

  constructor(namespaces: readonly NamespaceOptions[]) {
    for (const namespace of namespaces) this.byName.set(namespace.name, namespace);
  }

  /** The channel's namespace, or undefined when it has none (the channel is unknown). */
  find(channel: string): NamespaceOptions | undefined {
    return this.byName.get(namespaceOf(channel));
  }

  /** The channel's namespace; throws for a bad name or an unknown namespace. */
  resolve(channel: string): NamespaceOptions {
    checkChannelName(channel);
    const namespace = this.find(channel);
    if (namespace === undefined) {
      throw new KoboldError('KOBOLD_ERR_HUB_UNKNOWN_NAMESPACE', { namespace: namespaceOf(channel), channel });
    }
    return namespace;
  }

  list(): NamespaceOptions[] {
    return [...this.byName.values()];
  }
}

export function isAllowed(rule: AccessRule, principal: Principal, channel: string): boolean {
  if (rule === 'anyone') return true;
  if (rule === 'nobody') return false;
  if (principal.userId === '') return false;
  if (rule === 'user') return true;
  if (rule === 'owner') return channel.slice(channel.indexOf(':') + 1) === principal.userId;
  if (rule === 'token') return tokenGrants(principal.channels, channel);
  return rule.roles.some((role) => principal.roles.includes(role));
}

function tokenGrants(granted: readonly string[], channel: string): boolean {
  const wildcard = namespaceOf(channel) + ':*';
  return granted.includes(channel) || granted.includes(wildcard);
}

export type Action = 'subscribe' | 'publish' | 'seePresence' | 'seeHistory';

const ACTION_WORDS: Record<Action, string> = {
  subscribe: 'subscribe to',
  publish: 'publish to',
  seePresence: 'see presence of',
  seeHistory: 'see history of',
};

/** Throws KOBOLD_ERR_HUB_FORBIDDEN unless the namespace's rule for the action admits the principal. */
export function checkAccess(namespace: NamespaceOptions, action: Action, principal: Principal, channel: string): void {
  if (!isAllowed(namespace[action], principal, channel)) {
    throw new KoboldError('KOBOLD_ERR_HUB_FORBIDDEN', { action: ACTION_WORDS[action], channel });
  }
}
