// Rooms: which exist, who may join, read and moderate them, their channels on the hub,
// and the history a client gets on join (the hub's recent window, older from the store).
import { KoboldError } from '../../errors.js';
import type { Hub, PresenceCounts, StreamPosition } from '../../hub/types.js';
import { CHAT_CHANNELS, type ChatConfig, ROOM_NAME } from './config.js';
import type { ChatUser } from './identity.js';
import type { RoomEvent } from './messages.js';
import type { ChatStore, RoomRecord } from './store.js';

export interface Member {
  readonly id: string;
  readonly name: string;
  readonly connections: number;
}

export interface JoinedRoom {
  readonly name: string;
  readonly topic: string;
  readonly private: boolean;
  readonly channel: string;
  /** Subscribe from here to get every event after the history below. */
  readonly position: StreamPosition;
  readonly history: RoomEvent[];
  readonly members: Member[];
  readonly counts: PresenceCounts;
}

export function roomChannel(room: Pick<RoomRecord, 'name' | 'private'>): string {
  return `${room.private ? CHAT_CHANNELS.privateRoom : CHAT_CHANNELS.room}:${room.name}`;
}

export function inboxChannel(userId: string): string {
  return `${CHAT_CHANNELS.inbox}:${userId}`;
}

export class Rooms {
  constructor(
    private readonly config: ChatConfig,
    private readonly store: ChatStore,
    private readonly hub: Hub,
    private readonly isModerator: (user: ChatUser) => boolean,
  ) {}

  /** Creates the config's rooms that do not exist yet (a later topic change is kept). */
  seed(): void {
    for (const room of this.config.rooms) this.store.createRoom({ ...room, owner: '' });
  }

  get(name: string): RoomRecord {
    const room = this.store.room(normalizeRoomName(name));
    if (room === undefined) throw new KoboldError('KOBOLD_ERR_CHAT_NO_ROOM', { room: name });
    return room;
  }

  /** Public rooms, for the page's room list. */
  list(): RoomRecord[] {
    return this.store.publicRooms();
  }

  /** The room a user may post to or read; throws when they may not. */
  access(user: ChatUser, name: string): RoomRecord {
    const room = this.get(name);
    if (room.private && !this.store.isMember(room.name, user.id)) throw new KoboldError('KOBOLD_ERR_CHAT_NOT_IN_ROOM', { room: room.name });
    const bannedUntil = this.store.sanctionUntil(room.name, user.id, 'ban');
    if (bannedUntil !== undefined) throw new KoboldError('KOBOLD_ERR_CHAT_BANNED', { room: room.name, until: new Date(bannedUntil).toISOString() });
    return room;
  }

  /**
   * Joins (creating the room when it is new and the user may create rooms). Returns the room
   * and whether the user's token must be renewed (a private room it does not list yet).
   */
  async join(user: ChatUser, name: string, options: { private?: boolean } = {}): Promise<{ room: JoinedRoom; renewToken: boolean }> {
    const roomName = normalizeRoomName(name);
    let room = this.store.room(roomName);
    if (room === undefined) {
      this.checkCreate(user);
      const wanted: RoomRecord = { name: roomName, topic: '', private: options.private === true, owner: user.id };
      if (wanted.private) this.checkPrivateRoomLimit(user);
      this.store.createRoom(wanted);
      room = this.get(roomName);
      if (room.private && room.owner === user.id) this.store.addMember(room.name, user.id);
    }
    if (room.private && !this.store.isMember(room.name, user.id)) throw new KoboldError('KOBOLD_ERR_CHAT_INVITE_ONLY', { room: room.name });
    this.access(user, room.name);
    return { room: await this.describe(room), renewToken: room.private };
  }

  /** Leaves: a private room's membership ends (re-entry needs a new invitation). */
  leave(user: ChatUser, name: string): RoomRecord {
    const room = this.get(name);
    if (room.private) this.store.removeMember(room.name, user.id);
    return room;
  }

