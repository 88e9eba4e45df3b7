// The run store: one SQLite file in the run dir holding every run's record, its captured
// lines and the schedule leases. It is the source of truth: the dispatcher's queue is
// rebuilt from it at start, so queued runs and records survive restarts and crashes.
// better-sqlite3 is synchronous, which the dispatcher relies on: a read after a write in
// the same tick sees the write, and nothing interleaves with a transaction.
//
// Writes are grouped per event-loop turn: the first write of a turn opens a transaction
// (BEGIN IMMEDIATE) and the end of the turn commits it, so the enqueues, starts, results
// and lines of one turn cost one commit. Whatever must not be seen before it is durable
// (an enqueue's ack, a run message to a worker, an event to a watcher) waits for that
// commit through `committed()` / `afterCommit()`.

import type Database from 'better-sqlite3';
import { openSharedDatabase } from '../sqlite.js';
import { KoboldError } from '../errors.js';
import { canTransition, finishedStates, runStates, type RunState } from './states.js';

export type LogStream = 'log' | 'stdout' | 'stderr' | 'system';

export interface RunError {
  name: string;
  message: string;
  code?: string;
  stack?: string;
}

export interface RunProgress {
  percent: number;
  message: string | null;
}

export interface RunRecord {
  id: number;
  task: string;
  args: unknown;
  state: RunState;
  attempt: number;
  maxAttempts: number;
  priority: number;
  runAt: number;
  idempotencyKey: string | null;
  /** What created the run: api, schedule, cli, code... */
  trigger: string;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  durationMs: number | null;
  workerPid: number | null;
  exitCode: number | null;
  exitSignal: string | null;
  result: unknown;
  error: RunError | null;
  progress: RunProgress | null;
  /** Lines kept; the oldest are dropped past the per-run bound. */
  logLines: number;
  logDropped: number;
}

export interface LogLine {
  runId: number;
  seq: number;
  at: number;
  attempt: number;
  stream: LogStream;
  level: string;
  message: string;
}

export type NewLogLine = Omit<LogLine, 'seq'>;

export interface NewRun {
  task: string;
  args: unknown;
  state: 'queued' | 'delayed';
  maxAttempts: number;
  priority: number;
  runAt: number;
  idempotencyKey?: string;
  trigger: string;
  createdAt: number;
}

/** Fields a transition may set along with the new state. */
export type RunPatch = Partial<
  Pick<
    RunRecord,
    'attempt' | 'maxAttempts' | 'runAt' | 'startedAt' | 'finishedAt' | 'durationMs' | 'workerPid' | 'exitCode' | 'exitSignal' | 'result' | 'error'
  >
>;

export interface RunFilter {
  states?: RunState[];
  task?: string;
  /** Only runs with a smaller id: the cursor for the next page. */
  beforeId?: number;
  limit?: number;
}

export interface RetentionPolicy {
  /** Finished runs older than this are deleted; 0 keeps them regardless of age. */
  maxAgeDays: number;
  /** At most this many finished runs are kept, newest first; 0 = no limit. */
  maxRuns: number;
}

export interface RunStoreOptions {
  maxLogLinesPerRun: number;
  maxLogLineBytes: number;
}

/** The writes of one event-loop turn: one transaction, and what waits for its commit. */
interface Turn {
  readonly committed: Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
  readonly after: Array<() => void>;
}

const schema = `
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  task TEXT NOT NULL,
  args TEXT NOT NULL,
  state TEXT NOT NULL,
  attempt INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL,
  priority INTEGER NOT NULL DEFAULT 0,
  run_at INTEGER NOT NULL,
  idempotency_key TEXT UNIQUE,
  trigger TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  duration_ms INTEGER,
  worker_pid INTEGER,
  exit_code INTEGER,
  exit_signal TEXT,
  result TEXT,
  error TEXT,
  progress_percent REAL,
  progress_message TEXT,
  log_lines INTEGER NOT NULL DEFAULT 0,
  log_dropped INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_state ON runs (state);
CREATE INDEX IF NOT EXISTS runs_task_state ON runs (task, state);
CREATE INDEX IF NOT EXISTS runs_finished ON runs (finished_at);
CREATE TABLE IF NOT EXISTS run_logs (
  run_id INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  at INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  stream TEXT NOT NULL,
  level TEXT NOT NULL,
  message TEXT NOT NULL,
  PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS schedule_fires (
  task TEXT NOT NULL,
  fire_at INTEGER NOT NULL,
  owner TEXT NOT NULL,
  run_id INTEGER,
  outcome TEXT NOT NULL,
  PRIMARY KEY (task, fire_at)
) WITHOUT ROWID;
`;

