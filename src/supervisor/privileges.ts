import { execFileSync } from 'node:child_process';
import { describeError, KoboldError } from '../errors.js';

export interface Identity {
  uid?: number;
  gid?: number;
}

/** Resolves user and group names (or numeric ids) to the ids workers are forked with. */
export function resolveIdentity(user: string | undefined, group: string | undefined): Identity {
  const identity: Identity = {};
  if (user !== undefined) {
    identity.uid = lookup(['-u', user], user);
    identity.gid = lookup(['-g', user], user);
  }
  if (group !== undefined) identity.gid = lookupGroup(group);
  return identity;
}

function lookup(args: string[], name: string): number {
  if (/^\d+$/.test(name)) return Number(name);
  try {
    return Number(execFileSync('id', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim());
  } catch (error) {
    throw new KoboldError('KOBOLD_ERR_PRIVILEGES', { target: `user ${name}`, reason: describeError(error) });
  }
}

function lookupGroup(name: string): number {
  if (/^\d+$/.test(name)) return Number(name);
  try {
    const entry = execFileSync('getent', ['group', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return Number(entry.split(':')[2]);
  } catch (error) {
    throw new KoboldError('KOBOLD_ERR_PRIVILEGES', { target: `group ${name}`, reason: describeError(error) });
  }
}
