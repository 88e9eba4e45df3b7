// The chat app's config: every option with its default, validated once by the app loader
// (a bad option fails setup with KOBOLD_ERR_APP_CONFIG naming it).
import { z } from 'zod';
import type { NamespaceInput } from '../../hub/options.js';

export const ROOM_NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;

const roomSchema = z
  .object({
    name: z.string().regex(ROOM_NAME, 'lowercase letters, digits, _ and -, at most 32, starting with a letter or digit'),
    topic: z.string().max(200).default(''),
    private: z.boolean().default(false),
  })
  .strict();

const durationMs = z.number().int().positive();

export const chatConfigSchema = z
  .object({
    /** Where the SQLite file lives (created if missing): default `<runDir>/chat`; relative paths are from the daemon's working dir. */
    dataDir: z.string().min(1).optional(),
    /**
     * The hub's token secret (the `auth.secret` of the hub config). The app signs the tokens its
     * users connect to the hub with. Absent: taken from ctx.hub when the hub exposes it.
     */
    hubSecret: z.string().min(32).optional(),
    /** Verifies tokens from the host site (HS256, sub/name/roles); absent: no host-site sign-in. */
    siteSecret: z.string().min(32).optional(),
    /** Anonymous users pick a nickname (the demo). */
    guests: z.boolean().default(true),
    /** Lifetime of the tokens the app issues. */
    tokenTtlSeconds: z.number().int().min(60).default(12 * 3600),
    /** Rooms that always exist. The first is where the page starts. */
    rooms: z.array(roomSchema).min(1).default([{ name: 'lobby', topic: 'Welcome to Kobold chat', private: false }]),
    /** Who may create rooms with /join: `users` (signed-in from the host site), `everyone` (guests too), `nobody`. */
    createRooms: z.enum(['everyone', 'users', 'nobody']).default('everyone'),
    /** Private rooms one user may belong to (each is listed in their token). */
    maxPrivateRoomsPerUser: z.number().int().min(0).max(200).default(20),
    /** Token roles that make a user a moderator of every room. */
    moderatorRoles: z.array(z.string().min(1)).default(['moderator', 'admin']),
    /** Messages sent to a client when it joins a room. */
    historyOnJoin: z.number().int().min(0).max(1000).default(50),
    /** Messages kept in the store per room (older ones are deleted). */
    storedPerRoom: z.number().int().min(1).max(1_000_000).default(1000),
    /** How often queued messages are written, in one transaction. */
    persistIntervalMs: z.number().int().min(1).max(10_000).default(50),
    maxMessageLength: z.number().int().min(1).max(10_000).default(500),
    /**
     * Per-user token bucket for messages (commands included), shared by every web worker.
     * `trackedUsers`: rows of the shared table (users who sent within about a minute); users
     * beyond it are limited per worker.
     */
    flood: z
      .object({
        ratePerSecond: z.number().positive().default(1),
        burst: z.number().int().min(1).default(5),
        trackedUsers: z.number().int().min(16).max(1_000_000).default(16_384),
      })
      .strict()
      .default({ ratePerSecond: 1, burst: 5, trackedUsers: 16_384 }),
    /** Words to mask (each letter becomes *) or to refuse; matched whole, case-insensitively. */
    filter: z
      .object({ words: z.array(z.string().min(1)).default([]), mode: z.enum(['mask', 'reject']).default('mask') })
      .strict()
      .default({ words: [], mode: 'mask' }),
    /** `allow`: links are detected and marked; `plain`: sent as plain text; `reject`: messages with links are refused. */
    links: z.enum(['allow', 'plain', 'reject']).default('allow'),
    /** Default duration of /mute and /ban when none is given. */
    muteMs: durationMs.default(10 * 60_000),
    banMs: durationMs.default(60 * 60_000),
    /** A guest's nickname stays theirs this long after they were last seen. */
    nickReserveMs: durationMs.default(60 * 60_000),
    /** Key for the server API (system messages); absent: the server API is off. */
    apiKey: z.string().min(16).optional(),
  })
  .strict();

export type ChatConfigInput = z.input<typeof chatConfigSchema>;
export type ChatConfig = z.output<typeof chatConfigSchema>;

/** Namespaces the chat uses on the hub. */
export const CHAT_CHANNELS = {
  /** Public rooms: any signed-in connection may read. */
  room: 'chat',
  /** Private rooms: only tokens listing the channel (the app lists its members' rooms). */
  privateRoom: 'chatp',
  /** One inbox per user: private messages, kicks, notices. */
  inbox: 'chatuser',
} as const;

/**
 * The hub namespaces the chat needs, for the hub's config. Clients never publish: every
 * message goes through the app, which checks, filters and then publishes.
 */
export function chatHubNamespaces(options: { historySize?: number; historyTtlMs?: number } = {}): NamespaceInput[] {
  const history = { historySize: options.historySize ?? 200, historyTtlMs: options.historyTtlMs ?? 24 * 3600_000 };
  return [
    { name: CHAT_CHANNELS.room, ...history, presence: true, joinLeave: true, subscribe: 'user', publish: 'nobody', seePresence: 'user', seeHistory: 'user' },
    { name: CHAT_CHANNELS.privateRoom, ...history, presence: true, joinLeave: true, subscribe: 'token', publish: 'nobody', seePresence: 'token', seeHistory: 'token' },
    { name: CHAT_CHANNELS.inbox, ...history, subscribe: 'owner', publish: 'nobody', seeHistory: 'owner' },
  ];
}
