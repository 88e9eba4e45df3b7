import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { isKoboldError } from '../../src/errors.js';
import { SharedRing } from '../../src/shm/ring.js';
import { requireNative } from '../../src/shm/segment.js';
import { SharedTable } from '../../src/shm/table.js';
import { isRecordFor, killFixtures, recordFor, startFixture, uniqueName } from './helpers.js';

after(killFixtures);

function withRing(options: { recordSize: number; capacity: number }): SharedRing {
  const name = uniqueName('ring');
  after(() => SharedRing.unlink(name));
  return SharedRing.create(name, options);
}

test('records read back in order with their bytes, by sequence number', () => {
  const ring = withRing({ recordSize: 64, capacity: 16 });
  const writer = ring.writer();
  assert.equal(writer.write('hello'), 0);
  assert.equal(writer.writeMany([recordFor(1, 64), new Uint8Array(0), recordFor(3, 64)]), 1);
  assert.equal(ring.head, 4);
  const reader = ring.reader({ from: 'oldest' });
  const seen: [number, string][] = [];
  const result = reader.read((payload, seq) => seen.push([seq, Buffer.from(payload).toString('hex')]));
  assert.deepEqual(result, { read: 4, lost: 0, resumedAt: -1 });
  assert.equal(Buffer.from(seen[0][1], 'hex').toString(), 'hello');
  assert.equal(seen[1][1], Buffer.from(recordFor(1, 64)).toString('hex'));
  assert.equal(seen[2][1], '');
  reader.seek(3);
  let third: Uint8Array | undefined;
  reader.read((payload) => (third = payload.slice()), 1);
  assert.ok(third !== undefined && isRecordFor(third, 3, 64));
  assert.equal(ring.reader().position, 4, 'a new reader starts at the latest record by default');
});

test('a lapped reader is told how many records it lost and where it resumed', () => {
  const ring = withRing({ recordSize: 16, capacity: 8 });
  const writer = ring.writer();
  const reader = ring.reader({ from: 0 });
  for (let seq = 0; seq < 20; seq++) writer.write(recordFor(seq, 16));
  assert.equal(ring.tail, 12);
  const seqs: number[] = [];
  const result = reader.read((payload, seq) => {
    assert.ok(isRecordFor(payload, seq, 16));
    seqs.push(seq);
  });
  assert.deepEqual(result, { read: 8, lost: 12, resumedAt: 12 });
  assert.deepEqual(seqs, [12, 13, 14, 15, 16, 17, 18, 19]);
});

test('oversize records and a second writer are refused with clear errors; nothing is half-written', () => {
  const ring = withRing({ recordSize: 8, capacity: 4 });
  const writer = ring.writer();
  assert.throws(() => writer.write(new Uint8Array(9)), (error) => isKoboldError(error, 'KOBOLD_ERR_SHM_TOO_LARGE'));
  assert.throws(() => writer.writeMany(['ok', 'much too long']), (error) => isKoboldError(error, 'KOBOLD_ERR_SHM_TOO_LARGE'));
  assert.equal(ring.head, 0);
  assert.throws(() => ring.writer(), (error) => isKoboldError(error, 'KOBOLD_ERR_SHM_WRITER_BUSY'));
  assert.throws(() => SharedRing.open(ring.name).writer(), (error) => isKoboldError(error, 'KOBOLD_ERR_SHM_WRITER_BUSY'), 'another handle in this process');
  writer.close();
  ring.writer().write('next');
  assert.equal(ring.head, 1);
});

test('a writer claim carrying this pid but no open writer (left by an earlier boot) is taken over', () => {
  const path = join(tmpdir(), `${uniqueName('stale-ring')}.ring`);
  after(() => SharedRing.unlink(path));
  const ring = SharedRing.create(path, { recordSize: 8, capacity: 4 });
  const { buffer, fd } = requireNative().map(path, true, 0, false);
  requireNative().release(fd);
  new Int32Array(buffer)[6] = process.pid; // writer pid word
  assert.equal(ring.writerPid, process.pid);
  ring.writer().write('ok');
  assert.equal(ring.head, 1);
});

test('geometry is checked: create with other options and open of a missing ring fail clearly', () => {
  const ring = withRing({ recordSize: 8, capacity: 4 });
  assert.throws(() => SharedRing.create(ring.name, { recordSize: 16, capacity: 4 }), (error) => isKoboldError(error, 'KOBOLD_ERR_SHM_LAYOUT'));
  assert.throws(() => SharedRing.create(uniqueName('bad'), { recordSize: 12, capacity: 4 }), (error) => isKoboldError(error, 'KOBOLD_ERR_SHM_OPTION'));
  assert.throws(() => SharedRing.create(uniqueName('bad'), { recordSize: 8, capacity: 6 }), (error) => isKoboldError(error, 'KOBOLD_ERR_SHM_OPTION'));
  assert.throws(() => SharedRing.open(uniqueName('missing')), (error) => isKoboldError(error, 'KOBOLD_ERR_SHM_OPEN'));
  const again = SharedRing.open(ring.name);
  assert.equal(again.epoch, ring.epoch);
  assert.equal(again.capacity, 4);
});

