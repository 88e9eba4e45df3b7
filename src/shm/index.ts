// Kobold's shared-memory IPC: rings, tables, locks and queues on named segments that every
// process of the daemon maps. Check shmAvailable() first; without the addon (another OS,
// a failed build) every constructor throws KOBOLD_ERR_SHM_UNAVAILABLE and callers use sockets.
export { shmAvailable, unavailableReason, type LoadOptions } from './native.js';
export { unlinkSegment, type SegmentName, type SegmentOptions } from './segment.js';
export { SharedRing, RingWriter, RingReader, type RingOptions, type RingOpenOptions, type ReadFrom, type ReadResult, type RecordHandler } from './ring.js';
export { Doorbell, DoorbellSubscription, type SubscribeOptions } from './doorbell.js';
export { followRing, type FollowOptions, type RingFollower } from './follow.js';
export { SharedTable, type ColumnSpec, type TableSchema, type TableOptions, type Row, type NumericColumn } from './table.js';
export { SharedMutex, SharedSemaphore, type AcquireOptions, type LockOptions, type SemaphoreOptions } from './lock.js';
export { SharedQueue, type QueueOptions, type QueueMessage, type WaitOptions } from './queue.js';
