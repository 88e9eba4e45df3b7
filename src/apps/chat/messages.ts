// What the chat publishes on the hub: one JSON shape per event, text always as plain
// strings (never markup), so every client renders it with textContent.
import { randomBytes } from 'node:crypto';

export interface Author {
  readonly id: string;
  readonly name: string;
}

/** A link found in `text`: [start, end) in UTF-16 units, for clients that make it clickable. */
export interface LinkSpan {
  readonly start: number;
  readonly end: number;
  readonly url: string;
}

/** Events in a room's stream and in the history the app returns. */
export type RoomEvent =
  | { type: 'message' | 'action'; id: string; room: string; from: Author; text: string; time: number; links?: LinkSpan[] }
  | { type: 'system'; id: string; room: string; text: string; time: number }
  | { type: 'topic'; id: string; room: string; from: Author; text: string; time: number }
  | { type: 'moderation'; id: string; room: string; from: Author; action: 'mute' | 'unmute' | 'kick' | 'ban' | 'unban'; target: Author; untilMs?: number; time: number };

/** Events in a user's inbox. */
export type InboxEvent =
  | { type: 'pm'; id: string; from: Author; to: Author; text: string; time: number; links?: LinkSpan[] }
  | { type: 'removed'; id: string; room: string; by: Author; action: 'kick' | 'ban'; untilMs?: number; time: number }
  | { type: 'invited'; id: string; room: string; by: Author; time: number }
  | { type: 'system'; id: string; text: string; time: number };

export function messageId(): string {
  return randomBytes(9).toString('base64url');
}
