// The chat's one entry for everything a user sends: flood control first, then a command or
// a message (checked, filtered, published through the hub, queued for the store).
import { KoboldError } from '../../errors.js';
import type { Hub } from '../../hub/types.js';
import type { ChatConfig } from './config.js';
import { runCommand } from './commands.js';
import { TextFilter } from './filters.js';
import { FloodControl, type FloodLimiter } from './flood.js';
import type { ChatSession, ChatUser, Identity } from './identity.js';
import { type InboxEvent, messageId, type RoomEvent } from './messages.js';
import { author, Moderation } from './moderation.js';
import { inboxChannel, type JoinedRoom, type Member, requireRoom, roomChannel, Rooms } from './rooms.js';
import type { ChatStore, RoomRecord } from './store.js';

/** The answer to one send; everything in it is for the sender only. */
export interface SendResult {
  /** A line to show the sender (command results, confirmations). */
  notice?: string;
  sent?: { id: string; offset: number; epoch: string };
  joined?: JoinedRoom;
  /** A renewed session whose token lists a private room just joined or created. */
  session?: ChatSession;
  left?: string;
  who?: { room: string; members: Member[]; counts: { clients: number; users: number } };
  help?: { usage: string; description: string }[];
  topic?: { room: string; text: string };
}

export class ChatService {
  readonly rooms: Rooms;
  readonly moderation: Moderation;
  private readonly filter: TextFilter;

  constructor(
    readonly config: ChatConfig,
    readonly store: ChatStore,
    readonly hub: Hub,
    readonly identity: Identity,
    readonly flood: FloodLimiter = new FloodControl(config.flood.ratePerSecond, config.flood.burst),
  ) {
    this.rooms = new Rooms(config, store, hub, (user) => identity.isModerator(user));
    this.moderation = new Moderation(store, hub, (room, event) => this.publishRoom(room, event));
    this.filter = new TextFilter(config);
  }

  /** A line typed by `user` in `room` (undefined outside any room): a /command or a message. */
  async send(user: ChatUser, room: string | undefined, text: string): Promise<SendResult> {
    if (!this.flood.take(user.id)) throw new KoboldError('KOBOLD_ERR_CHAT_FLOOD', { rate: this.flood.ratePerSecond, burst: this.flood.burst });
    this.store.touch(user.id);
    if (text.startsWith('/') && !text.startsWith('//')) return runCommand(this, user, room, text);
    return this.say(user, requireRoom(room), text.startsWith('//') ? text.slice(1) : text, 'message');
  }

  /** A message or a /me action in a room. */
  async say(user: ChatUser, roomName: string, raw: string, type: 'message' | 'action'): Promise<SendResult> {
    const room = this.rooms.access(user, roomName);
    const mutedUntil = this.store.sanctionUntil(room.name, user.id, 'mute');
    if (mutedUntil !== undefined) throw new KoboldError('KOBOLD_ERR_CHAT_MUTED', { room: room.name, until: new Date(mutedUntil).toISOString() });
    const { text, links } = this.filter.apply(raw);
    const event: RoomEvent = { type, id: messageId(), room: room.name, from: author(user), text, time: Date.now(), ...(links === undefined ? {} : { links }) };
    const position = await this.publishRoom(room, event);
    return { sent: { id: event.id, ...position } };
  }

  /** A private message, to every connection of the recipient and the sender's other tabs. */
  async privateMessage(user: ChatUser, to: string, raw: string): Promise<SendResult> {
    const target = this.store.userByName(to.replace(/^@/, ''));
    if (target === undefined) throw new KoboldError('KOBOLD_ERR_CHAT_NO_USER', { user: to });
    const { text, links } = this.filter.apply(raw);
    const event: InboxEvent = {
      type: 'pm',
      id: messageId(),
      from: author(user),
      to: { id: target.id, name: target.name },
      text,
      time: Date.now(),
      ...(links === undefined ? {} : { links }),
    };
    const position = await this.hub.publish(inboxChannel(target.id), event);
    if (target.id !== user.id) await this.hub.publish(inboxChannel(user.id), event);
    return { sent: { id: event.id, ...position } };
  }

  /** A system message from the server (the server API): one room, or every room. Returns the rooms it went to. */
  async system(roomName: string | undefined, raw: string): Promise<string[]> {
    const { text } = this.filter.apply(raw);
    const rooms = roomName === undefined ? this.store.allRooms() : [this.rooms.get(roomName)];
    await Promise.all(rooms.map((room) => this.publishRoom(room, { type: 'system', id: messageId(), room: room.name, text, time: Date.now() })));
    return rooms.map((room) => room.name);
  }

  async publishRoom(room: RoomRecord, event: RoomEvent): Promise<{ offset: number; epoch: string }> {
    const position = await this.hub.publish(roomChannel(room), event);
    // Stored only once the hub accepted it, by this worker alone: one writer per message.
    this.store.append(event);
    return position;
  }
}
