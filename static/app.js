// app.js is the page: it routes between the start screen, the "join as"
// screen of a deep link and the room, and wires the room's controls to its
// connection (chat.js) and its message list (messages.js).

import { RoomConnection } from './chat.js';
import { MessageList, hue } from './messages.js';
import { TypingIndicator, TypingSignal } from './typing.js';
import { Notifier, mentions, supported as canNotify } from './notify.js';
import { drawQR } from './share.js';
import { FileShare, wireFiles } from './files.js';
import { HostPanel, hostRefusals, wireHost } from './host.js';
import { Call } from './call.js';
import { Reactions, ReplyBar, oneEmoji } from './reactions.js';
import {
  RoomSeal, available as canEncrypt, cost as sealedCost, keyFromHash, newRoomSecret, showSeal,
} from './e2ee.js';

// nameKey is where the chosen display name is remembered on this device.
const nameKey = 'hallway.name';
// baseTitle is the tab title; unread messages are prefixed as "(3) Hallway".
const baseTitle = 'Hallway';
// warnRatio is how full the message must be before the counter shows.
const warnRatio = 0.8;
// defaultMaxBytes is used until the server's welcome says otherwise.
const defaultMaxBytes = 4096;

const roomPattern = /^[a-z0-9_-]{1,64}$/;
const namePattern = /^[\p{L}\p{N} _.-]+$/u;
const maxNameChars = 32;

const $ = (id) => document.getElementById(id);
const encoder = new TextEncoder();

// safely runs one extra step of showing a message, such as finding a
// mention, and returns fallback if it throws: the error is reported, and the
// message itself still shows.
function safely(fn, fallback) {
  try {
    return fn();
  } catch (err) {
    reportError(err);
    return fallback;
  }
}

// byteLength is the UTF-8 size of text, as the server counts it.
export function byteLength(text) {
  return encoder.encode(text).length;
}

