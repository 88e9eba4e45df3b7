// The one contract every hub backend passes (memory, socket, later shm and redis).
// Call `brokerContract(name, factory)` from a backend's test file.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { namespace } from '../../src/hub/options.js';
import type { HubBackend, NamespaceOptions, PresenceEvent, Publication } from '../../src/hub/types.js';

export interface BackendHarness {
  /** Another end onto the same hub, as another process would see it (memory may return the same object). */
  open(): Promise<HubBackend>;
  close(): Promise<void>;
}

export type BackendFactory = (namespaces: NamespaceOptions[]) => Promise<BackendHarness>;

export const CONTRACT_NAMESPACES: NamespaceOptions[] = [
  namespace({ name: 'room', historySize: 5, historyTtlMs: 60_000, presence: true, joinLeave: true }),
  namespace({ name: 'brief', historySize: 10, historyTtlMs: 40 }),
  namespace({ name: 'none', historySize: 0 }),
];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves with the first `count` publications the end sees on `channel`. */
function collect(end: HubBackend, channel: string, count: number): Promise<Publication[]> {
  return new Promise((resolve, reject) => {
    const seen: Publication[] = [];
    const timer = setTimeout(() => reject(new Error(`saw ${seen.length} of ${count} publications on ${channel}`)), 5000);
    const stop = end.onPublication((publication) => {
      if (publication.channel !== channel) return;
      seen.push(publication);
      if (seen.length === count) {
        clearTimeout(timer);
        stop();
        resolve(seen);
      }
    });
  });
}

/** Waits until `predicate` holds for the events seen so far. */
async function until(events: PresenceEvent[], predicate: (events: PresenceEvent[]) => boolean): Promise<void> {
  for (let i = 0; i < 250 && !predicate(events); i++) await sleep(20);
  assert.ok(predicate(events), `presence events never matched: ${JSON.stringify(events)}`);
}

let unique = 0;
const fresh = (namespaceName: string) => `${namespaceName}:c${process.pid}x${++unique}`;