  invite(by: ChatUser, name: string, target: { id: string }): RoomRecord {
    const room = this.access(by, name);
    if (!room.private) throw new KoboldError('KOBOLD_ERR_CHAT_USAGE', { usage: '/invite works in private rooms; public rooms are open to all' });
    if (!this.canModerate(by, room) && !this.store.isMember(room.name, by.id)) throw new KoboldError('KOBOLD_ERR_CHAT_NOT_IN_ROOM', { room: room.name });
    if (this.store.privateRoomsOf(target.id).length >= this.config.maxPrivateRoomsPerUser) {
      throw new KoboldError('KOBOLD_ERR_CHAT_TOO_MANY_ROOMS', { limit: this.config.maxPrivateRoomsPerUser });
    }
    this.store.addMember(room.name, target.id);
    return room;
  }

  /** Global moderators (token roles) and the user who created the room. */
  canModerate(user: ChatUser, room: RoomRecord): boolean {
    return this.isModerator(user) || (room.owner !== '' && room.owner === user.id);
  }

  async members(room: RoomRecord): Promise<{ members: Member[]; counts: PresenceCounts }> {
    const channel = roomChannel(room);
    const [users, counts] = await Promise.all([this.hub.presence(channel), this.hub.presenceCounts(channel)]);
    const members = users.map((u) => ({ id: u.userId, name: typeof u.info?.name === 'string' ? u.info.name : u.userId, connections: u.connections }));
    members.sort((a, b) => a.name.localeCompare(b.name));
    return { members, counts };
  }

  /** The last `historyOnJoin` events: the hub's window first, older ones from the store. */
  async history(room: RoomRecord): Promise<{ history: RoomEvent[]; position: StreamPosition }> {
    const limit = this.config.historyOnJoin;
    const recent = await this.hub.history(roomChannel(room), { limit });
    const live = recent.publications.map((p) => JSON.parse(p.data) as RoomEvent);
    if (live.length >= limit) return { history: live, position: recent.position };
    const seen = new Set(live.map((event) => event.id));
    const stored = this.store.recent(room.name, limit).filter((event) => !seen.has(event.id));
    const merged = [...stored, ...live].sort((a, b) => a.time - b.time);
    return { history: merged.slice(-limit), position: recent.position };
  }

  private async describe(room: RoomRecord): Promise<JoinedRoom> {
    const [{ history, position }, { members, counts }] = await Promise.all([this.history(room), this.members(room)]);
    return { name: room.name, topic: room.topic, private: room.private, channel: roomChannel(room), position, history, members, counts };
  }

  private checkCreate(user: ChatUser): void {
    const rule = this.config.createRooms;
    if (rule === 'nobody') throw new KoboldError('KOBOLD_ERR_CHAT_NO_CREATE', { reason: 'only the configured rooms exist' });
    if (rule === 'users' && user.guest) throw new KoboldError('KOBOLD_ERR_CHAT_NO_CREATE', { reason: 'guests cannot create rooms; sign in on the site' });
  }

  private checkPrivateRoomLimit(user: ChatUser): void {
    if (this.store.privateRoomsOf(user.id).length >= this.config.maxPrivateRoomsPerUser) {
      throw new KoboldError('KOBOLD_ERR_CHAT_TOO_MANY_ROOMS', { limit: this.config.maxPrivateRoomsPerUser });
    }
  }
}

/** `#Lobby` and `lobby` are the same room; throws for names that cannot be rooms. */
export function normalizeRoomName(name: string): string {
  const normalized = name.trim().replace(/^#/, '').toLowerCase();
  if (!ROOM_NAME.test(normalized)) {
    throw new KoboldError('KOBOLD_ERR_CHAT_BAD_ROOM', { room: name.slice(0, 40), reason: 'letters, digits, _ and -, at most 32' });
  }
  return normalized;
}

/** The room a command runs in; outside any room, a usage error. */
export function requireRoom(room: string | undefined): string {
  if (room === undefined || room === '') throw new KoboldError('KOBOLD_ERR_CHAT_USAGE', { usage: 'this needs a room: /join <room> first' });
  return room;
}
