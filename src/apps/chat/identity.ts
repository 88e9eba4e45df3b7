// Who is chatting. A guest picks a nickname; a host-site user brings a token signed with
// `siteSecret`. Either way the app issues the hub token the browser connects with: signed
// with the hub's secret, naming the user, their roles and the private rooms they belong to
// (the hub lets only tokens listing a private room's channel read it).
import { randomBytes } from 'node:crypto';
import { KoboldError } from '../../errors.js';
import { createTokenVerifier, signHubToken, type TokenVerifier } from '../../hub/auth.js';
import type { Principal } from '../../hub/types.js';
import { CHAT_CHANNELS, type ChatConfig } from './config.js';
import type { ChatStore } from './store.js';

export interface ChatUser {
  readonly id: string;
  readonly name: string;
  readonly roles: readonly string[];
  readonly guest: boolean;
}

export interface ChatSession {
  readonly token: string;
  readonly expiresAt: number;
  readonly user: ChatUser & { readonly moderator: boolean };
}

const GUEST_PREFIX = 'guest-';
const NICK = /^[\p{L}\p{N}_.-]{2,24}$/u;
const USER_ID = /^[A-Za-z0-9_\-.@=,#!~+]{1,128}$/;
const MAX_NAME_LENGTH = 40;
/** Verified tokens remembered per worker; the map starts over when it reaches this size. */
const MAX_VERIFIED_TOKENS = 20_000;

export class Identity {
  private readonly verifyHub: TokenVerifier;
  private readonly verifySite: TokenVerifier | null;
  /**
   * Tokens this worker already verified, until they expire: checking a JWT (HMAC, base64,
   * JSON, claims) costs ~100 µs, more than the rest of a send. Only the exact string that
   * passed verification hits, so a cached token is as valid as a verified one.
   */
  private readonly verified = new Map<string, { user: ChatUser; expiresAt: number }>();

  constructor(
    private readonly config: ChatConfig,
    private readonly store: ChatStore,
    private readonly hubSecret: string,
  ) {
    this.verifyHub = createTokenVerifier({ secret: hubSecret });
    this.verifySite = config.siteSecret === undefined ? null : createTokenVerifier({ secret: config.siteSecret });
  }

  /** A guest with a nickname nobody else used within `nickReserveMs`. */
  async guest(nick: string): Promise<ChatSession> {
    if (!this.config.guests) throw new KoboldError('KOBOLD_ERR_CHAT_SESSION', { reason: 'guests are not allowed here; sign in on the site' });
    const name = nick.trim();
    if (!NICK.test(name)) throw new KoboldError('KOBOLD_ERR_CHAT_NICK', { reason: '2 to 24 letters, digits, _ . or -' });
    const holder = this.store.userByName(name);
    if (holder !== undefined && Date.now() - holder.lastSeen < this.config.nickReserveMs) throw new KoboldError('KOBOLD_ERR_CHAT_NICK_TAKEN', { nick: name });
    const user: ChatUser = { id: GUEST_PREFIX + randomBytes(8).toString('base64url'), name, roles: [], guest: true };
    this.store.saveUser(user);
    return this.issue(user);
  }

  /** Exchanges a host-site token (sub, name, roles) for a chat session. */
  async site(siteToken: string): Promise<ChatSession> {
    if (this.verifySite === null) throw new KoboldError('KOBOLD_ERR_CHAT_SESSION', { reason: 'host-site sign-in is not configured (siteSecret)' });
    const principal = await this.verifySite(siteToken);
    if (!USER_ID.test(principal.userId) || principal.userId.startsWith(GUEST_PREFIX)) {
      throw new KoboldError('KOBOLD_ERR_CHAT_SESSION', { reason: `user id "${principal.userId.slice(0, 40)}" is not usable (letters, digits, _-.@=,#!~+; not "${GUEST_PREFIX}…")` });
    }
    const user = toUser(principal);
    this.store.saveUser(user);
    return this.issue(user);
  }

  /** A new token for the holder of a valid one, listing their private rooms as they are now. */
  async refresh(hubToken: string): Promise<ChatSession> {
    const user = await this.authenticate(hubToken);
    this.store.touch(user.id);
    return this.issue(user);
  }

  /** The user behind a token this app issued. */
  async authenticate(hubToken: string | undefined): Promise<ChatUser> {
    if (hubToken === undefined || hubToken === '') throw new KoboldError('KOBOLD_ERR_CHAT_SESSION', { reason: 'send the token from /chat/api/session as "Authorization: Bearer …"' });
    const known = this.verified.get(hubToken);
    if (known !== undefined) {
      if (known.expiresAt > Date.now()) return known.user;
      this.verified.delete(hubToken); // verified again below, which reports the expiry
    }
    const principal = await this.verifyHub(hubToken);
    const user = toUser(principal);
    if (this.verified.size >= MAX_VERIFIED_TOKENS) this.verified.clear();
    this.verified.set(hubToken, { user, expiresAt: principal.expiresAt ?? Infinity });
    return user;
  }

  isModerator(user: ChatUser): boolean {
    return user.roles.some((role) => this.config.moderatorRoles.includes(role));
  }

  async issue(user: ChatUser): Promise<ChatSession> {
    const channels = this.store.privateRoomsOf(user.id).map((room) => `${CHAT_CHANNELS.privateRoom}:${room}`);
    const ttl = this.config.tokenTtlSeconds;
    const token = await signHubToken(this.hubSecret, { sub: user.id, name: user.name, roles: [...user.roles], channels }, ttl);
    return { token, expiresAt: Date.now() + ttl * 1000, user: { ...user, moderator: this.isModerator(user) } };
  }
}

function toUser(principal: Principal): ChatUser {
  const name = typeof principal.info?.name === 'string' && principal.info.name.trim() !== '' ? principal.info.name.trim().slice(0, MAX_NAME_LENGTH) : principal.userId;
  return { id: principal.userId, name, roles: principal.roles, guest: principal.userId.startsWith(GUEST_PREFIX) };
}