interface RunRow {
  id: number;
  task: string;
  args: string;
  state: RunState;
  attempt: number;
  max_attempts: number;
  priority: number;
  run_at: number;
  idempotency_key: string | null;
  trigger: string;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  duration_ms: number | null;
  worker_pid: number | null;
  exit_code: number | null;
  exit_signal: string | null;
  result: string | null;
  error: string | null;
  progress_percent: number | null;
  progress_message: string | null;
  log_lines: number;
  log_dropped: number;
}

const patchColumns: Record<keyof RunPatch, string> = {
  attempt: 'attempt',
  maxAttempts: 'max_attempts',
  runAt: 'run_at',
  startedAt: 'started_at',
  finishedAt: 'finished_at',
  durationMs: 'duration_ms',
  workerPid: 'worker_pid',
  exitCode: 'exit_code',
  exitSignal: 'exit_signal',
  result: 'result',
  error: 'error',
};

export class RunStore {
  private readonly db: Database.Database;
  private readonly options: RunStoreOptions;
  private readonly nextSeq = new Map<number, number>();
  private pendingLines: LogLine[] = [];
  private readonly pendingProgress = new Map<number, RunProgress>();
  private turn: Turn | undefined;
  private commitCount = 0;
  private readonly updates = new Map<string, Database.Statement>();
  private readonly statements;

