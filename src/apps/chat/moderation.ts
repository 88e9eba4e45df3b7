// Moderation: mute, kick, ban (with a duration) and their reversal. Sanctions live in the
// store, so every worker enforces them on the next message; a removed user hears it in
// their inbox and, for private rooms, is disconnected so their client fetches a token
// without the room.
import { KoboldError } from '../../errors.js';
import type { Hub } from '../../hub/types.js';
import type { ChatUser } from './identity.js';
import { type Author, type InboxEvent, messageId, type RoomEvent } from './messages.js';
import { inboxChannel } from './rooms.js';
import type { ChatStore, RoomRecord } from './store.js';

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const MAX_DURATION_MS = 365 * 86_400_000;

/** `30s`, `10m`, `2h`, `7d` → milliseconds; null when `text` is not a duration. */
export function parseDuration(text: string): number | null {
  const match = /^(\d{1,6})([smhd])$/i.exec(text);
  if (match === null) return null;
  const ms = Number(match[1]) * UNITS[match[2].toLowerCase()];
  return ms > 0 && ms <= MAX_DURATION_MS ? ms : null;
}

export type ModerationAction = 'mute' | 'unmute' | 'kick' | 'ban' | 'unban';

export class Moderation {
  constructor(
    private readonly store: ChatStore,
    private readonly hub: Hub,
    /** Publishes a room event and queues it for the store. */
    private readonly publishRoom: (room: RoomRecord, event: RoomEvent) => Promise<unknown>,
  ) {}

  /** Applies `action` to `target` in `room` (the caller checked the moderator's rights). Returns when it ends, if it does. */
  async apply(by: ChatUser, room: RoomRecord, action: ModerationAction, target: Author, durationMs: number): Promise<number | undefined> {
    const now = Date.now();
    const until = action === 'mute' || action === 'ban' ? now + durationMs : undefined;
    switch (action) {
      case 'mute':
        this.store.setSanction(room.name, target.id, 'mute', until!);
        break;
      case 'unmute':
      case 'unban': {
        const kind = action === 'unmute' ? 'mute' : 'ban';
        if (!this.store.clearSanction(room.name, target.id, kind)) {
          throw new KoboldError('KOBOLD_ERR_CHAT_USAGE', { usage: `${target.name} is not ${kind === 'mute' ? 'muted' : 'banned'} in ${room.name}` });
        }
        break;
      }
      case 'ban':
        this.store.setSanction(room.name, target.id, 'ban', until!);
        await this.remove(by, room, target, 'ban', until);
        break;
      case 'kick':
        await this.remove(by, room, target, 'kick', undefined);
        break;
    }
    const event: RoomEvent = { type: 'moderation', id: messageId(), room: room.name, from: author(by), action, target, time: now, ...(until === undefined ? {} : { untilMs: until }) };
    await this.publishRoom(room, event);
    return until;
  }

  /** Tells the user's every connection to leave the room; a private room's membership ends. */
  private async remove(by: ChatUser, room: RoomRecord, target: Author, action: 'kick' | 'ban', untilMs: number | undefined): Promise<void> {
    const notice: InboxEvent = { type: 'removed', id: messageId(), room: room.name, by: author(by), action, time: Date.now(), ...(untilMs === undefined ? {} : { untilMs }) };
    await this.hub.publish(inboxChannel(target.id), notice);
    if (!room.private) return;
    this.store.removeMember(room.name, target.id);
    // Their token still lists the room: reconnecting makes the page fetch one that does not.
    await this.hub.disconnect(target.id, { reconnect: true });
  }
}

export function author(user: ChatUser): Author {
  return { id: user.id, name: user.name };
}
