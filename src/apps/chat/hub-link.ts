// The chat's link to the hub (`ctx.hub`): checked once at setup.
import { KoboldError } from '../../errors.js';
import type { Hub } from '../../hub/types.js';
import { CHAT_CHANNELS } from './config.js';

/** A HubNode also says which namespaces it has and which token secret it checks. */
interface HubNodeLike extends Hub {
  namespaces?: { find(channel: string): { presence: boolean; subscribe: unknown } | undefined };
  backendOptions?: { auth?: { secret?: string } };
}

/** ctx.hub, checked: present, with the chat's namespaces; and the secret to sign tokens with. */
export function linkHub(ctx: object, configuredSecret: string | undefined): { hub: Hub; secret: string } {
  const hub = (ctx as { hub?: HubNodeLike }).hub;
  if (hub === undefined || typeof hub.publish !== 'function') {
    throw new KoboldError('KOBOLD_ERR_CHAT_SETUP', { reason: 'ctx.hub is missing: the chat runs in a web service with the hub enabled' });
  }
  const namespaces = hub.namespaces;
  if (namespaces !== undefined) {
    for (const name of Object.values(CHAT_CHANNELS)) {
      if (namespaces.find(`${name}:x`) === undefined) {
        throw new KoboldError('KOBOLD_ERR_CHAT_SETUP', { reason: `the hub has no namespace "${name}" (add chatHubNamespaces() from the chat app to hub.namespaces)` });
      }
    }
    if (namespaces.find(`${CHAT_CHANNELS.privateRoom}:x`)?.subscribe !== 'token') {
      throw new KoboldError('KOBOLD_ERR_CHAT_SETUP', { reason: `hub namespace "${CHAT_CHANNELS.privateRoom}" must have subscribe: "token" or private rooms would be readable by anyone` });
    }
  }
  const secret = configuredSecret ?? hub.backendOptions?.auth?.secret;
  if (secret === undefined) {
    throw new KoboldError('KOBOLD_ERR_CHAT_SETUP', { reason: 'no token secret: set the chat config "hubSecret" to the hub\'s tokenSecret' });
  }
  return { hub, secret };
}