  constructor(file: string, options: RunStoreOptions) {
    this.options = options;
    // Several schedulers may share the file.
    this.db = openSharedDatabase(file);
    this.db.exec(schema);
    this.statements = {
      begin: this.db.prepare('BEGIN IMMEDIATE'),
      commit: this.db.prepare('COMMIT'),
      rollback: this.db.prepare('ROLLBACK'),
      insert: this.db.prepare(
        `INSERT INTO runs (task, args, state, max_attempts, priority, run_at, idempotency_key, trigger, created_at)
         VALUES (@task, @args, @state, @maxAttempts, @priority, @runAt, @idempotencyKey, @trigger, @createdAt)
         ON CONFLICT (idempotency_key) DO NOTHING`,
      ),
      byId: this.db.prepare('SELECT * FROM runs WHERE id = ?'),
      byKey: this.db.prepare('SELECT * FROM runs WHERE idempotency_key = ?'),
      waiting: this.db.prepare("SELECT * FROM runs WHERE state IN ('queued', 'delayed') ORDER BY id"),
      countActiveOfTask: this.db.prepare("SELECT count(*) AS n FROM runs WHERE task = ? AND state IN ('queued', 'delayed', 'running')"),
      maxSeq: this.db.prepare('SELECT max(seq) AS seq FROM run_logs WHERE run_id = ?'),
      insertLine: this.db.prepare(
        'INSERT INTO run_logs (run_id, seq, at, attempt, stream, level, message) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      countLines: this.db.prepare('UPDATE runs SET log_lines = log_lines + ? WHERE id = ?'),
      trimLines: this.db.prepare('DELETE FROM run_logs WHERE run_id = ? AND seq <= ?'),
      dropped: this.db.prepare('UPDATE runs SET log_lines = log_lines - ?, log_dropped = log_dropped + ? WHERE id = ?'),
      progress: this.db.prepare('UPDATE runs SET progress_percent = ?, progress_message = ? WHERE id = ?'),
      logs: this.db.prepare('SELECT * FROM run_logs WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?'),
      leaseFire: this.db.prepare(
        "INSERT OR IGNORE INTO schedule_fires (task, fire_at, owner, outcome) VALUES (?, ?, ?, 'leased')",
      ),
      fireOutcome: this.db.prepare('UPDATE schedule_fires SET run_id = ?, outcome = ? WHERE task = ? AND fire_at = ?'),
      lastFire: this.db.prepare('SELECT max(fire_at) AS at FROM schedule_fires WHERE task = ?'),
    };
  }

  /** Adds a run, or returns the existing one holding the same idempotency key. */
  insert(run: NewRun): { run: RunRecord; created: boolean } {
    // One statement: the unique key settles races between processes.
    this.write();
    const info = this.statements.insert.run({
      ...run,
      args: JSON.stringify(run.args ?? null),
      idempotencyKey: run.idempotencyKey ?? null,
    });
    if (info.changes === 1) return { run: this.require(Number(info.lastInsertRowid)), created: true };
    return { run: this.findByIdempotencyKey(run.idempotencyKey!)!, created: false };
  }

  findByIdempotencyKey(key: string): RunRecord | undefined {
    const row = this.statements.byKey.get(key) as RunRow | undefined;
    return row && toRecord(row);
  }

  get(id: number): RunRecord | undefined {
    this.flushProgressOf(id);
    const row = this.statements.byId.get(id) as RunRow | undefined;
    return row && toRecord(row);
  }

  require(id: number): RunRecord {
    const run = this.get(id);
    if (!run) throw new KoboldError('KOBOLD_ERR_JOBS_RUN_NOT_FOUND', { id });
    return run;
  }

  /** Moves a run to `to` if the state machine allows it from its current state (and `from`, if given). */
  transition(id: number, to: RunState, patch: RunPatch = {}, from?: readonly RunState[]): RunRecord {
    const allowed = runStates.filter((state) => canTransition(state, to) && (!from || from.includes(state)));
    const sets = ['state = @state'];
    const values: Record<string, unknown> = { id, state: to };
    for (const [key, value] of Object.entries(patch) as [keyof RunPatch, unknown][]) {
      const column = patchColumns[key];
      sets.push(`${column} = @${column}`);
      values[column] = key === 'result' || key === 'error' ? encodeJson(value) : value;
    }
    // The check and the write are one statement, so no other writer can slip in between.
    const allowedList = allowed.map((state) => `'${state}'`).join(', ');
    this.write();
    const sql = `UPDATE runs SET ${sets.join(', ')} WHERE id = @id AND state IN (${allowedList || 'NULL'})`;
    if (this.prepareCached(sql).run(values).changes === 0) {
      const run = this.require(id);
      throw new KoboldError('KOBOLD_ERR_JOBS_BAD_TRANSITION', { id, from: run.state, to });
    }
    return this.require(id);
  }

  /**
   * Resolves once every write made so far is committed (at once when none is pending);
   * rejects if that commit failed. All the callers of one turn share one commit.
   */
  committed(): Promise<void> {
    return this.turn ? this.turn.committed : Promise.resolve();
  }

  /** Calls `then` once every write made so far is committed (now, when none is pending). */
  afterCommit(then: () => void): void {
    if (this.turn) this.turn.after.push(then);
    else then();
  }

  /**
   * Commits the writes pending now instead of at the end of the turn: before a read whose
   * answer must be durable, or before handing the file to another process.
   */
  commit(): void {
    const turn = this.turn;
    if (!turn) return;
    try {
      this.writePending();
      this.statements.commit.run();
    } catch (error) {
      if (this.db.inTransaction) this.statements.rollback.run();
      this.turn = undefined;
      turn.reject(error);
      throw error;
    }
    this.turn = undefined;
    this.commitCount += 1;
    turn.resolve();
    for (const then of turn.after) then();
  }

  /** Transactions committed since the store opened. */
  get commits(): number {
    return this.commitCount;
  }

  /** Runs left `running` by a daemon that died: they become `interrupted`. */
  markInterrupted(now: number): RunRecord[] {
    this.write();
    return this.db.transaction(() => {
      const rows = this.db.prepare("SELECT id FROM runs WHERE state = 'running'").all() as { id: number }[];
      return rows.map(({ id }) => {
        const error = new KoboldError('KOBOLD_ERR_JOBS_INTERRUPTED', { id });
        const patch = { finishedAt: now, error: { name: error.name, code: error.code, message: error.message } };
        const started = this.require(id).startedAt;
        return this.transition(id, 'interrupted', started === null ? patch : { ...patch, durationMs: now - started });
      });
    })();
  }

  /** Runs waiting to run (queued or delayed), oldest first: the queue to rebuild at start. */
  waiting(): RunRecord[] {
    return (this.statements.waiting.all() as RunRow[]).map(toRecord);
  }

  countActive(task: string): number {
    return (this.statements.countActiveOfTask.get(task) as { n: number }).n;
  }

  list(filter: RunFilter = {}): RunRecord[] {
    const where: string[] = [];
    const values: unknown[] = [];
    if (filter.states && filter.states.length > 0) {
      where.push(`state IN (${filter.states.map(() => '?').join(', ')})`);
      values.push(...filter.states);
    }
    if (filter.task !== undefined) {
      where.push('task = ?');
      values.push(filter.task);
    }
    if (filter.beforeId !== undefined) {
      where.push('id < ?');
      values.push(filter.beforeId);
    }
    const limit = Math.min(Math.max(filter.limit ?? 50, 1), 1000);
    this.flushProgress();
    const sql = `SELECT * FROM runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ${limit}`;
    return (this.db.prepare(sql).all(...values) as RunRow[]).map(toRecord);
  }

  /** Buffers a captured line; it reaches the file with the turn's commit. */
  queueLog(line: NewLogLine): LogLine {
    let seq = this.nextSeq.get(line.runId);
    if (seq === undefined) seq = ((this.statements.maxSeq.get(line.runId) as { seq: number | null }).seq ?? 0) + 1;
    this.nextSeq.set(line.runId, seq + 1);
    const message =
      Buffer.byteLength(line.message) > this.options.maxLogLineBytes
        ? `${Buffer.from(line.message).subarray(0, this.options.maxLogLineBytes).toString()}… [truncated]`
        : line.message;
    const kept: LogLine = { ...line, message, seq };
    this.write();
    this.pendingLines.push(kept);
    return kept;
  }

  /** Keeps the run's latest progress; it reaches the file with the turn's commit. */
  queueProgress(runId: number, progress: RunProgress): void {
    this.write();
    this.pendingProgress.set(runId, progress);
  }

  /** Writes buffered lines and progress into the turn's transaction, for a read that needs them. */
  writePending(): void {
    if (this.pendingLines.length === 0 && this.pendingProgress.size === 0) return;
    const lines = this.pendingLines;
    this.pendingLines = [];
    this.db.transaction(() => {
      const lastSeqOfRun = new Map<number, { last: number; added: number }>();
      for (const line of lines) {
        this.statements.insertLine.run(line.runId, line.seq, line.at, line.attempt, line.stream, line.level, line.message);
        const entry = lastSeqOfRun.get(line.runId) ?? { last: 0, added: 0 };
        lastSeqOfRun.set(line.runId, { last: line.seq, added: entry.added + 1 });
      }
      for (const [runId, { last, added }] of lastSeqOfRun) {
        this.statements.countLines.run(added, runId);
        const trimmed = this.statements.trimLines.run(runId, last - this.options.maxLogLinesPerRun).changes;
        if (trimmed > 0) this.statements.dropped.run(trimmed, trimmed, runId);
      }
      this.flushProgress();
    })();
  }

  logs(runId: number, options: { afterSeq?: number; limit?: number } = {}): LogLine[] {
    this.writePending();
    const limit = Math.min(Math.max(options.limit ?? 1000, 1), 10_000);
    const rows = this.statements.logs.all(runId, options.afterSeq ?? 0, limit) as Array<Omit<LogLine, 'runId'> & { run_id: number }>;
    return rows.map(({ run_id, ...line }) => ({ runId: run_id, ...line }));
  }

  /** The run is over (for now): its sequence counter can be read back from the file later. */
  forgetRun(runId: number): void {
    this.writePending();
    this.nextSeq.delete(runId);
  }

  /** Deletes finished runs past the policy, with their lines. Returns how many went. */
  applyRetention(policy: RetentionPolicy, now: number): number {
    const finished = finishedStates.map((state) => `'${state}'`).join(', ');
    this.writePending();
    this.write();
    return this.db.transaction(() => {
      let deleted = 0;
      const remove = (condition: string, ...values: unknown[]): void => {
        const ids = this.db.prepare(`SELECT id FROM runs WHERE state IN (${finished}) AND ${condition}`).all(...values) as { id: number }[];
        for (const { id } of ids) {
          this.db.prepare('DELETE FROM run_logs WHERE run_id = ?').run(id);
          this.db.prepare('DELETE FROM runs WHERE id = ?').run(id);
        }
        deleted += ids.length;
      };
      if (policy.maxAgeDays > 0) remove('finished_at < ?', now - policy.maxAgeDays * 86_400_000);
      if (policy.maxRuns > 0) {
        remove(`id NOT IN (SELECT id FROM runs WHERE state IN (${finished}) ORDER BY id DESC LIMIT ?)`, policy.maxRuns);
      }
      // Keep each task's latest fire: it is how missed schedules are found after a stop.
      this.db
        .prepare('DELETE FROM schedule_fires WHERE fire_at < ? AND fire_at < (SELECT max(fire_at) FROM schedule_fires AS f WHERE f.task = schedule_fires.task)')
        .run(now - Math.max(policy.maxAgeDays, 1) * 86_400_000);
      return deleted;
    })();
  }

  /** Takes the lease on one fire of a schedule; false when another scheduler took it first. */
  leaseFire(task: string, fireAt: number, owner: string): boolean {
    this.write();
    return this.statements.leaseFire.run(task, fireAt, owner).changes === 1;
  }

  recordFireOutcome(task: string, fireAt: number, runId: number | null, outcome: string): void {
    this.write();
    this.statements.fireOutcome.run(runId, outcome, task, fireAt);
  }

  lastFireAt(task: string): number | null {
    return (this.statements.lastFire.get(task) as { at: number | null }).at;
  }

  close(): void {
    this.commit();
    this.db.close();
  }

  private prepareCached(sql: string): Database.Statement {
    let statement = this.updates.get(sql);
    if (!statement) this.updates.set(sql, (statement = this.db.prepare(sql)));
    return statement;
  }

  /**
   * Opens the turn's transaction if none is open, and arranges its commit at the end of the
   * turn. A commit that fails is thrown from there: the process ends, and the next start
   * rebuilds the queue from the file, which holds only what was committed.
   */
  private write(): void {
    if (this.turn) return;
    this.statements.begin.run();
    let resolve!: () => void;
    let reject!: (error: unknown) => void;
    const committed = new Promise<void>((ok, fail) => ((resolve = ok), (reject = fail)));
    // Nobody may be waiting for this commit; its failure is thrown from setImmediate anyway.
    committed.catch(() => {});
    this.turn = { committed, resolve, reject, after: [] };
    setImmediate(() => this.commit());
  }

  private flushProgress(): void {
    for (const [runId, progress] of this.pendingProgress) this.statements.progress.run(progress.percent, progress.message, runId);
    this.pendingProgress.clear();
  }

  private flushProgressOf(runId: number): void {
    const progress = this.pendingProgress.get(runId);
    if (!progress) return;
    this.statements.progress.run(progress.percent, progress.message, runId);
    this.pendingProgress.delete(runId);
  }
}

function toRecord(row: RunRow): RunRecord {
  return {
    id: row.id,
    task: row.task,
    args: JSON.parse(row.args),
    state: row.state,
    attempt: row.attempt,
    maxAttempts: row.max_attempts,
    priority: row.priority,
    runAt: row.run_at,
    idempotencyKey: row.idempotency_key,
    trigger: row.trigger,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    durationMs: row.duration_ms,
    workerPid: row.worker_pid,
    exitCode: row.exit_code,
    exitSignal: row.exit_signal,
    result: row.result === null ? null : JSON.parse(row.result),
    error: row.error === null ? null : (JSON.parse(row.error) as RunError),
    progress: row.progress_percent === null ? null : { percent: row.progress_percent, message: row.progress_message },
    logLines: row.log_lines,
    logDropped: row.log_dropped,
  };
}

function encodeJson(value: unknown): string | null {
  return value === null || value === undefined ? null : JSON.stringify(value);
}
