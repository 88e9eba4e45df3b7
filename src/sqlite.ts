// SQLite files shared by several processes of the daemon (the chat's store, the jobs store).
import Database from 'better-sqlite3';

/** How long a connection waits for another one's lock, and for the switch to WAL. */
const BUSY_TIMEOUT_MS = 5000;

/**
 * Opens `file` for several processes: WAL (readers never block the writer), a busy writer
 * waited for, fsync at checkpoints only. Switching a new file to WAL takes a lock SQLite does
 * not wait for (SQLITE_BUSY at once, whatever the busy timeout), which workers creating the
 * file together at first start meet: that switch is retried for up to BUSY_TIMEOUT_MS.
 */
export function openSharedDatabase(file: string): Database.Database {
  const db = new Database(file, { timeout: BUSY_TIMEOUT_MS });
  const deadline = Date.now() + BUSY_TIMEOUT_MS;
  for (;;) {
    try {
      db.pragma('journal_mode = WAL');
      break;
    } catch (error) {
      if ((error as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() >= deadline) {
        db.close();
        throw error;
      }
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10); // at start only: a short blocking wait
    }
  }
  db.pragma('synchronous = NORMAL');
  return db;
}