test('word-by-word atomic copies (the path used off x86) read back the same records', () => {
  const ring = withRing({ recordSize: 32, capacity: 8 });
  const atomic = SharedRing.open(ring.name, { atomicCopy: true });
  const writer = atomic.writer();
  for (let seq = 0; seq < 10; seq++) writer.write(seq === 9 ? 'text' : recordFor(seq, 32));
  let checked = 0;
  const result = atomic.reader({ from: 2 }).read((payload, seq) => {
    assert.ok(seq === 9 ? Buffer.from(payload).toString() === 'text' : isRecordFor(payload, seq, 32));
    checked++;
  });
  assert.deepEqual(result, { read: 8, lost: 0, resumedAt: -1 });
  assert.equal(checked, 8);
});

test('a file-backed ring keeps its records and sequence after every process let go of it', () => {
  const path = join(tmpdir(), `${uniqueName('file-ring')}.ring`);
  after(() => SharedRing.unlink(path));
  const first = SharedRing.create(path, { recordSize: 16, capacity: 8 });
  const writer = first.writer();
  writer.writeMany(['a', 'b', 'c']);
  writer.close();
  const reopened = SharedRing.open(path);
  assert.equal(reopened.head, 3);
  assert.equal(reopened.epoch, first.epoch);
  const values: string[] = [];
  reopened.reader({ from: 'oldest' }).read((payload) => values.push(Buffer.from(payload).toString()));
  assert.deepEqual(values, ['a', 'b', 'c']);
});

test('one writer and two reader processes move 1M records with every byte checked', async () => {
  const ring = withRing({ recordSize: 56, capacity: 1 << 16 });
  const progressName = uniqueName('progress');
  after(() => SharedTable.unlink(progressName));
  SharedTable.create(progressName, { capacity: 8, columns: { position: { type: 'int' } } });
  const doorbell = join(tmpdir(), `${uniqueName('bell')}.sock`);
  const count = 1_000_000;
  const readers = ['r1', 'r2'].map((id) => startFixture('ring-reader', [ring.name, doorbell, String(count), progressName, id]));
  await Promise.all(readers.map((reader) => reader.next('ready')));
  const writer = startFixture('ring-writer', [ring.name, doorbell, String(count), progressName]);
  const results = await Promise.all(readers.map((reader) => reader.next<Record<string, number>>('done', 60_000)));
  for (const result of results) assert.deepEqual(result, { kind: 'done', read: count, lost: 0, bad: 0, outOfOrder: 0 });
  await writer.next('done');
  writer.child.send({ kind: 'exit' });
  assert.equal((await writer.exited()).code, 0);
});

test('writer and reader killed with SIGKILL mid-stream leave a consistent ring that a new writer continues', async () => {
  const ring = withRing({ recordSize: 56, capacity: 1 << 12 });
  const doorbell = join(tmpdir(), `${uniqueName('bell')}.sock`);
  after(() => rmSync(doorbell, { force: true }));
  const reader = startFixture('ring-reader', [ring.name, doorbell, '0', '', 'r']);
  await reader.next('ready');
  const writer = startFixture('ring-writer', [ring.name, doorbell, '0', '']);
  await writer.next('progress');
  await reader.next('progress');
  writer.kill('SIGKILL');
  reader.kill('SIGKILL');
  await Promise.all([writer.exited(), reader.exited()]);

  const head = ring.head;
  assert.ok(head >= 10_000);
  let checked = 0;
  const result = ring.reader({ from: 'oldest' }).read((payload, seq) => {
    assert.ok(isRecordFor(payload, seq, ring.recordSize), `record ${seq} is intact`);
    checked++;
  });
  assert.equal(result.lost, 0);
  // A writer killed mid-batch has already raised the tail over the slots it was about to fill.
  assert.equal(checked, head - ring.tail);
  assert.ok(checked >= ring.capacity - 256, `${checked} records still readable`);

  const takeover = ring.writer();
  assert.equal(ring.writerPid, process.pid);
  for (let seq = head; seq < head + 10; seq++) assert.equal(takeover.write(recordFor(seq, ring.recordSize)), seq);
  const tail: number[] = [];
  ring.reader({ from: head - 1 }).read((payload, seq) => {
    assert.ok(isRecordFor(payload, seq, ring.recordSize));
    tail.push(seq);
  });
  assert.deepEqual(tail, Array.from({ length: 11 }, (_, i) => head - 1 + i));
});
