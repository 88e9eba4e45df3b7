import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { isKoboldError } from '../../src/errors.js';
import { loadNative, shmAvailable, unavailableReason, WaitResult } from '../../src/shm/native.js';
import { SharedRing } from '../../src/shm/ring.js';
import { SharedTable } from '../../src/shm/table.js';
import { unlinkSegment } from '../../src/shm/segment.js';
import { uniqueName } from './helpers.js';

const missing = { addonPath: '/nonexistent/kobold_shm.node' };

test('without the addon, shared memory reports unavailable and every structure throws KOBOLD_ERR_SHM_UNAVAILABLE', () => {
  assert.equal(shmAvailable(missing), false);
  assert.match(unavailableReason(missing), /not built .*kobold_shm\.node missing/);
  assert.equal(loadNative(missing), null);
  const unavailable = (error: unknown): boolean => isKoboldError(error, 'KOBOLD_ERR_SHM_UNAVAILABLE') && /missing/.test((error as Error).message);
  assert.throws(() => SharedRing.create(uniqueName('x'), { recordSize: 8, capacity: 2, ...missing }), unavailable);
  assert.throws(() => SharedTable.open(uniqueName('x'), missing), unavailable);
  assert.throws(() => unlinkSegment(uniqueName('x'), missing), unavailable);
});

test('the built addon maps a segment that two mappings share, and futex waits time out or wake', async () => {
  assert.equal(shmAvailable(), true, unavailableReason());
  const native = loadNative()!;
  const name = `/${uniqueName('native')}`;
  after(() => native.unlink(name, false));
  const first = native.map(name, false, 4096, true);
  native.release(first.fd);
  const second = native.map(name, false, 0, false);
  native.release(second.fd);
  assert.equal(second.buffer.byteLength, 4096);
  const a = new Int32Array(first.buffer);
  const b = new Int32Array(second.buffer);
  Atomics.store(a, 3, 42);
  assert.equal(Atomics.load(b, 3), 42);
  assert.equal(native.wait(first.buffer, 12, 41, 10), WaitResult.NotEqual);
  assert.equal(native.wait(first.buffer, 12, 42, 10), WaitResult.TimedOut);
  const waiting = native.waitAsync(first.buffer, 12, 42, 5000);
  setTimeout(() => {
    Atomics.store(b, 3, 43);
    native.wake(second.buffer, 12, 1);
  }, 20);
  assert.equal(await waiting, WaitResult.Woken);
  assert.throws(() => native.wait(first.buffer, 4094, 0, 0), RangeError);
  assert.equal(native.unlink(name, false), true);
  assert.equal(native.unlink(name, false), false);
});
