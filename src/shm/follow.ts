// A ring reader driven by the writer's doorbell: the usual way a process follows a ring
// while staying on its event loop.
import { DoorbellSubscription, type SubscribeOptions } from './doorbell.js';
import type { ReadFrom, RecordHandler, RingReader, SharedRing } from './ring.js';

export interface FollowOptions extends SubscribeOptions {
  from?: ReadFrom;
  /** Records read per event-loop turn before yielding to other work. Default 4096. */
  maxPerTurn?: number;
  /** Told when records were overwritten before this reader got to them. */
  onLost?(lost: number, resumedAt: number): void;
}

export interface RingFollower {
  readonly reader: RingReader;
  /** Reads whatever is there now (also done on every doorbell). */
  drain(): void;
  close(): void;
}

export function followRing(ring: SharedRing, doorbellPath: string, onRecord: RecordHandler, options: FollowOptions = {}): RingFollower {
  const reader = ring.reader({ from: options.from ?? 'latest' });
  const maxPerTurn = options.maxPerTurn ?? 4096;
  let scheduled = false;
  let closed = false;
  const drain = (): void => {
    scheduled = false;
    if (closed) return;
    const result = reader.read(onRecord, maxPerTurn);
    if (result.lost > 0) options.onLost?.(result.lost, result.resumedAt);
    if (reader.backlog > 0 && !scheduled) {
      scheduled = true;
      setImmediate(drain);
    }
  };
  const subscription = new DoorbellSubscription(doorbellPath, drain, options);
  return {
    reader,
    drain,
    close() {
      closed = true;
      subscription.close();
    },
  };
}
