// The one place where writes are batched: everything due in one event-loop turn is
// flushed together once the turn's I/O callbacks have run (setImmediate), so a
// connection gets one write per turn however many frames were queued for it; with a
// write delay, everything due within it (flushWithin).

export interface Flushable {
  flush(): void;
}

let due: Flushable[] = [];

/**
 * Calls `target.flush()` at the end of this turn. Callers ask once per batch (when its
 * first item arrives), so the hot path does no de-duplication; a second ask only costs a
 * flush that finds nothing to write.
 */
export function flushAtTurnEnd(target: Flushable): void {
  due.push(target);
  if (due.length === 1) setImmediate(flushDue);
}

function flushDue(): void {
  const targets = due;
  due = [];
  for (let i = 0; i < targets.length; i++) targets[i].flush();
}

/** Targets waiting for the timer of their delay (one timer per delay, not one per target). */
const delayed = new Map<number, Flushable[]>();

/**
 * Calls `target.flush()` within `delayMs`: every target asking while a delay's timer runs is
 * flushed when it fires, so a connection that gets messages often collects them meanwhile.
 */
export function flushWithin(delayMs: number, target: Flushable): void {
  const waiting = delayed.get(delayMs);
  if (waiting !== undefined) {
    waiting.push(target);
    return;
  }
  delayed.set(delayMs, [target]);
  setTimeout(() => {
    const targets = delayed.get(delayMs)!;
    delayed.delete(delayMs);
    for (let i = 0; i < targets.length; i++) targets[i].flush();
  }, delayMs);
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
