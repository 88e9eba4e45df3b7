// Slash commands: one table entry per command (usage, help text, who may run it, what it
// does). Unknown commands and bad arguments answer the sender alone with a clear error.
import { KoboldError } from '../../errors.js';
import type { ChatService, SendResult } from './chat.js';
import type { ChatUser } from './identity.js';
import { type Author, messageId } from './messages.js';
import { author, type ModerationAction, parseDuration } from './moderation.js';
import { inboxChannel, requireRoom } from './rooms.js';
import type { RoomRecord } from './store.js';

interface Command {
  readonly usage: string;
  readonly description: string;
  /** Needs moderator rights in the current room. */
  readonly moderator?: boolean;
  run(chat: ChatService, user: ChatUser, room: string | undefined, args: string[], rest: string): Promise<SendResult>;
}

const COMMANDS: Record<string, Command> = {
  join: {
    usage: '/join <room> [private]',
    description: 'enter a room; a new name creates it (add "private" for an invite-only room)',
    async run(chat, user, _room, [name, flag]) {
      if (name === undefined || (flag !== undefined && flag !== 'private')) throw usage('join');
      const { room, renewToken } = await chat.rooms.join(user, name, { private: flag === 'private' });
      return { joined: room, notice: `You joined #${room.name}`, ...(renewToken ? { session: await chat.identity.issue(user) } : {}) };
    },
  },
  leave: {
    usage: '/leave [room]',
    description: 'leave the current room (or the one named)',
    async run(chat, user, current, [name]) {
      const room = chat.rooms.leave(user, name ?? requireRoom(current));
      return { left: room.name, notice: `You left #${room.name}`, ...(room.private ? { session: await chat.identity.issue(user) } : {}) };
    },
  },
  me: {
    usage: '/me <action>',
    description: 'say what you do: "/me waves" shows "* Ann waves"',
    run: (chat, user, room, _args, rest) => {
      if (rest === '') throw usage('me');
      return chat.say(user, requireRoom(room), rest, 'action');
    },
  },
  msg: {
    usage: '/msg <nick> <text>',
    description: 'a private message, seen by that user only',
    run: (chat, user, _room, [nick], rest) => {
      const text = rest.slice((nick ?? '').length).trim();
      if (nick === undefined || text === '') throw usage('msg');
      return chat.privateMessage(user, nick, text);
    },
  },
  who: {
    usage: '/who [room]',
    description: 'who is in the room',
    async run(chat, user, current, [name]) {
      const room = chat.rooms.access(user, name ?? requireRoom(current));
      const { members, counts } = await chat.rooms.members(room);
      const names = members.map((m) => m.name).join(', ') || 'nobody signed in';
      return { who: { room: room.name, members, counts }, notice: `#${room.name}: ${counts.users} online — ${names}` };
    },
  },
  topic: {
    usage: '/topic [text]',
    description: 'show the room topic; moderators set it',
    async run(chat, user, current, _args, rest) {
      const room = chat.rooms.access(user, requireRoom(current));
      if (rest === '') return { topic: { room: room.name, text: room.topic }, notice: room.topic === '' ? `#${room.name} has no topic` : `Topic of #${room.name}: ${room.topic}` };
      requireModerator(chat, user, room, 'topic');
      const text = rest.slice(0, 200);
      chat.store.setTopic(room.name, text);
      await chat.publishRoom(room, { type: 'topic', id: messageId(), room: room.name, from: author(user), text, time: Date.now() });
      return { topic: { room: room.name, text } };
    },
  },
  invite: {
    usage: '/invite <nick>',
    description: 'let someone into this private room',
    async run(chat, user, current, [nick]) {
      if (nick === undefined) throw usage('invite');
      const target = findUser(chat, nick);
      const room = chat.rooms.invite(user, requireRoom(current), target);
      await chat.hub.publish(inboxChannel(target.id), { type: 'invited', id: messageId(), room: room.name, by: author(user), time: Date.now() });
      return { notice: `${target.name} may now /join #${room.name}` };
    },
  },
  help: {
    usage: '/help',
    description: 'this list',
    async run() {
      const help = Object.values(COMMANDS).map((c) => ({ usage: c.usage, description: c.description + (c.moderator ? ' (moderators)' : '') }));
      return { help, notice: help.map((h) => `${h.usage} — ${h.description}`).join('\n') };
    },
  },
  mute: moderationCommand('mute', '/mute <nick> [duration, e.g. 10m]', 'stop someone from talking in this room for a while'),
  unmute: moderationCommand('unmute', '/unmute <nick>', 'end a mute'),
  kick: moderationCommand('kick', '/kick <nick>', 'remove someone from this room (they may come back)'),
  ban: moderationCommand('ban', '/ban <nick> [duration, e.g. 1h]', 'remove someone and keep them out for a while'),
  unban: moderationCommand('unban', '/unban <nick>', 'end a ban'),
};

function moderationCommand(action: ModerationAction, usageText: string, description: string): Command {
  return {
    usage: usageText,
    description,
    moderator: true,
    async run(chat, user, current, [nick, duration]) {
      if (nick === undefined) throw usage(action);
      const room = chat.rooms.get(requireRoom(current));
      requireModerator(chat, user, room, action);
      let durationMs = action === 'ban' ? chat.config.banMs : chat.config.muteMs;
      if (duration !== undefined) {
        const parsed = parseDuration(duration);
        if (parsed === null || (action !== 'mute' && action !== 'ban')) throw usage(action);
        durationMs = parsed;
      }
      const target: Author = findUser(chat, nick);
      const until = await chat.moderation.apply(user, room, action, target, durationMs);
      const past = { mute: 'muted', unmute: 'unmuted', kick: 'kicked', ban: 'banned', unban: 'unbanned' }[action];
      return { notice: `${target.name} ${past} in #${room.name}` + (until === undefined ? '' : ` until ${new Date(until).toISOString()}`) };
    },
  };
}

/** Runs a line that starts with "/". */
export function runCommand(chat: ChatService, user: ChatUser, room: string | undefined, line: string): Promise<SendResult> {
  const match = /^\/(\S*)\s*(.*)$/s.exec(line.trim())!;
  const name = match[1].toLowerCase();
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (command === undefined) throw new KoboldError('KOBOLD_ERR_CHAT_UNKNOWN_COMMAND', { command: match[1].slice(0, 32) });
  const rest = match[2].trim();
  const args = rest === '' ? [] : rest.split(/\s+/);
  return command.run(chat, user, room, args, rest);
}

function usage(name: string): KoboldError {
  return new KoboldError('KOBOLD_ERR_CHAT_USAGE', { usage: COMMANDS[name].usage });
}

function requireModerator(chat: ChatService, user: ChatUser, room: RoomRecord, command: string): void {
  if (!chat.rooms.canModerate(user, room)) throw new KoboldError('KOBOLD_ERR_CHAT_NOT_MODERATOR', { command, room: room.name });
}

function findUser(chat: ChatService, nick: string): Author {
  const user = chat.store.userByName(nick.replace(/^@/, ''));
  if (user === undefined) throw new KoboldError('KOBOLD_ERR_CHAT_NO_USER', { user: nick });
  return { id: user.id, name: user.name };
}
