// Kobold chat page. Plain JS, no framework. Every piece of user text reaches the DOM through
// textContent (never innerHTML), so a message can never become markup.
const PRIVATE = '@private';
const $ = (id) => document.getElementById(id);

const state = {
  session: null, // { token, expiresAt, user }
  client: null,
  freshTokenNeeded: false,
  rooms: new Map(), // name -> { name, topic, channel, private, members: Map, counts, log: [], unread, sub }
  current: null,
  privateLog: [],
  privateUnread: 0,
};

// --- the hub client (from /hub/client.js; ESM, or the IIFE that defines window.KoboldHub)

async function loadHubClient() {
  try {
    const mod = await import('/hub/client.js');
    if (mod.HubClient) return mod.HubClient;
  } catch {
    // not an ES module: load it as a classic script below
  }
  if (!window.KoboldHub) {
    await new Promise((resolve, reject) => {
      const script = document.createElement('script');
      script.src = '/hub/client.js';
      script.onload = resolve;
      script.onerror = () => reject(new Error('could not load /hub/client.js'));
      document.head.append(script);
    });
  }
  return window.KoboldHub.HubClient;
}

// --- HTTP API

async function api(path, body) {
  const headers = { 'content-type': 'application/json' };
  if (state.session) headers.authorization = 'Bearer ' + state.session.token;
  const response = await fetch('/chat/api/' + path, { method: 'POST', headers, body: JSON.stringify(body ?? {}) });
  const answer = await response.json();
  if (answer.error) throw Object.assign(new Error(answer.error.message), { code: answer.error.code, status: response.status });
  return answer.result;
}

async function token() {
  // After a disconnect the server may have changed our rooms (kicked from a private one): renew.
  if (state.freshTokenNeeded) {
    state.freshTokenNeeded = false;
    try {
      setSession(await api('session', {}));
    } catch (error) {
      if (error.status === 401) signOut(error.message);
    }
  }
  return state.session?.token;
}

function setSession(session) {
  state.session = session;
  sessionStorage.setItem('kobold-chat-session', JSON.stringify(session));
  $('me').textContent = session.user.name + (session.user.moderator ? ' (moderator)' : '');
}

function signOut(reason) {
  sessionStorage.removeItem('kobold-chat-session');
  state.client?.close();
  location.hash = '';
  $('login-error').textContent = reason ?? '';
  $('chat').hidden = true;
  $('login').hidden = false;
}

// --- connecting

let HubClient;

function connectHub() {
  const previous = state.client;
  previous?.close();
  const client = new HubClient({ url: location.origin + '/hub', token });
  state.client = client;
  let wasConnected = false;
  client.on('state', (s) => {
    if (s === 'connected') wasConnected = true;
    if (s === 'connecting' && wasConnected) state.freshTokenNeeded = true;
    showTransport();
  });
  client.on('join', (channel, user) => presenceChanged(channel, user, true));
  client.on('leave', (channel, user) => presenceChanged(channel, user, false));
  client.on('resync', (channel) => {
    const room = roomByChannel(channel);
    if (room) void rejoin(room.name);
  });
  client.on('error', (channel, error) => {
    const room = roomByChannel(channel);
    if (room) removeRoom(room.name, `You cannot read #${room.name}: ${error.message}`);
  });
  client.on('disconnect', (_code, reason) => notice(`Disconnected: ${reason}`, 'error'));
  const since = (channel) => previous?.position(channel);
  client.subscribe(inboxChannel(), (p) => inboxEvent(p.data), { since: since(inboxChannel()) });
  for (const room of state.rooms.values()) room.sub = client.subscribe(room.channel, (p) => roomEvent(room, p.data), { since: since(room.channel) });
  client.connect().then(showTransport, () => {}); // rejected only when closed first (a newer client took over)
  return client;
}

function inboxChannel() {
  return 'chatuser:' + state.session.user.id;
}

function showTransport() {
  const client = state.client;
  $('transport').textContent = client?.transport ? `${client.transport}` : client?.state ?? 'offline';
}

// --- rooms

async function rejoin(name) {
  try {
    addRoom((await api('join', { room: name })).joined);
  } catch (error) {
    removeRoom(name, error.message);
  }
}

function addRoom(joined) {
  let room = state.rooms.get(joined.name);
  const isNew = room === undefined;
  if (isNew) room = { name: joined.name, sub: null, unread: 0 };
  Object.assign(room, { topic: joined.topic, channel: joined.channel, private: joined.private, counts: joined.counts, log: [] });
  room.members = new Map(joined.members.map((m) => [m.id, m]));
  for (const event of joined.history) room.log.push(event);
  state.rooms.set(room.name, room);
  room.sub?.unsubscribe();
  room.sub = state.client.subscribe(room.channel, (p) => roomEvent(room, p.data), { since: joined.position });
  saveRooms();
  renderRoomList();
  if (isNew || state.current === room.name) select(room.name);
}

