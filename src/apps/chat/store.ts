// The chat's embedded store (SQLite through better-sqlite3): rooms, private-room members,
// sanctions, users and the message history. Every web worker opens the same file (WAL,
// busy_timeout); each message is written once, by the worker that accepted it, in a
// background batch (one transaction per `persistIntervalMs`), never on the delivery path.
// Rooms, members and sanctions are read on every send: with a shared change counter, each
// worker keeps what it read until any worker writes any of them (read-cache.ts).
import type Database from 'better-sqlite3';
import { openSharedDatabase } from '../../sqlite.js';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { RoomEvent } from './messages.js';
import { type ChangeCounter, ReadCache } from './read-cache.js';

export interface RoomRecord {
  readonly name: string;
  readonly topic: string;
  readonly private: boolean;
  /** The user who created it ('' for rooms from the config); a moderator of it. */
  readonly owner: string;
}

export interface UserRecord {
  readonly id: string;
  readonly name: string;
  readonly guest: boolean;
  readonly lastSeen: number;
}

export type SanctionKind = 'mute' | 'ban';

export interface StoreOptions {
  storedPerRoom: number;
  persistIntervalMs: number;
  /** Called when a batch fails (the batch is dropped; logged by the caller). */
  onError(error: unknown): void;
  /** Shared by every worker of the file: enables the read cache. */
  changes?: ChangeCounter;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, room TEXT NOT NULL, time INTEGER NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS messages_room ON messages (room, time, seq);
CREATE TABLE IF NOT EXISTS rooms (name TEXT PRIMARY KEY, topic TEXT NOT NULL, private INTEGER NOT NULL, owner TEXT NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS members (room TEXT NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (room, user_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS members_user ON members (user_id);
CREATE TABLE IF NOT EXISTS sanctions (room TEXT NOT NULL, user_id TEXT NOT NULL, kind TEXT NOT NULL, until INTEGER NOT NULL, PRIMARY KEY (room, user_id, kind)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, name TEXT NOT NULL, name_key TEXT NOT NULL, guest INTEGER NOT NULL, last_seen INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS users_name ON users (name_key, last_seen);
`;

/** Nicknames compare case-insensitively. */
export function nameKey(name: string): string {
  return name.toLowerCase();
}

export class ChatStore {
  private readonly db: Database.Database;
  private readonly pending: RoomEvent[] = [];
  private readonly seen = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  private readonly statements: ReturnType<typeof prepare>;
  private readonly writeBatch: (events: RoomEvent[], seen: [string, number][]) => void;
  private readonly cache: ReadCache | null;

  constructor(
    file: string,
    private readonly options: StoreOptions,
  ) {
    mkdirSync(dirname(file), { recursive: true });
    // Several workers share the file.
    this.db = openSharedDatabase(file);
    this.db.exec(SCHEMA);
    this.statements = prepare(this.db);
    const s = this.statements;
    this.writeBatch = this.db.transaction((events: RoomEvent[], seen: [string, number][]) => {
      const rooms = new Set<string>();
      for (const event of events) {
        s.insertMessage.run(event.id, event.room, event.time, JSON.stringify(event));
        rooms.add(event.room);
      }
      for (const room of rooms) s.trimRoom.run({ room, keep: options.storedPerRoom });
      for (const [id, time] of seen) s.touch.run(time, id);
    });
    this.cache = options.changes === undefined ? null : new ReadCache(options.changes);
    this.timer = setInterval(() => this.flush(), options.persistIntervalMs);
    this.timer.unref();
  }

  // --- messages

  /** Queues a room event for the next batch. */
  append(event: RoomEvent): void {
    this.pending.push(event);
  }

  /** Writes what is queued, in one transaction. */
  flush(): void {
    if (this.pending.length === 0 && this.seen.size === 0) return;
    const events = this.pending.splice(0);
    const seen = [...this.seen];
    this.seen.clear();
    try {
      this.writeBatch(events, seen);
    } catch (error) {
      this.options.onError(error);
    }
  }

  /** The newest `limit` stored events of a room, oldest first. */
  recent(room: string, limit: number): RoomEvent[] {
    if (limit <= 0) return [];
    return (this.statements.recent.all(room, limit) as { data: string }[]).map((row) => JSON.parse(row.data) as RoomEvent);
  }

  // --- rooms

  room(name: string): RoomRecord | undefined {
    return this.cached(`room\0${name}`, () => {
      const row = this.statements.room.get(name) as RoomRow | undefined;
      return row === undefined ? undefined : toRoom(row);
    });
  }

  publicRooms(): RoomRecord[] {
    return (this.statements.publicRooms.all() as RoomRow[]).map(toRoom);
  }

  allRooms(): RoomRecord[] {
    return (this.statements.allRooms.all() as RoomRow[]).map(toRoom);
  }

  /** Creates the room unless it exists; returns whether it was created. */
  createRoom(room: RoomRecord): boolean {
    const created = this.statements.createRoom.run(room.name, room.topic, room.private ? 1 : 0, room.owner, Date.now()).changes === 1;
    if (created) this.changed();
    return created;
  }

  setTopic(room: string, topic: string): void {
    this.statements.setTopic.run(topic, room);
    this.changed();
  }

  // --- private-room members

  addMember(room: string, userId: string): void {
    this.statements.addMember.run(room, userId);
    this.changed();
  }

  removeMember(room: string, userId: string): void {
    this.statements.removeMember.run(room, userId);
    this.changed();
  }

  isMember(room: string, userId: string): boolean {
    return this.cached(`member\0${room}\0${userId}`, () => this.statements.isMember.get(room, userId) !== undefined);
  }

  privateRoomsOf(userId: string): string[] {
    return (this.statements.roomsOf.all(userId) as { room: string }[]).map((row) => row.room);
  }

  // --- sanctions

  setSanction(room: string, userId: string, kind: SanctionKind, until: number): void {
    this.statements.setSanction.run(room, userId, kind, until);
    this.changed();
  }

  clearSanction(room: string, userId: string, kind: SanctionKind): boolean {
    const cleared = this.statements.clearSanction.run(room, userId, kind).changes > 0;
    this.changed();
    return cleared;
  }

  /** When the active sanction ends, or undefined when there is none. */
  sanctionUntil(room: string, userId: string, kind: SanctionKind, now = Date.now()): number | undefined {
    // Kept with its end time (0: none), so it lapses without a write.
    const until = this.cached(`${kind}\0${room}\0${userId}`, () => (this.statements.sanction.get(room, userId, kind) as { until: number } | undefined)?.until ?? 0);
    return until > now ? until : undefined;
  }

  // --- users

  saveUser(user: { id: string; name: string; guest: boolean }, now = Date.now()): void {
    this.statements.upsertUser.run(user.id, user.name, nameKey(user.name), user.guest ? 1 : 0, now);
  }

  /** Records activity; written with the next batch. */
  touch(userId: string, now = Date.now()): void {
    this.seen.set(userId, now);
  }

  /** The user most recently seen with this name. */
  userByName(name: string): UserRecord | undefined {
    const row = this.statements.userByName.get(nameKey(name)) as UserRow | undefined;
    return row === undefined ? undefined : toUser(row);
  }

  userById(id: string): UserRecord | undefined {
    const row = this.statements.userById.get(id) as UserRow | undefined;
    return row === undefined ? undefined : toUser(row);
  }

  private cached<T>(key: string, load: () => T): T {
    return this.cache === null ? load() : this.cache.get(key, load);
  }

  private changed(): void {
    this.cache?.changed();
  }

  close(): void {
    clearInterval(this.timer);
    this.flush();
    this.db.close();
  }
}

function prepare(db: Database.Database) {
  return {
    insertMessage: db.prepare('INSERT OR IGNORE INTO messages (id, room, time, data) VALUES (?, ?, ?, ?)'),
    trimRoom: db.prepare(
      'DELETE FROM messages WHERE room = @room AND seq <= (SELECT seq FROM messages WHERE room = @room ORDER BY seq DESC LIMIT 1 OFFSET @keep)',
    ),
    recent: db.prepare('SELECT data FROM (SELECT data, time, seq FROM messages WHERE room = ? ORDER BY time DESC, seq DESC LIMIT ?) ORDER BY time, seq'),
    touch: db.prepare('UPDATE users SET last_seen = max(last_seen, ?) WHERE id = ?'),
    room: db.prepare('SELECT name, topic, private, owner FROM rooms WHERE name = ?'),
    publicRooms: db.prepare('SELECT name, topic, private, owner FROM rooms WHERE private = 0 ORDER BY name'),
    allRooms: db.prepare('SELECT name, topic, private, owner FROM rooms ORDER BY name'),
    createRoom: db.prepare('INSERT OR IGNORE INTO rooms (name, topic, private, owner, created) VALUES (?, ?, ?, ?, ?)'),
    setTopic: db.prepare('UPDATE rooms SET topic = ? WHERE name = ?'),
    addMember: db.prepare('INSERT OR IGNORE INTO members (room, user_id) VALUES (?, ?)'),
    removeMember: db.prepare('DELETE FROM members WHERE room = ? AND user_id = ?'),
    isMember: db.prepare('SELECT 1 FROM members WHERE room = ? AND user_id = ?'),
    roomsOf: db.prepare('SELECT room FROM members WHERE user_id = ? ORDER BY room'),
    setSanction: db.prepare('INSERT OR REPLACE INTO sanctions (room, user_id, kind, until) VALUES (?, ?, ?, ?)'),
    clearSanction: db.prepare('DELETE FROM sanctions WHERE room = ? AND user_id = ? AND kind = ?'),
    sanction: db.prepare('SELECT until FROM sanctions WHERE room = ? AND user_id = ? AND kind = ?'),
    upsertUser: db.prepare(
      'INSERT INTO users (id, name, name_key, guest, last_seen) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name, name_key = excluded.name_key, last_seen = excluded.last_seen',
    ),
    userByName: db.prepare('SELECT id, name, guest, last_seen FROM users WHERE name_key = ? ORDER BY last_seen DESC LIMIT 1'),
    userById: db.prepare('SELECT id, name, guest, last_seen FROM users WHERE id = ?'),
  };
}

interface RoomRow {
  name: string;
  topic: string;
  private: number;
  owner: string;
}

interface UserRow {
  id: string;
  name: string;
  guest: number;
  last_seen: number;
}

function toRoom(row: RoomRow): RoomRecord {
  return { name: row.name, topic: row.topic, private: row.private === 1, owner: row.owner };
}

function toUser(row: UserRow): UserRecord {
  return { id: row.id, name: row.name, guest: row.guest === 1, lastSeen: row.last_seen };
}