export function brokerContract(name: string, factory: BackendFactory): void {
  describe(`broker contract: ${name}`, () => {
    let harness: BackendHarness;
    let a: HubBackend;
    let b: HubBackend;

    before(async () => {
      harness = await factory(CONTRACT_NAMESPACES);
      a = await harness.open();
      b = await harness.open();
    });
    after(() => harness.close());

    test('offsets go 1, 2, 3 per channel in one epoch, seen in order by every end', async () => {
      const channel = fresh('room');
      const other = fresh('room');
      const seenByB = collect(b, channel, 20);
      const positions = [];
      for (let i = 0; i < 20; i++) positions.push(a.publish(channel, JSON.stringify({ i })));
      const resolved = await Promise.all(positions);
      assert.deepEqual(resolved.map((p) => p.offset), Array.from({ length: 20 }, (_, i) => i + 1));
      assert.equal(new Set(resolved.map((p) => p.epoch)).size, 1);
      const seen = await seenByB;
      assert.deepEqual(seen.map((p) => p.offset), resolved.map((p) => p.offset));
      assert.deepEqual(seen.map((p) => JSON.parse(p.data).i), Array.from({ length: 20 }, (_, i) => i));
      assert.equal((await b.publish(other, '1')).offset, 1, 'each channel counts on its own');
    });

    test('a publication carries its data as given, the publisher info and a time', async () => {
      const channel = fresh('room');
      const seen = collect(a, channel, 1);
      const info = { userId: 'u1', clientId: 'c1', info: { name: 'Ann' } };
      await b.publish(channel, '{"text":"hé ✓"}', { info });
      const [publication] = await seen;
      assert.equal(publication.data, '{"text":"hé ✓"}');
      assert.deepEqual(publication.info, info);
      assert.equal(publication.channel, channel);
      assert.ok(publication.time > 0);
    });

    test('an untouched channel has offset 0 and a stable epoch', async () => {
      const channel = fresh('room');
      const first = await a.history(channel);
      assert.deepEqual(first.publications, []);
      assert.equal(first.position.offset, 0);
      assert.ok(first.position.epoch.length > 0);
      const position = await b.publish(channel, '1');
      assert.deepEqual(position, { offset: 1, epoch: first.position.epoch });
    });

    test('history keeps the newest historySize publications; limit takes the newest', async () => {
      const channel = fresh('room');
      for (let i = 1; i <= 8; i++) await a.publish(channel, String(i));
      const all = await b.history(channel);
      assert.deepEqual(all.publications.map((p) => p.offset), [4, 5, 6, 7, 8]);
      assert.deepEqual(all.publications.map((p) => p.data), ['4', '5', '6', '7', '8']);
      assert.equal(all.position.offset, 8);
      assert.equal(all.lost, false);
      const two = await b.history(channel, { limit: 2 });
      assert.deepEqual(two.publications.map((p) => p.offset), [7, 8]);
      const none = await b.history(channel, { limit: 0 });
      assert.deepEqual(none.publications, []);
      assert.equal(none.position.offset, 8);
    });

    test('since returns what came after it, oldest first, paged by limit', async () => {
      const channel = fresh('room');
      let epoch = '';
      for (let i = 1; i <= 8; i++) epoch = (await a.publish(channel, String(i))).epoch;
      const after3 = await b.history(channel, { since: { offset: 3, epoch } });
      assert.equal(after3.lost, false);
      assert.deepEqual(after3.publications.map((p) => p.offset), [4, 5, 6, 7, 8]);
      const page = await b.history(channel, { since: { offset: 4, epoch }, limit: 2 });
      assert.deepEqual(page.publications.map((p) => p.offset), [5, 6]);
      const atTop = await b.history(channel, { since: { offset: 8, epoch } });
      assert.equal(atTop.lost, false);
      assert.deepEqual(atTop.publications, []);
    });

    test('since answers "lost" when the window moved past it, the epoch differs, or it is ahead', async () => {
      const channel = fresh('room');
      let epoch = '';
      for (let i = 1; i <= 8; i++) epoch = (await a.publish(channel, String(i))).epoch;
      const fellOut = await b.history(channel, { since: { offset: 2, epoch }, limit: 3 });
      assert.equal(fellOut.lost, true);
      assert.deepEqual(fellOut.publications.map((p) => p.offset), [6, 7, 8], 'the newest, to resync from');
      assert.equal(fellOut.position.offset, 8);
      const otherEpoch = await b.history(channel, { since: { offset: 7, epoch: epoch + 'x' } });
      assert.equal(otherEpoch.lost, true);
      const ahead = await b.history(channel, { since: { offset: 9, epoch } });
      assert.equal(ahead.lost, true);
    });

    test('a namespace without history keeps none but still counts offsets', async () => {
      const channel = fresh('none');
      await a.publish(channel, '1');
      const { epoch } = await a.publish(channel, '2');
      const history = await b.history(channel);
      assert.deepEqual(history.publications, []);
      assert.equal(history.position.offset, 2);
      assert.equal((await b.history(channel, { since: { offset: 2, epoch } })).lost, false);
      assert.equal((await b.history(channel, { since: { offset: 1, epoch } })).lost, true);
    });

    test('history forgets publications older than historyTtlMs', async () => {
      const channel = fresh('brief');
      const { epoch } = await a.publish(channel, '1');
      await sleep(120);
      const history = await b.history(channel);
      assert.deepEqual(history.publications, []);
      assert.deepEqual(history.position, { offset: 1, epoch });
    });

    test('presence is de-duplicated by user across connections and ends; join/leave once per user', async () => {
      const channel = fresh('room');
      const events: PresenceEvent[] = [];
      const stop = b.onPresence((event) => {
        if (event.channel === channel) events.push(event);
      });
      await a.addPresence(channel, { clientId: 'a-1', userId: 'u1', info: { name: 'Ann' } });
      await b.addPresence(channel, { clientId: 'b-1', userId: 'u1', info: { name: 'Ann' } });
      await b.addPresence(channel, { clientId: 'b-2', userId: 'u2' });
      await a.addPresence(channel, { clientId: 'a-1', userId: 'u1' });
      await b.addPresence(channel, { clientId: 'b-3', userId: '' });
      const users = (await a.presence(channel)).sort((x, y) => x.userId.localeCompare(y.userId));
      assert.deepEqual(users, [
        { userId: 'u1', info: { name: 'Ann' }, connections: 2 },
        { userId: 'u2', connections: 1 },
      ]);
      assert.deepEqual(await b.presenceCounts(channel), { clients: 4, users: 2 });
      await until(events, (seen) => seen.length === 2);
      assert.deepEqual(
        events.map((e) => `${e.type} ${e.user.userId}`).sort(),
        ['join u1', 'join u2'],
      );

      await a.removePresence(channel, 'a-1');
      await a.removePresence(channel, 'a-1');
      assert.deepEqual(await a.presenceCounts(channel), { clients: 3, users: 2 });
      await b.removePresence(channel, 'b-1');
      await until(events, (seen) => seen.length === 3);
      assert.deepEqual(events[2], { type: 'leave', channel, user: { userId: 'u1', info: { name: 'Ann' } } });
      assert.deepEqual((await a.presence(channel)).map((u) => u.userId), ['u2']);
      stop();
    });

    test('presence of an unknown channel is empty', async () => {
      assert.deepEqual(await a.presence(fresh('room')), []);
      assert.deepEqual(await a.presenceCounts(fresh('room')), { clients: 0, users: 0 });
    });
  });
}