function removeRoom(name, why) {
  const room = state.rooms.get(name);
  if (!room) return;
  room.sub?.unsubscribe();
  state.rooms.delete(name);
  saveRooms();
  if (state.current === name) select(state.rooms.keys().next().value ?? PRIVATE);
  renderRoomList();
  if (why) notice(why, 'error');
}

function roomByChannel(channel) {
  for (const room of state.rooms.values()) if (room.channel === channel) return room;
  return undefined;
}

function saveRooms() {
  localStorage.setItem('kobold-chat-rooms', JSON.stringify([...state.rooms.keys()]));
}

function select(name) {
  state.current = name;
  const room = state.rooms.get(name);
  if (room) room.unread = 0;
  else state.privateUnread = 0;
  $('room-title').textContent = room ? (room.private ? '🔒 ' : '#') + room.name : 'Private messages';
  $('room-topic').textContent = room ? room.topic : 'Messages only you and the other person see. Reply with /msg <nick> <text>.';
  const log = $('log');
  log.replaceChildren(...(room ? room.log : state.privateLog).map(renderEvent));
  log.scrollTop = log.scrollHeight;
  renderRoomList();
  renderMembers();
}

// --- events from the hub

function roomEvent(room, event) {
  if (event.type === 'topic') room.topic = event.text;
  room.log.push(event);
  if (room.log.length > 500) room.log.shift();
  if (state.current === room.name) {
    append(event);
    if (event.type === 'topic') $('room-topic').textContent = event.text;
  } else {
    room.unread++;
    renderRoomList();
  }
}

function inboxEvent(event) {
  if (event.type === 'removed') {
    state.freshTokenNeeded = true;
    const until = event.untilMs ? ` until ${new Date(event.untilMs).toLocaleString()}` : '';
    removeRoom(event.room, `${event.by.name} ${event.action === 'ban' ? 'banned' : 'kicked'} you from #${event.room}${until}`);
    return;
  }
  if (event.type === 'invited') {
    notice(`${event.by.name} invited you to the private room #${event.room}: type /join ${event.room}`, 'system');
    return;
  }
  state.privateLog.push(event);
  if (state.current === PRIVATE) append(event);
  else {
    state.privateUnread++;
    renderRoomList();
    notice(`Private message from ${event.from?.name ?? 'the server'} (see "Private messages")`, 'notice');
  }
}

function presenceChanged(channel, user, joined) {
  const room = roomByChannel(channel);
  if (!room) return;
  const name = user.info?.name ?? user.userId;
  if (joined) room.members.set(user.userId, { id: user.userId, name, connections: 1 });
  else room.members.delete(user.userId);
  room.counts = { ...room.counts, users: room.members.size };
  roomEvent(room, { type: 'presence', text: `${name} ${joined ? 'joined' : 'left'}`, time: Date.now() });
  if (state.current === room.name) renderMembers();
}

// --- rendering (textContent only)

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Text with its link spans as anchors; everything else stays text. */
function withLinks(text, links) {
  const fragment = document.createDocumentFragment();
  let at = 0;
  for (const link of links ?? []) {
    if (!/^https?:\/\//i.test(link.url) || link.start < at) continue;
    fragment.append(text.slice(at, link.start));
    const a = el('a', '', text.slice(link.start, link.end));
    a.href = link.url;
    a.rel = 'noopener noreferrer nofollow';
    a.target = '_blank';
    fragment.append(a);
    at = link.end;
  }
  fragment.append(text.slice(at));
  return fragment;
}

function renderEvent(event) {
  const li = el('li', event.type);
  li.append(el('time', 'time', new Date(event.time ?? Date.now()).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })));
  switch (event.type) {
    case 'message':
      li.append(el('span', 'from', event.from.name + ':'), withLinks(event.text, event.links));
      break;
    case 'action':
      li.append(`* ${event.from.name} `, withLinks(event.text, event.links));
      break;
    case 'pm':
      li.append(el('span', 'from', `${event.from.name} → ${event.to.name}:`), withLinks(event.text, event.links));
      break;
    case 'topic':
      li.append(`${event.from.name} set the topic: ${event.text}`);
      break;
    case 'moderation': {
      const until = event.untilMs ? ` until ${new Date(event.untilMs).toLocaleString()}` : '';
      li.append(`${event.target.name} was ${{ mute: 'muted', unmute: 'unmuted', kick: 'kicked', ban: 'banned', unban: 'unbanned' }[event.action]} by ${event.from.name}${until}`);
      li.className = 'notice';
      break;
    }
    default: // system, presence, notice, error
      li.append(event.text);
  }
  return li;
}

