// The one place where writes are batched: everything due in one event-loop turn is
// flushed together once the turn's I/O callbacks have run (setImmediate), so a
// connection gets one write per turn however many frames were queued for it.

export interface Flushable {
  flush(): void;
}

let due: Flushable[] = [];
const queued = new Set<Flushable>();

/** Calls `target.flush()` once at the end of this turn, however often it is asked. */
export function flushAtTurnEnd(target: Flushable): void {
  if (queued.has(target)) return;
  queued.add(target);
  due.push(target);
  if (due.length === 1) setImmediate(flushDue);
}

function flushDue(): void {
  const targets = due;
  due = [];
  queued.clear();
  for (const target of targets) target.flush();
}

/** Buffers chunks for one byte stream and writes them as one chunk per turn. */
export class BatchWriter implements Flushable {
  private chunks: Buffer[] = [];

  constructor(private readonly sink: (chunk: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    if (this.chunks.length === 1) flushAtTurnEnd(this);
  }

  flush(): void {
    const chunks = this.chunks;
    if (chunks.length === 0) return;
    this.chunks = [];
    this.sink(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
  }

  /** Drops what is waiting (the stream is gone). */
  clear(): void {
    this.chunks = [];
  }
}
