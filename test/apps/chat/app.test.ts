// The chat app end to end in-process: real HTTP API, real hub transports (WebSocket, SSE,
// refresh) through the real client library, the real SQLite store.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { signHubToken } from '../../../src/hub/auth.js';
import { API_KEY, type ChatCluster, ChatUser, SITE_SECRET, startChat, until } from './harness.js';

const texts = (events: any[]) => events.filter((e) => e.type === 'message' || e.type === 'action').map((e) => e.text);

describe('chat app', () => {
  let chat: ChatCluster;
  const users: ChatUser[] = [];
  const guest = async (nick: string, url = chat.url) => {
    const user = await ChatUser.guest(url, nick);
    users.push(user);
    return user;
  };
  const moderator = async (id: string, name: string) => {
    const user = await ChatUser.site(chat.url, await signHubToken(SITE_SECRET, { sub: id, name, roles: ['moderator'] }, 600));
    users.push(user);
    return user;
  };

  before(async () => {
    chat = await startChat({ workers: 2, shm: true, config: { flood: { ratePerSecond: 50, burst: 50 }, filter: { words: ['darn'], mode: 'mask' } } });
  });
  after(async () => {
    for (const user of users) user.close();
    await chat.close();
  });

  test('a guest picks a nickname; bad and taken nicknames are refused with a clear error', async () => {
    const ann = await guest('ann');
    assert.match(ann.user.id, /^guest-/);
    assert.equal(ann.user.name, 'ann');
    const bad = await new ChatUser(chat.url).call('session', { nick: 'a b<script>' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'KOBOLD_ERR_CHAT_NICK');
    const taken = await new ChatUser(chat.url).call('session', { nick: 'ANN' });
    assert.equal(taken.status, 409);
    assert.equal(taken.body.error.code, 'KOBOLD_ERR_CHAT_NICK_TAKEN');
    const noToken = await new ChatUser(chat.url).call('send', { room: 'lobby', text: 'hi' });
    assert.equal(noToken.status, 401);
    assert.equal(noToken.body.error.code, 'KOBOLD_ERR_CHAT_SESSION');
  });

  test('messages reach the other users of the room in real time, across workers, as plain text', async () => {
    const bob = await guest('bob');
    const cid = await guest('cid', chat.workers[1].url);
    const joined = await bob.ok('join', { room: 'lobby' });
    assert.equal(joined.joined.channel, 'chat:lobby');
    await bob.connect([{ channel: 'chat:lobby', since: joined.joined.position }]);
    const answer = await cid.send('lobby', '<b>hello</b> & <img src=x onerror=alert(1)>');
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    await until(() => texts(bob.events('chat:lobby')).length > 0, 'the message at bob');
    const [event] = bob.events('chat:lobby');
    assert.equal(event.text, '<b>hello</b> & <img src=x onerror=alert(1)>');
    assert.deepEqual(event.from, { id: cid.user.id, name: 'cid' });
  });

  test('history on join; resume after a dropped connection loses nothing and repeats nothing', async () => {
    const dee = await guest('dee');
    for (const n of [1, 2, 3]) assert.equal((await dee.send('lobby', `history ${n}`)).status, 200);
    const eve = await guest('eve');
    const { joined } = await eve.ok('join', { room: 'lobby' });
    assert.deepEqual(texts(joined.history).slice(-3), ['history 1', 'history 2', 'history 3']);
    await eve.connect([{ channel: 'chat:lobby', since: joined.position }]);
    await dee.send('lobby', 'live 1');
    await until(() => texts(eve.events('chat:lobby')).includes('live 1'), 'live 1');
    for (const worker of chat.workers) worker.dropWebSockets();
    for (const n of [2, 3, 4]) await dee.send('lobby', `live ${n}`);
    await until(() => texts(eve.events('chat:lobby')).includes('live 4'), 'live 4 after the reconnect', 8000);
    assert.deepEqual(texts(eve.events('chat:lobby')).filter((t) => t.startsWith('live')), ['live 1', 'live 2', 'live 3', 'live 4']);
  });

  test('/who lists the members; unknown commands and bad usage answer privately', async () => {
    const fay = await guest('fay');
    const { joined } = await fay.ok('join', { room: 'lobby' });
    await fay.connect([{ channel: 'chat:lobby', since: joined.position }]);
    let who = await fay.send('lobby', '/who');
    for (let i = 0; i < 100 && !who.body.result.who.members.some((m: any) => m.name === 'fay'); i++) who = await fay.send('lobby', '/who');
    assert.equal(who.status, 200);
    assert.ok(who.body.result.who.members.some((m: any) => m.name === 'fay'), JSON.stringify(who.body));
    assert.ok(who.body.result.who.counts.users >= 1);
    const unknown = await fay.send('lobby', '/dance now');
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.error.code, 'KOBOLD_ERR_CHAT_UNKNOWN_COMMAND');
    assert.match(unknown.body.error.message, /\/dance.*\/help/);
    const usage = await fay.send('lobby', '/msg');
    assert.equal(usage.body.error.code, 'KOBOLD_ERR_CHAT_USAGE');
    const help = await fay.send('lobby', '/help');
    for (const command of ['/join', '/leave', '/me', '/msg', '/who', '/topic', '/mute', '/kick', '/ban', '/unban']) assert.match(help.body.result.notice, new RegExp(command));
    const me = await fay.send('lobby', '/me waves');
    assert.equal(me.status, 200);
    const noRoom = await fay.send(undefined, 'hello?');
    assert.equal(noRoom.body.error.code, 'KOBOLD_ERR_CHAT_USAGE');
  });

  test('a private message reaches every connection of the recipient, and no one else', async () => {
    const gus = await guest('gus');
    const hal = await guest('hal');
    const halTab2 = new ChatUser(chat.workers[1].url);
    halTab2.useSession({ token: hal.token, user: hal.user });
    users.push(halTab2);
    const ivy = await guest('ivy');
    await Promise.all([hal.connect([]), halTab2.connect([]), ivy.connect([])]);
    const sent = await gus.send('lobby', '/msg hal psst <i>secret</i>');
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
    const inbox = `chatuser:${hal.user.id}`;
    await until(() => hal.events(inbox).length > 0 && halTab2.events(inbox).length > 0, 'the pm in both tabs');
    assert.equal(hal.events(inbox)[0].text, 'psst <i>secret</i>');
    assert.equal(hal.events(inbox)[0].from.name, 'gus');
    assert.equal(ivy.events(`chatuser:${ivy.user.id}`).length, 0);
    const nobody = await gus.send('lobby', '/msg nobody-here hi');
    assert.equal(nobody.status, 404);
    assert.equal(nobody.body.error.code, 'KOBOLD_ERR_CHAT_NO_USER');
    // Reading another user's inbox is refused by the hub.
    const snoop = new ChatUser(chat.url);
    snoop.useSession({ token: ivy.token, user: ivy.user });
    users.push(snoop);
    const errors: string[] = [];
    await snoop.connect([]);
    snoop.hub!.on('error', (_channel, error) => errors.push(error.code));
    snoop.follow(inbox);
    await until(() => errors.length > 0, 'the refusal');
    assert.equal(errors[0], 'KOBOLD_ERR_HUB_FORBIDDEN');
  });

  test('flood control, length limit, word mask and link detection', async () => {
    const flood = await startChat({ config: { flood: { ratePerSecond: 0.5, burst: 3 }, maxMessageLength: 20, filter: { words: ['darn'], mode: 'reject' }, links: 'reject' } });
    try {
      const jo = await ChatUser.guest(flood.url, 'jo');
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push((await jo.send('lobby', `m${i}`)).status);
      assert.deepEqual(statuses, [200, 200, 200, 429]);
      const limited = await jo.send('lobby', 'x');
      assert.equal(limited.body.error.code, 'KOBOLD_ERR_CHAT_FLOOD');
    } finally {
      await flood.close();
    }
    const kim = await guest('kim');
    const long = await kim.send('lobby', 'x'.repeat(501));
    assert.equal(long.status, 413);
    assert.equal(long.body.error.code, 'KOBOLD_ERR_CHAT_TOO_LONG');
    const empty = await kim.send('lobby', '   ');
    assert.equal(empty.body.error.code, 'KOBOLD_ERR_CHAT_EMPTY');
    const { joined } = await kim.ok('join', { room: 'lobby' });
    await kim.connect([{ channel: 'chat:lobby', since: joined.position }]);
    await kim.send('lobby', 'Darn it, see https://example.com/a?b=1.');
    await until(() => kim.events('chat:lobby').some((e) => e.from?.id === kim.user.id), 'kim’s message');
    const event = kim.events('chat:lobby').find((e) => e.from?.id === kim.user.id);
    assert.equal(event.text, '**** it, see https://example.com/a?b=1.');
    assert.deepEqual(event.links, [{ start: 13, end: 38, url: 'https://example.com/a?b=1' }]);
  });

  test('moderators mute, kick, ban and unban; others may not', async () => {
    const mod = await moderator('m1', 'Mia');
    assert.equal(mod.user.moderator, true);
    // The moderator acts on the other worker: what lou's worker read before must not hide it.
    mod.baseUrl = chat.workers[1].url;
    const lou = await guest('lou');
    const { joined } = await lou.ok('join', { room: 'lobby' });
    await lou.connect([{ channel: 'chat:lobby', since: joined.position }]);
    assert.equal((await lou.send('lobby', 'hi all')).status, 200);
    const notMod = await lou.send('lobby', '/mute Mia 5m');
    assert.equal(notMod.status, 403);
    assert.equal(notMod.body.error.code, 'KOBOLD_ERR_CHAT_NOT_MODERATOR');
    assert.equal((await mod.send('lobby', '/mute lou 10m')).status, 200);
    const muted = await lou.send('lobby', 'can I talk?');
    assert.equal(muted.status, 403);
    assert.equal(muted.body.error.code, 'KOBOLD_ERR_CHAT_MUTED');
    assert.equal((await mod.send('lobby', '/unmute lou')).status, 200);
    assert.equal((await lou.send('lobby', 'thanks')).status, 200);
    assert.equal((await mod.send('lobby', '/mute lou forever')).body.error.code, 'KOBOLD_ERR_CHAT_USAGE');

    assert.equal((await mod.send('lobby', '/kick lou')).status, 200);
    const inbox = `chatuser:${lou.user.id}`;
    await until(() => lou.events(inbox).some((e) => e.type === 'removed'), 'the kick notice');
    assert.equal(lou.events(inbox).find((e) => e.type === 'removed').action, 'kick');
    assert.ok(lou.events('chat:lobby').some((e) => e.type === 'moderation' && e.action === 'kick' && e.target.name === 'lou'));

    const ban = await mod.send('lobby', '/ban lou 1h');
    assert.equal(ban.status, 200);
    assert.match(ban.body.result.notice, /lou banned in #lobby until/);
    const rejoin = await lou.call('join', { room: 'lobby' });
    assert.equal(rejoin.status, 403);
    assert.equal(rejoin.body.error.code, 'KOBOLD_ERR_CHAT_BANNED');
    assert.equal((await lou.send('lobby', 'hello?')).body.error.code, 'KOBOLD_ERR_CHAT_BANNED');
    assert.equal((await mod.send('lobby', '/unban lou')).status, 200);
    assert.equal((await lou.call('join', { room: 'lobby' })).status, 200);
    assert.equal((await mod.send('lobby', '/unban lou')).body.error.code, 'KOBOLD_ERR_CHAT_USAGE');
  });

  test('topics: anyone reads, moderators set', async () => {
    const mod = await moderator('m2', 'Max');
    const ned = await guest('ned');
    assert.equal((await ned.send('lobby', '/topic new topic')).body.error.code, 'KOBOLD_ERR_CHAT_NOT_MODERATOR');
    assert.equal((await mod.send('lobby', '/topic Be <nice>')).status, 200);
    const shown = await ned.send('lobby', '/topic');
    assert.equal(shown.body.result.topic.text, 'Be <nice>');
    const rooms = await (await fetch(`${chat.url}/chat/api/rooms`)).json();
    assert.equal(rooms.result.rooms.find((r: any) => r.name === 'lobby').topic, 'Be <nice>');
  });

  test('private rooms: invite-only, enforced by the hub through the token', async () => {
    const oli = await guest('oli');
    const created = await oli.send(undefined, '/join secret private');
    assert.equal(created.status, 200, JSON.stringify(created.body));
    assert.equal(created.body.result.joined.channel, 'chatp:secret');
    oli.useSession(created.body.result.session);
    await oli.connect([{ channel: 'chatp:secret', since: created.body.result.joined.position }]);
    const pia = await guest('pia');
    const refused = await pia.send(undefined, '/join secret');
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.code, 'KOBOLD_ERR_CHAT_INVITE_ONLY');
    assert.equal((await pia.send('secret', 'let me in')).body.error.code, 'KOBOLD_ERR_CHAT_NOT_IN_ROOM');
    const errors: string[] = [];
    await pia.connect([]);
    pia.hub!.on('error', (_channel, error) => errors.push(error.code));
    pia.follow('chatp:secret');
    await until(() => errors.length > 0, 'the hub refusing the private channel');
    assert.equal(errors[0], 'KOBOLD_ERR_HUB_FORBIDDEN');

    assert.equal((await oli.send('secret', '/invite pia')).status, 200);
    await until(() => pia.events(`chatuser:${pia.user.id}`).some((e) => e.type === 'invited'), 'the invitation');
    const joined = await pia.send(undefined, '/join secret');
    assert.equal(joined.status, 200);
    pia.useSession(joined.body.result.session);
    await pia.connect([{ channel: 'chatp:secret', since: joined.body.result.joined.position }]);
    await oli.send('secret', 'welcome');
    await until(() => texts(pia.events('chatp:secret')).includes('welcome'), 'the private message at pia');
    const rooms = await (await fetch(`${chat.url}/chat/api/rooms`)).json();
    assert.ok(!rooms.result.rooms.some((r: any) => r.name === 'secret'), 'private rooms are not listed');
  });

  test('system messages from the server API need the key and reach the rooms', async () => {
    const quinn = await guest('quinn');
    const { joined } = await quinn.ok('join', { room: 'lobby' });
    await quinn.connect([{ channel: 'chat:lobby', since: joined.position }]);
    const anon = new ChatUser(chat.url);
    const refused = await anon.call('system', { text: 'restart' });
    assert.equal(refused.status, 401);
    assert.equal(refused.body.error.code, 'KOBOLD_ERR_CHAT_API_KEY');
    const sent = await anon.call('system', { text: 'The server restarts in 5 minutes' }, { 'x-api-key': API_KEY });
    assert.equal(sent.status, 200);
    assert.ok(sent.body.result.rooms.includes('lobby'));
    await until(() => quinn.events('chat:lobby').some((e) => e.type === 'system'), 'the system message');
    const bad = await anon.call('system', '{"text": ', { 'x-api-key': API_KEY });
    assert.equal(bad.status, 400);
    assert.equal((await anon.call('system', { text: 'x', extra: 1 }, { 'x-api-key': API_KEY })).body.error.code, 'KOBOLD_ERR_BAD_REQUEST');
  });

  test('SSE and refresh-polling clients receive and send', async () => {
    const rae = await guest('rae');
    const sam = await guest('sam');
    const a = await rae.ok('join', { room: 'lobby' });
    const b = await sam.ok('join', { room: 'lobby' });
    await rae.connect([{ channel: 'chat:lobby', since: a.joined.position }], { transports: ['sse'] });
    await sam.connect([{ channel: 'chat:lobby', since: b.joined.position }], { transports: ['refresh'] });
    assert.equal(rae.hub!.transport, 'sse');
    assert.equal(sam.hub!.transport, 'refresh');
    await rae.send('lobby', 'from sse');
    await sam.send('lobby', 'from refresh');
    await until(() => ['from sse', 'from refresh'].every((t) => texts(rae.events('chat:lobby')).includes(t) && texts(sam.events('chat:lobby')).includes(t)), 'both ways');
  });

  test('each message is stored once, by the worker that accepted it', async () => {
    const tia = await guest('tia', chat.workers[1].url);
    const sent = await tia.send('lobby', 'stored once');
    const id = sent.body.result.sent.id;
    await until(() => count(chat.dataDir, id) > 0, 'the batch');
    assert.equal(count(chat.dataDir, id), 1);
  });
});