function append(event) {
  const log = $('log');
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.append(renderEvent(event));
  if (atBottom) log.scrollTop = log.scrollHeight;
}

/** A line for this user only, in the current view. */
function notice(text, kind = 'notice') {
  const event = { type: kind, text, time: Date.now() };
  const room = state.rooms.get(state.current);
  (room ? room.log : state.privateLog).push(event);
  append(event);
}

function renderRoomList() {
  const list = $('room-list');
  const entries = [...state.rooms.values()].map((room) => [room.name, (room.private ? '🔒 ' : '#') + room.name, room.unread]);
  entries.push([PRIVATE, 'Private messages', state.privateUnread]);
  list.replaceChildren(
    ...entries.map(([name, label, unread]) => {
      const button = el('button', '', label);
      button.type = 'button';
      button.setAttribute('aria-current', String(state.current === name));
      if (unread > 0) button.append(el('span', 'unread', String(unread)));
      button.addEventListener('click', () => select(name));
      const li = el('li');
      li.append(button);
      return li;
    }),
  );
}

function renderMembers() {
  const room = state.rooms.get(state.current);
  const members = room ? [...room.members.values()].sort((a, b) => a.name.localeCompare(b.name)) : [];
  $('online-count').textContent = String(room ? room.counts?.users ?? members.length : 0);
  $('member-list').replaceChildren(
    ...members.map((m) => {
      const button = el('button', '', m.name);
      button.type = 'button';
      button.title = `Send ${m.name} a private message`;
      button.addEventListener('click', () => {
        $('text').value = `/msg ${m.name} `;
        $('text').focus();
      });
      const li = el('li');
      li.append(button);
      return li;
    }),
  );
}

// --- sending

async function send(text) {
  const room = state.rooms.has(state.current) ? state.current : undefined;
  const result = await api('send', { room, text });
  if (result.session) {
    setSession(result.session);
    // A WebSocket keeps the token it connected with: reconnect so the hub sees the new rooms.
    if (state.client.transport === 'websocket') connectHub();
  }
  if (result.joined) addRoom(result.joined);
  if (result.left) removeRoom(result.left);
  if (result.notice && !result.joined) notice(result.notice);
}

async function start() {
  HubClient = await loadHubClient();
  $('login').hidden = true;
  $('chat').hidden = false;
  const client = connectHub();
  const saved = JSON.parse(localStorage.getItem('kobold-chat-rooms') ?? '[]');
  const rooms = saved.length > 0 ? saved : [(await fetch('/chat/api/rooms').then((r) => r.json())).result.rooms[0]?.name].filter(Boolean);
  renderRoomList();
  // A channel subscribed while the first SSE stream is still opening makes the hub client
  // reopen it, abort its own attempt and fall back to long-polling: join once connected
  // (or after 5 s, the client's open timeout, whatever happened).
  await Promise.race([client.connect().catch(() => {}), new Promise((resolve) => setTimeout(resolve, 5000))]);
  for (const name of rooms) await rejoin(name);
  if (state.current === null) select(PRIVATE);
  $('text').focus();
}

$('login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  try {
    setSession(await api('session', { nick: $('nick').value }));
    await start();
  } catch (error) {
    $('login-error').textContent = error.message;
  }
});

$('send-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = $('text');
  const text = input.value;
  if (text.trim() === '') return;
  input.value = '';
  try {
    await send(text);
  } catch (error) {
    notice(error.message, 'error');
    if (error.status === 401) signOut(error.message);
  }
});

$('join-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const name = $('join-room').value.trim();
  if (name === '') return;
  $('join-room').value = '';
  try {
    await send('/join ' + name);
  } catch (error) {
    notice(error.message, 'error');
  }
});

// Alt+ArrowUp/Down moves between rooms.
document.addEventListener('keydown', (event) => {
  if (!event.altKey || (event.key !== 'ArrowUp' && event.key !== 'ArrowDown')) return;
  const names = [...state.rooms.keys(), PRIVATE];
  const at = names.indexOf(state.current);
  select(names[(at + (event.key === 'ArrowDown' ? 1 : names.length - 1)) % names.length]);
  event.preventDefault();
});

// A host site passes its token in the fragment (#siteToken=…): it never reaches server logs.
const siteToken = new URLSearchParams(location.hash.slice(1)).get('siteToken');
const saved = JSON.parse(sessionStorage.getItem('kobold-chat-session') ?? 'null');
if (siteToken) {
  api('session', { siteToken })
    .then((session) => (setSession(session), start()))
    .catch((error) => signOut(error.message));
} else if (saved && saved.expiresAt > Date.now() + 60_000) {
  setSession(saved);
  start().catch((error) => signOut(error.message));
}
