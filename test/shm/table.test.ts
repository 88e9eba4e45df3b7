import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { isKoboldError } from '../../src/errors.js';
import { SharedTable, type TableSchema } from '../../src/shm/table.js';
import { killFixtures, startFixture, uniqueName } from './helpers.js';

after(killFixtures);

function withTable<S extends TableSchema>(columns: S, capacity = 64, keyMaxBytes?: number): SharedTable<S> {
  const name = uniqueName('table');
  after(() => SharedTable.unlink(name));
  return SharedTable.create(name, { capacity, columns, ...(keyMaxBytes === undefined ? {} : { keyMaxBytes }) });
}

const schema = { hits: { type: 'int' }, score: { type: 'float' }, nick: { type: 'string', maxBytes: 12 } } as const;

test('set, get, getValue, increment and delete a row', () => {
  const table = withTable(schema);
  assert.equal(table.get('alice'), undefined);
  table.set('alice', { nick: 'Ålice', score: 1.5 });
  assert.deepEqual(table.get('alice'), { hits: 0, score: 1.5, nick: 'Ålice' });
  assert.equal(table.increment('alice', 'hits', 5), 5);
  assert.equal(table.increment('alice', 'hits', -2), 3);
  assert.equal(table.increment('bob', 'score', 0.25), 0.25, 'increment creates a missing row');
  assert.equal(table.getValue('alice', 'nick'), 'Ålice');
  assert.equal(table.size, 2);
  assert.equal(table.has('bob'), true);
  assert.equal(table.delete('bob'), true);
  assert.equal(table.delete('bob'), false);
  assert.equal(table.has('bob'), false);
  assert.equal(table.size, 1);
  table.set('bob', { hits: 1 });
  assert.deepEqual(table.get('bob'), { hits: 1, score: 0, nick: '' }, 'a re-created row starts from zero');
});

test('iteration yields every row; another handle on the same name sees the same rows', () => {
  const table = withTable(schema, 500);
  for (let i = 0; i < 300; i++) table.set(`user:${i}`, { hits: i });
  for (let i = 0; i < 300; i += 3) table.delete(`user:${i}`);
  const other = SharedTable.open(table.name);
  assert.deepEqual(other.columns, schema);
  const seen = new Map<string, number>();
  for (const [key, row] of other) seen.set(key, row.hits as number);
  assert.equal(seen.size, 200);
  for (let i = 0; i < 300; i++) assert.equal(seen.get(`user:${i}`), i % 3 === 0 ? undefined : i);
});

test('bad values, long keys, unknown columns and a full table fail clearly without writing', () => {
  const table = withTable(schema, 4, 8);
  const valueError = (error: unknown): boolean => isKoboldError(error, 'KOBOLD_ERR_SHM_TABLE_VALUE');
  assert.throws(() => table.set('k', { hits: 1.5 }), valueError);
  assert.throws(() => table.set('k', { nick: 'much too long for it' }), valueError);
  assert.throws(() => table.set('k', { hits: 1, nick: 5 as unknown as string }), valueError);
  assert.throws(() => table.set('a key longer than 8 bytes', { hits: 1 }), valueError);
  assert.throws(() => table.set('k', { nope: 1 } as never), valueError);
  assert.throws(() => table.increment('k', 'nick' as never), valueError);
  assert.equal(table.size, 0);
  for (const key of ['a', 'b', 'c', 'd']) table.set(key, { hits: 1 });
  assert.throws(() => table.set('e', { hits: 1 }), (error) => isKoboldError(error, 'KOBOLD_ERR_SHM_TABLE_FULL'));
  table.delete('a');
  table.set('e', { hits: 2 });
  assert.equal(table.getValue('e', 'hits'), 2);
  assert.throws(() => SharedTable.create(table.name, { capacity: 4, keyMaxBytes: 8, columns: { hits: { type: 'int' } } }), (error) => isKoboldError(error, 'KOBOLD_ERR_SHM_LAYOUT'));
});

test('increments from three processes sum exactly', async () => {
  const table = withTable({ count: { type: 'int' }, amount: { type: 'float' } }, 100);
  const rounds = 20_000;
  const workers = [0, 1, 2].map(() => startFixture('table-worker', [table.name, String(rounds), 'increment']));
  await Promise.all(workers.map((worker) => worker.next('ready')));
  for (const worker of workers) worker.child.send('go');
  await Promise.all(workers.map((worker) => worker.next('done')));
  assert.equal(table.getValue('total', 'count'), 3 * rounds);
  assert.equal(table.getValue('float', 'amount'), 3 * rounds * 0.5);
  for (let key = 0; key < 50; key++) assert.equal(table.getValue(`key${key}`, 'count'), (3 * rounds) / 50);
  assert.equal(table.size, 52);
});