describe('chat persistence and config', () => {
  test('history survives a restart of every worker and of the hub (a new epoch)', async () => {
    const first = await startChat();
    const uma = await ChatUser.guest(first.url, 'uma');
    for (const n of [1, 2, 3]) await uma.send('lobby', `before restart ${n}`);
    await first.close({ removeData: false });
    const second = await startChat({ dataDir: first.dataDir });
    try {
      const vic = await ChatUser.guest(second.url, 'vic');
      const { joined } = await vic.ok('join', { room: 'lobby' });
      assert.deepEqual(texts(joined.history), ['before restart 1', 'before restart 2', 'before restart 3']);
      assert.equal(joined.position.offset, 0, 'the hub lost its window: only the store remembers');
    } finally {
      await second.close();
    }
  });

  test('rooms cannot be created when the config says nobody; host-site tokens are checked', async () => {
    const chat = await startChat({ config: { createRooms: 'nobody', guests: false, rooms: [{ name: 'main' }] } });
    try {
      const guestRefused = await new ChatUser(chat.url).call('session', { nick: 'wes' });
      assert.equal(guestRefused.body.error.code, 'KOBOLD_ERR_CHAT_SESSION');
      const forged = await new ChatUser(chat.url).call('session', { siteToken: await signHubToken('x'.repeat(32), { sub: 'u1' }, 60) });
      assert.equal(forged.status, 401);
      assert.equal(forged.body.error.code, 'KOBOLD_ERR_HUB_TOKEN_INVALID');
      const xia = await ChatUser.site(chat.url, await signHubToken(SITE_SECRET, { sub: 'u2', name: 'Xia' }, 60));
      assert.equal(xia.user.moderator, false);
      const created = await xia.send(undefined, '/join newroom');
      assert.equal(created.status, 403);
      assert.equal(created.body.error.code, 'KOBOLD_ERR_CHAT_NO_CREATE');
      assert.equal((await xia.send(undefined, '/join main')).status, 200);
      assert.equal((await xia.send(undefined, '/join Bad Name!')).body.error.code, 'KOBOLD_ERR_CHAT_USAGE');
      assert.equal((await xia.send(undefined, '/join bad!')).body.error.code, 'KOBOLD_ERR_CHAT_BAD_ROOM');
      const page = await fetch(chat.url + '/');
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
      assert.match(await page.text(), /<title>Kobold chat<\/title>/);
    } finally {
      await chat.close();
    }
  });
});

function count(dataDir: string, id: string): number {
  const db = new Database(join(dataDir, 'chat.sqlite'), { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM messages WHERE id = ?').get(id) as { n: number }).n;
  } finally {
    db.close();
  }
}