// parseRoom turns what a person typed or pasted (a code, /r/code or a full
// link) into a room name, or returns "" when it is not one.
export function parseRoom(input) {
  let s = input.trim();
  const m = s.match(/(?:^|\/)r\/([^/?#\s]+)\/?(?:[?#].*)?$/);
  if (m) s = m[1];
  try {
    s = decodeURIComponent(s);
  } catch {
    return '';
  }
  s = s.toLowerCase();
  return roomPattern.test(s) ? s : '';
}

// nameProblem explains why a display name would be refused, or returns "".
export function nameProblem(name) {
  if (name === '') return '';
  if ([...name].length > maxNameChars) return `Names can be at most ${maxNameChars} characters.`;
  if (!namePattern.test(name)) return 'Use letters, digits, spaces and _ - . only.';
  return '';
}

function rememberedName() {
  try {
    return localStorage.getItem(nameKey);
  } catch {
    return null;
  }
}

function rememberName(name) {
  try {
    localStorage.setItem(nameKey, name);
  } catch {
    // Storage can be off (private mode); the name then lasts for this visit.
  }
}

// randomTag returns a few random base-36 characters for client message ids.
function randomTag() {
  const a = crypto.getRandomValues(new Uint32Array(2));
  return a[0].toString(36) + a[1].toString(36).slice(0, 3);
}

const sessionTag = randomTag();
let clientSeq = 0;

// nextClientId returns a fresh id for an outgoing message (≤ 64 chars of [A-Za-z0-9_-]).
function nextClientId() {
  clientSeq++;
  return `c-${sessionTag}-${clientSeq}`;
}

// showView shows one of the three screens.
function showView(id) {
  for (const v of ['home', 'gate', 'room']) $(v).hidden = v !== id;
  document.body.dataset.view = id;
}

function showError(el, text) {
  el.textContent = text;
  el.hidden = !text;
}

// navigate changes the address without a reload and shows the new screen.
function navigate(path, state = null) {
  history.pushState(state, '', path);
  route();
}

// route shows the screen for the current address.
function route() {
  const m = location.pathname.match(/^\/r\/([^/]+)\/?$/);
  if (!m) {
    room.leave();
    showHome();
    return;
  }
  const code = parseRoom(m[1]);
  if (!code) {
    room.leave();
    showHome('That link does not point to a room. Check it, or start a new room.');
    return;
  }
  // The key stays in the address bar, so that a copied address bar, a
  // bookmark and a reload all give the same working link as Copy link. It is
  // also kept in history state, which a page without a fragment falls back on.
  const state = { ...(history.state || {}), ...(location.hash ? keyFromHash(location.hash) : {}) };
  const hash = location.hash || (typeof state.key === 'string' ? `#k=${state.key}` : '');
  if (hash || m[1] !== code) {
    history.replaceState(state, '', `/r/${code}${hash}`);
  }
  if (room.code === code && room.conn) return;
  room.leave();
  const name = rememberedName();
  if (name === null) {
    showGate(code);
  } else {
    room.enter(code, name, history.state || {});
  }
}

// ---- Start screen ---------------------------------------------------------

function showHome(error = '') {
  showView('home');
  document.title = baseTitle;
  const name = rememberedName();
  if (name !== null && $('home-name').value === '') $('home-name').value = name;
  showError($('home-error'), error);
  if (!canEncrypt()) {
    $('home-e2ee').checked = false;
    $('home-e2ee').disabled = true;
    $('home-e2ee-hint').textContent = 'Unavailable here: encryption needs a secure page (https://, or localhost), and this one is not. Rooms started from this page are not encrypted.';
  }
}

// homeName checks and remembers the name typed on the start screen.
function homeName() {
  const name = $('home-name').value.trim();
  const problem = nameProblem(name);
  showError($('home-name-error'), problem);
  $('home-name').setAttribute('aria-invalid', String(Boolean(problem)));
  if (problem) {
    $('home-name').focus();
    return null;
  }
  rememberName(name);
  return name;
}

async function createRoom(capacity) {
  if (homeName() === null) return;
  const buttons = [$('create-room'), $('create-private')];
  buttons.forEach((b) => { b.disabled = true; });
  showError($('home-error'), '');
  try {
    // The secret never leaves this page; the server gets its key check only.
    const sealed = $('home-e2ee').checked && canEncrypt() ? await newRoomSecret() : null;
    const res = await fetch('/api/rooms', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        ...(capacity ? { capacity } : {}),
        ...(sealed ? { e2ee: true, keyCheck: sealed.keyCheck } : {}),
      }),
    });
    const body = await res.json().catch(() => ({}));
    if (res.status === 201 && typeof body.room === 'string') {
      const state = { created: true, private: capacity === 2, ...(sealed ? { key: sealed.secret } : {}) };
      if (typeof body.host === 'string' && body.host) state.host = body.host; // history state only, never the link
      navigate(`/r/${encodeURIComponent(body.room)}${sealed ? `#k=${sealed.secret}` : ''}`, state);
      return;
    }
    if (res.status === 429) {
      const wait = Number(res.headers.get('Retry-After'));
      const when = wait > 0 ? ` Try again in ${wait} second${wait === 1 ? '' : 's'}.` : ' Try again in a minute.';
      showError($('home-error'), `You have created a lot of rooms just now.${when}`);
    } else {
      showError($('home-error'), body.text || `Could not create a room (HTTP ${res.status}).`);
    }
  } catch {
    showError($('home-error'), 'Could not reach the server. Check your connection and try again.');
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

function joinFromHome(ev) {
  ev.preventDefault();
  const code = parseRoom($('join-code').value);
  const problem = code ? '' : 'Paste a room link, or type a code of letters, digits, - and _.';
  showError($('join-error'), problem);
  $('join-code').setAttribute('aria-invalid', String(Boolean(problem)));
  if (problem) {
    $('join-code').focus();
    return;
  }
  if (homeName() === null) return;
  const raw = $('join-code').value.trim();
  const hash = raw.includes('#') ? raw.slice(raw.indexOf('#')) : '';
  navigate(`/r/${code}${hash}`, hash ? keyFromHash(hash) : {});
}

// ---- "Join as" screen for deep links --------------------------------------

function showGate(code, error = '') {
  showView('gate');
  document.title = baseTitle;
  $('gate-room').textContent = code;
  $('gate-form').dataset.room = code;
  const name = rememberedName();
  if (name !== null) $('gate-name').value = name;
  showError($('gate-error'), error);
  $('gate-name').setAttribute('aria-invalid', String(Boolean(error)));
  $('gate-name').focus();
}

function joinFromGate(ev) {
  ev.preventDefault();
  const name = $('gate-name').value.trim();
  const problem = nameProblem(name);
  showError($('gate-error'), problem);
  $('gate-name').setAttribute('aria-invalid', String(Boolean(problem)));
  if (problem) return;
  rememberName(name);
  $('home-name').value = name;
  room.enter($('gate-form').dataset.room, name, history.state || {});
}

// ---- The room -------------------------------------------------------------

// refusals says, for a connection the server refused or cut off, what to
// tell the person and which actions make sense.
const refusals = {
  bad_room: { text: 'This room code is not valid.', retry: false },
  room_full: { text: 'This room is full. A private room holds two people.', retry: true },
  origin_not_allowed: { text: 'This page is not allowed to connect to this server.', retry: false },
  close_1008: { text: 'The server disconnected you', retry: true },
  close_1003: { text: 'The server closed the connection after an unexpected message', retry: true },
  close_1009: { text: 'The server closed the connection: a message was too big', retry: true },
  close_4409: { text: 'Another connection took your place in this room', retry: true },
  ...hostRefusals,
};

// sendErrors rewords the server's error codes for a failed message.
const sendErrors = {
  rate_limited: 'you are sending messages too fast. Wait a moment, then retry.',
  message_too_long: 'the message is too long.',
  bad_message: 'the server could not read this message.',
  not_encrypted: 'this room is encrypted, and the message was not.',
  unknown_message: 'the message it answers is no longer in this room’s history.',
};

// RoomView is the room screen: one room, one connection, one message list.
class RoomView {
  constructor() {
    this.code = '';
    this.conn = null;
    this.me = '';
    this.maxBytes = defaultMaxBytes;
    this.welcomes = 0;
    this.quietDrop = false;
    this.unread = 0;
    this.countdown = 0;
    this.seal = new RoomSeal('', {});
    this.host = null; // the host controls (host.js)
    this.inbox = Promise.resolve(); // frames, handled one at a time: opening one takes a while
    this.outbox = Promise.resolve(); // sealed sends, in order
    this.list = new MessageList($('message-list'), $('messages'), $('empty'), {
      me: () => this.me,
      isMe: (name) => name === this.me,
      onRetry: (li, text) => this.retry(li, text),
      onUnseen: (n) => { $('jump').hidden = n === 0; },
    });
    this.files = new FileShare({
      list: this.list, code: () => this.code, seal: () => this.seal, me: () => this.me, nextClientId,
    });
    this.typing = new TypingIndicator($('typing'));
    this.signal = new TypingSignal((active) => Boolean(this.conn?.send('typing', { active })));
    this.call = new Call({ send: (type, p) => Boolean(this.conn?.send(type, p)), seal: () => this.seal });
    this.reactions = new Reactions($('message-list'), {
      me: () => this.me,
      react: (id, emoji, on) => this.react(id, emoji, on),
      reply: (target) => this.replyBar.start(target),
      notice: (text) => showToast(text),
    });
    this.replyBar = new ReplyBar($('reply-bar'), () => this.updateCounter());
  }

  enter(code, name, state) {
    this.code = code;
    this.me = name;
    this.welcomes = 0;
    this.unread = 0;
    this.replaying = true; // the first join's history: old news, never notified
    this.maxBytes = defaultMaxBytes;
    this.list.clear();
    this.reactions.clear();
    this.replyBar.cancel();
    this.files.clear();
    this.typing.clear();
    this.setUsers([]);
    this.hideBanner();
    showView('room');
    document.title = baseTitle;
    $('room-code').textContent = code;
    $('me-name').textContent = name || 'a random name';
    $('composer-input').value = '';
    this.updateCounter();
    if (state.private) {
      this.list.addSystem('Private room: only you and one other person can be here.', 0, 'note');
    }
    const seal = new RoomSeal(code, state);
    this.seal = seal;
    showSeal(seal);
    seal.ready.then(() => {
      if (this.seal === seal) this.sealChanged();
    });
    this.host = new HostPanel(this, state, navigate);
    if (state.moved) {
      this.list.addSystem('You moved to a fresh room with a new key: whoever was removed does not have this link.', 0, 'note');
    }
    if (state.created && seal.secret) {
      this.list.addSystem('End-to-end encrypted room: the key is in the link, and Copy link includes it.', 0, 'note');
    }
    this.conn = new RoomConnection(code, name, {
      onFrame: (type, p, info) => this.receive(type, p, info),
      onState: (s) => this.state(s),
    });
    this.conn.start();
    if (matchMedia('(pointer: fine)').matches) $('composer-input').focus();
  }

  leave() {
    this.call.reset();
    if (!this.conn) return;
    this.conn.stop();
    this.conn = null;
    this.code = '';
    clearInterval(this.countdown);
  }

  // receive queues a frame behind those before it; an encrypted room's
  // frames wait for its keys.
  receive(type, p, info) {
    const seal = this.seal;
    this.inbox = this.inbox
      .then(() => seal.ready)
      .then(() => (seal === this.seal ? this.frame(type, p, info) : undefined))
      .catch((err) => reportError(err));
  }

  // sealChanged shows what the room's encryption now allows.
  sealChanged() {
    showSeal(this.seal);
    this.updateCounter();
  }

  frame(type, p, info) {
    if (this.host?.frame(type, p)) return undefined;
    switch (type) {
      case 'welcome': return this.welcome(p, info);
      case 'chatMessage': return this.chat(p);
      case 'file': return Promise.resolve(this.files.receive(p)).then(() => this.reactions.decorate(this.reactions.item(p.id)));
      case 'react': return this.reacted(p);
      case 'reactions': return this.reactionsFrame(p);
      case 'system': return this.list.addSystem(String(p.text ?? ''), p.ts);
      case 'userCount':
        this.replaying = false;
        return this.setUsers(Array.isArray(p.users) ? p.users : [], p.count);
      case 'error': return this.call.error(p) ? undefined : this.error(p);
      case 'call': return this.call.update(Array.isArray(p.members) ? p.members.map(String) : []);
      case 'signal': return this.call.signal(p);
      case 'typing':
        if (p.username !== this.me) this.typing.update(String(p.username ?? ''), p.active === true);
        return undefined;
      default: return undefined; // Unknown frames are for newer clients.
    }
  }

  welcome(p, info = {}) {
    const asked = this.me;
    this.me = String(p.username ?? this.me);
    this.seal.welcome(p);
    this.sealChanged();
    if (Number(p.maxMessageBytes) > 0) this.maxBytes = Number(p.maxMessageBytes);
    this.files.welcome(p.files);
    $('me-name').textContent = this.me;
    this.call.welcome(p, this.me);
    this.welcomes++;
    if (this.welcomes === 1) {
      if (asked && asked !== this.me) {
        this.list.addSystem(`“${asked}” was taken here, so you joined as ${this.me}.`, 0, 'note');
      } else if (!asked) {
        this.list.addSystem(`You joined as ${this.me}.`, 0, 'note');
      }
    } else if (!this.quietDrop) {
      this.list.addSystem(`Reconnected as ${this.me}.`, Date.now(), 'note');
    }
    this.quietDrop = false;
    this.host?.welcome();
    if (info.missing) {
      // At the gap: what follows is what the server still had.
      this.list.addSystem('Some messages may be missing here: the server no longer had them all.', Date.now(), 'warn gap');
    }
    for (const [clientId, li] of this.list.queued()) {
      const text = li.dataset.text;
      if (this.seal.canSeal()) {
        this.transmit(li, clientId, text);
      } else if (!this.seal.encrypted && this.conn.send('chatMessage', this.outgoing(li, text, clientId))) {
        this.list.markSent(li);
      }
    }
    this.updateCounter();
  }

  async chat(p) {
    if (this.list.has(p.id, Number(p.ts))) return; // replayed after a reconnect
    const view = await this.seal.open({
      id: p.id, ts: Number(p.ts), clientId: p.clientId,
      username: String(p.username ?? ''), message: String(p.message ?? ''),
      quote: this.seal.encrypted ? null : p.quote,
    });
    if (!view) {
      this.list.addSystem('A repeated encrypted message was dropped.', Date.now(), 'warn');
      return;
    }
    safely(() => this.typing.update(String(p.username ?? ''), false));
    const readable = view.flag?.kind !== 'locked';
    view.mention = p.username !== this.me && readable && safely(() => mentions(view.message, this.me), false);
    const result = this.list.addChat(view);
    if (result !== 'dup') {
      const quote = view.quote && typeof view.quote === 'object' ? view.quote : {};
      const reply = Number.isSafeInteger(p.replyTo) && p.replyTo > 0
        ? { id: p.replyTo, username: String(quote.username ?? ''), text: String(quote.text ?? '') } : null;
      safely(() => this.reactions.decorate(this.reactions.item(p.id), reply));
    }
    if (result !== 'new' || p.username === this.me) return;
    if (document.hidden) {
      this.unread++;
      this.updateTitle();
    }
    if (!this.replaying) {
      safely(() => notifier.message({ author: view.username, text: view.message, mention: view.mention, readable, room: this.code }));
    }
  }

  // reacted shows a react frame: one message's reactions as they now are.
  async reacted(p) {
    if (!Number.isSafeInteger(p.id)) return;
    this.reactions.set(p.id, await this.openReactions(p.reactions));
    if (p.on === true) {
      const emoji = await this.seal.openEmoji(String(p.emoji ?? ''));
      if (oneEmoji(emoji)) this.reactions.announce(p.id, String(p.username ?? ''), emoji);
    }
  }

  // reactionsFrame applies the reactions that follow a join's replay.
  async reactionsFrame(p) {
    const byId = new Map();
    for (const m of Array.isArray(p.messages) ? p.messages : []) {
      if (Number.isSafeInteger(m?.id)) byId.set(m.id, await this.openReactions(m.reactions));
    }
    this.reactions.snapshot(Number(p.from) || 0, byId);
  }

  // openReactions turns a frame's reactions into [{emoji, users}] to show,
  // opening sealed ones and dropping any that is not one emoji.
  async openReactions(list) {
    const shown = [];
    for (const r of Array.isArray(list) ? list : []) {
      const emoji = await this.seal.openEmoji(String(r?.emoji ?? ''));
      if (oneEmoji(emoji) && Array.isArray(r.users)) shown.push({ emoji, users: r.users.map(String) });
    }
    return shown;
  }

  // react sends a reaction change, sealed in an encrypted room.
  react(id, emoji, on) {
    const { conn, seal } = this;
    if (seal.encrypted && !seal.canSeal()) return;
    this.outbox = this.outbox.then(async () => {
      const token = await seal.sealEmoji(emoji);
      if (this.conn === conn && !conn?.send('react', { id, emoji: token, on })) {
        showToast('Not connected: the reaction was not sent.');
      }
    }).catch((err) => reportError(err));
  }

  // outgoing is the chatMessage payload of li's text: a reply names the
  // message it answers.
  outgoing(li, message, clientId) {
    const replyTo = Number(li.dataset.replyTo);
    return replyTo > 0 ? { message, clientId, replyTo } : { message, clientId };
  }

  // quote is what an encrypted reply seals of its original, or null.
  quote(target) {
    return target ? { n: target.username, m: target.text } : null;
  }

  error(p) {
    if (this.host?.error(p)) return;
    const reason = sendErrors[p.code] || p.text || 'the server refused it.';
    if (p.clientId && this.list.fail(p.clientId, reason)) return;
    this.list.addSystem(p.text || `Error: ${p.code}`, Date.now(), 'warn');
  }

  setUsers(users, count = users.length) {
    const n = Number.isFinite(count) ? count : users.length;
    this.typing.keep(users);
    $('people-count').textContent = String(n);
    $('people-word').textContent = n === 1 ? 'person' : 'people';
    const sorted = [...users].sort((a, b) => (b === this.me) - (a === this.me) || a.localeCompare(b));
    if (sorted.length === 0 && n > 0) {
      // Large rooms send only the count.
      const li = document.createElement('li');
      li.className = 'people-many';
      li.textContent = `${n.toLocaleString()} people are here: too many to list.`;
      $('people-list').replaceChildren(li);
      return;
    }
    $('people-list').replaceChildren(...sorted.map((name) => {
      const li = document.createElement('li');
      const dot = document.createElement('span');
      dot.className = `avatar hue-${hue(name)}`;
      dot.textContent = [...name][0]?.toUpperCase() ?? '?';
      dot.setAttribute('aria-hidden', 'true');
      const label = document.createElement('span');
      label.className = 'person';
      label.textContent = name;
      li.append(dot, label);
      if (name === this.me) {
        const you = document.createElement('span');
        you.className = 'you-tag';
        you.textContent = 'you';
        li.append(you);
      }
      return li;
    }));
  }

  // ---- connection state ----

  state(s) {
    clearInterval(this.countdown);
    const status = $('status');
    status.dataset.state = s.state;
    switch (s.state) {
      case 'connecting':
        status.textContent = this.welcomes ? 'Reconnecting…' : 'Connecting…';
        break;
      case 'open':
        status.textContent = 'Connected';
        this.hideBanner();
        break;
      case 'waiting':
        this.waiting(s);
        break;
      case 'offline':
        status.textContent = 'Offline';
        this.list.failAll('the connection dropped before the server confirmed it.');
        this.showBanner('You are offline. Hallway reconnects as soon as the network is back.', { retry: 'Retry now', home: false, tone: 'info' });
        break;
      case 'stopped':
        if (s.code !== 'left') this.stopped(s);
        break;
      default:
    }
    status.title = status.textContent; // Phones show only the dot.
    this.updateCounter();
  }

  waiting(s) {
    const wasOpen = this.welcomes > 0;
    $('status').textContent = 'Reconnecting…';
    this.list.failAll('the connection dropped before the server confirmed it.');
    this.quietDrop = s.quiet;
    if (s.quiet) {
      this.hideBanner();
      return;
    }
    const lead = s.text ? `${s.text} ` : wasOpen ? 'Connection lost. ' : 'Cannot reach the server. ';
    const tick = () => {
      const secs = Math.max(0, Math.ceil((s.retryAt - Date.now()) / 1000));
      this.showBanner(`${lead}Trying again in ${secs} s…`, { retry: 'Retry now', home: false, tone: 'info' });
    };
    tick();
    this.countdown = setInterval(tick, 1000);
  }

  stopped(s) {
    $('status').textContent = 'Disconnected';
    this.list.failAll('the connection closed before the server confirmed it.');
    if (s.code === 'bad_username') {
      const code = this.code;
      this.leave();
      showGate(code, s.text || 'The server did not accept that name. Try another one.');
      return;
    }
    const known = refusals[s.code];
    let text = known?.text || s.text || `Could not join this room (${s.code}).`;
    if (s.code.startsWith('close_')) text += s.text ? `: ${s.text}.` : '.';
    const retry = known ? known.retry : true;
    this.showBanner(text, { retry: retry ? 'Try again' : '', home: true, tone: 'error' });
  }

  showBanner(text, { retry, home, tone }) {
    $('banner').hidden = false;
    $('banner').dataset.tone = tone;
    $('banner-text').textContent = text;
    $('banner-retry').hidden = !retry;
    $('banner-retry').textContent = retry || '';
    $('banner-home').hidden = !home;
  }

  hideBanner() {
    $('banner').hidden = true;
  }

  // ---- sending ----

  send() {
    const input = $('composer-input');
    const text = input.value.replace(/^\s*\n/, '').trimEnd();
    if (text.trim() === '' || this.cost(text) > this.room()) return;
    if (this.seal.encrypted && !this.seal.canSeal()) return; // never in the clear
    const clientId = nextClientId();
    const target = this.replyBar.target;
    const withReply = (li) => {
      if (target) {
        li.dataset.replyTo = String(target.id);
        li.replyQuote = this.quote(target);
      }
      return li;
    };
    if (this.seal.canSeal()) {
      this.transmit(withReply(this.list.addPending(clientId, text, true)), clientId, text);
    } else {
      const sent = this.conn?.send('chatMessage', { message: text, clientId, ...(target ? { replyTo: target.id } : {}) });
      withReply(this.list.addPending(clientId, text, !sent));
    }
    this.replyBar.cancel();
    input.value = '';
    this.signal.stop();
    this.updateCounter();
  }

  retry(li, text) {
    const clientId = nextClientId();
    if (this.seal.canSeal()) {
      this.list.retry(li, clientId, true);
      this.transmit(li, clientId, text);
      return;
    }
    if (this.seal.encrypted) return;
    const sent = this.conn?.send('chatMessage', this.outgoing(li, text, clientId));
    this.list.retry(li, clientId, !sent);
  }

  // transmit seals a message shown as queued and sends it if the
  // connection is open; otherwise it stays queued for the next welcome.
  // Sends keep their order.
  transmit(li, clientId, text) {
    const { conn, seal } = this;
    this.outbox = this.outbox.then(async () => {
      const message = await seal.seal(this.me, text, li.replyQuote || null);
      if (this.conn !== conn || li.dataset.queued !== '1' || li.dataset.clientId !== clientId) return;
      if (conn.send('chatMessage', this.outgoing(li, message, clientId))) this.list.markSent(li);
    }).catch((err) => reportError(err));
  }

  // room is how much text one message may hold, and cost what text takes
  // of it: UTF-8 bytes, or in an encrypted room what is left once sealed.
  room() {
    return this.seal.canSeal() ? this.seal.room(this.maxBytes, this.me, this.quote(this.replyBar?.target)) : this.maxBytes;
  }

  cost(text) {
    return this.seal.canSeal() ? sealedCost(text) : byteLength(text);
  }

  updateCounter() {
    const used = this.cost($('composer-input').value);
    const counter = $('counter');
    const room = this.room();
    const left = room - used;
    counter.hidden = used < room * warnRatio;
    counter.classList.toggle('over', left < 0);
    const bytes = (n) => `${n.toLocaleString()} byte${n === 1 ? '' : 's'}`;
    counter.textContent = left < 0 ? `${bytes(-left)} over the limit` : `${bytes(left)} left`;
    $('send').disabled = left < 0 || $('composer-input').value.trim() === '' || $('composer-input').disabled;
  }

  updateTitle() {
    document.title = this.unread > 0 ? `(${this.unread}) ${baseTitle}` : baseTitle;
  }

  // ---- sharing ----

  async copyLink() {
    const url = `${location.origin}/r/${this.code}${this.seal.fragment()}`;
    const btn = $('copy-link');
    let copied = false;
    // The link, and its QR code for a phone, drawn here: the key after "#"
    // stays in the page.
    $('share-url').value = url;
    drawQR($('share-qr'), url);
    $('share').hidden = false;
    try {
      await navigator.clipboard.writeText(url);
      copied = true;
    } catch {
      // Clipboard access can be refused (permissions, insecure context):
      // show the link selected so the person can copy it themselves.
      $('share-url').focus();
      $('share-url').select();
      try {
        copied = document.execCommand('copy');
      } catch {
        copied = false;
      }
    }
    showToast(copied ? 'Link copied. Send it to the people you want here.' : 'Press Ctrl+C (or ⌘C) to copy the link.');
    if (copied) {
      btn.classList.add('done');
      btn.querySelector('.label').textContent = 'Copied';
      setTimeout(() => {
        btn.classList.remove('done');
        btn.querySelector('.label').textContent = 'Copy link';
      }, 2000);
    }
  }
}

let toastTimer = 0;

// showToast shows a short notice above the composer for a few seconds.
function showToast(text) {
  const toast = $('toast');
  toast.textContent = text;
  toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { toast.hidden = true; }, 3000);
}

const notifier = new Notifier();
const room = new RoomView();

// showNotifyChoices shows the notification choices as they stand.
function showNotifyChoices(hint = '') {
  $('notify-on').checked = notifier.enabled;
  $('notify-text').checked = notifier.showText;
  $('notify-text').disabled = !notifier.enabled;
  $('notify-hint').textContent = hint;
}

async function toggleNotify() {
  if (!$('notify-on').checked) {
    notifier.disable();
    showNotifyChoices();
    return;
  }
  const result = await notifier.enable();
  showNotifyChoices(result === 'denied'
    ? 'The browser blocks notifications for this site; allow them in its site settings, then try again.'
    : '');
}

// ---- wiring ---------------------------------------------------------------

function wire() {
  $('create-room').addEventListener('click', () => createRoom(0));
  $('create-private').addEventListener('click', () => createRoom(2));
  $('join-form').addEventListener('submit', joinFromHome);
  $('gate-form').addEventListener('submit', joinFromGate);

  $('composer').addEventListener('submit', (ev) => {
    ev.preventDefault();
    room.send();
  });
  const input = $('composer-input');
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && !ev.ctrlKey && !ev.altKey && !ev.metaKey) {
      ev.preventDefault();
      room.send();
    } else if (ev.key === 'Escape' && room.replyBar.target) {
      ev.preventDefault();
      room.replyBar.cancel();
    }
  });
  input.addEventListener('input', () => {
    room.updateCounter();
    room.signal.input(input.value);
  });

  $('copy-link').addEventListener('click', () => room.copyLink());
  wireFiles(room.files);
  wireHost(() => room.host);
  $('notify-on').addEventListener('change', toggleNotify);
  $('notify-text').addEventListener('change', () => notifier.setShowText($('notify-text').checked));
  if (canNotify()) {
    showNotifyChoices();
  } else {
    $('notify-on').disabled = true;
    $('notify-text').disabled = true;
    $('notify-hint').textContent = 'This browser cannot show notifications.';
  }
  $('home-e2ee').checked = canEncrypt(); // the default wherever the browser can
  const showInfo = (open) => {
    $('e2ee-info').hidden = !open;
    $('e2ee-badge').setAttribute('aria-expanded', String(open));
  };
  $('e2ee-badge').addEventListener('click', () => showInfo($('e2ee-info').hidden));
  $('e2ee-close').addEventListener('click', () => {
    showInfo(false);
    $('e2ee-badge').focus();
  });
  $('empty-copy').addEventListener('click', () => room.copyLink());
  $('share-close').addEventListener('click', () => {
    $('share').hidden = true;
    $('copy-link').focus();
  });
  $('leave').addEventListener('click', () => navigate('/'));
  $('banner-retry').addEventListener('click', () => {
    room.hideBanner();
    room.conn?.retryNow();
  });
  $('jump').addEventListener('click', () => {
    room.list.scrollToBottom();
    input.focus();
  });

  const wide = matchMedia('(min-width: 48rem)');
  const setPeople = (open) => {
    $('room').classList.toggle('people-open', open);
    $('people-toggle').setAttribute('aria-expanded', String(open));
  };
  setPeople(wide.matches);
  wide.addEventListener('change', () => setPeople(wide.matches));
  $('people-toggle').addEventListener('click', () => {
    setPeople(!$('room').classList.contains('people-open'));
  });
  $('people').parentElement.addEventListener('click', (ev) => {
    // On a phone the list is a sheet over the chat: a tap beside it closes it.
    if (ev.target === ev.currentTarget && !wide.matches) setPeople(false);
  });
  $('people-close').addEventListener('click', () => {
    setPeople(false);
    $('people-toggle').focus();
  });

  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && !wide.matches && $('room').classList.contains('people-open')) {
      setPeople(false);
      $('people-toggle').focus();
    }
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && room.unread) {
      room.unread = 0;
      room.updateTitle();
    }
  });
  window.addEventListener('popstate', route);
  document.addEventListener('click', (ev) => {
    // Same-page links (the logo, "back to start") switch screens without a reload.
    const a = ev.target.closest('a[data-nav]');
    if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
    ev.preventDefault();
    navigate(a.getAttribute('href'));
  });
}

wire();
route();
