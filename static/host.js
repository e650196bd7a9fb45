// host.js is what a room's host adds to the room screen: the credential
// kept in memory and history state (never in the link), the host's controls
// (lock, knocking, admit and deny, remove, make host, hand over), the
// waiting room a knocker sees, and the move of everyone else to a fresh
// encrypted room after a removal.

import { newRoomSecret } from './e2ee.js';

const $ = (id) => document.getElementById(id);

// movePattern is the only link a move may carry: a room and its key.
const movePattern = /^\/r\/([a-z0-9_-]{1,64})#k=([A-Za-z0-9_-]{16,64})$/;

// hostRefusals says what the page shows when a hosted room refuses or
// closes this connection; app.js merges it into its refusals.
export const hostRefusals = {
  room_locked: { text: 'The room is locked: the host is not letting anyone new in.', retry: true },
  knock_refused: { text: 'The host did not let you in. You can knock again in a minute.', retry: true },
  close_4403: { text: 'You were removed from this room by the host', retry: false },
  close_4401: { text: 'You were not let in', retry: true },
};

// button makes a small button labelled text that runs fn.
function button(text, fn, cls = 'secondary small') {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = cls;
  b.textContent = text;
  b.addEventListener('click', fn);
  return b;
}

// HostPanel is one room's host controls. view is the RoomView: its conn,
// me, seal, list and banner; go(path, state) navigates.
export class HostPanel {
  constructor(view, state, go) {
    this.view = view;
    this.go = go;
    this.credential = typeof state.host === 'string' ? state.host : '';
    this.state = null; // the latest hostState, while this page is a host
    this.users = [];
    this.moving = false;
    this.render();
  }

  // keep stores the credential in history state, beside the key, so that
  // a reload keeps the role; it never enters the address.
  keep(credential) {
    this.credential = credential;
    const state = { ...(history.state || {}) };
    if (credential) state.host = credential;
    else delete state.host;
    history.replaceState(state, '', location.href);
  }

  // welcome claims the role on every (re)connection.
  welcome() {
    if (this.credential) this.send({ op: 'claim' });
  }

  send(cmd) {
    return Boolean(this.view.conn?.send('host', { credential: this.credential, ...cmd }));
  }

  // frame handles the frames hosted rooms add; it returns true for those.
  frame(type, p) {
    switch (type) {
      case 'hostState': this.hostState(p); return true;
      case 'knocking':
        if (this.credential && this.send({ op: 'claim' })) return true; // a host whose page reloaded
        this.view.showBanner('Waiting for the host to let you in…', { retry: '', home: true, tone: 'info' });
        $('status').textContent = 'Waiting';
        return true;
      case 'moveRoom': this.follow(p); return true;
      case 'userCount':
        this.users = Array.isArray(p.users) ? p.users.map(String) : [];
        this.render();
        return false;
      default: return false;
    }
  }

  // error handles a refused host command; it returns true for those.
  error(p) {
    if (p.code === 'not_host' && this.credential) {
      this.keep('');
      this.state = null;
      this.render();
      this.view.list.addSystem('You are not this room’s host any more: the room moved to another server or the role passed on, and this room has no host you can act as.', Date.now(), 'note');
      return true;
    }
    return ['no_such_member', 'no_such_knock'].includes(p.code) && Boolean(this.view.list.addSystem(p.text, Date.now(), 'note'));
  }

  hostState(p) {
    if (typeof p.credential === 'string' && p.credential) this.keep(p.credential);
    if (p.host !== true) {
      this.keep('');
      this.state = null;
    } else {
      this.state = p;
    }
    this.render();
  }

  // render shows the controls and the knock prompts as they stand.
  render() {
    const s = this.state;
    $('host-panel').hidden = !s;
    $('knocks').hidden = !s || s.knocks.length === 0;
    if (!s) {
      $('knocks').replaceChildren();
      return;
    }
    $('host-lock').textContent = s.locked ? 'Unlock the room' : 'Lock the room';
    $('host-lock').setAttribute('aria-pressed', String(s.locked));
    $('host-knock').checked = s.knocking;
    $('host-summary').textContent = s.locked ? 'Locked: nobody new can join.'
      : s.knocking ? 'Knocking: newcomers wait for you to let them in.' : 'Open: anyone with the link can join.';
    $('knocks').replaceChildren(...s.knocks.map((k) => this.knockPrompt(k)));
    $('host-people').replaceChildren(...this.users.filter((u) => u !== this.view.me).map((u) => this.personRow(u, s)));
  }

  knockPrompt(k) {
    const row = document.createElement('div');
    row.className = 'knock';
    const text = document.createElement('p');
    text.textContent = `${k.name} wants to join`;
    row.append(text,
      button('Admit', () => this.send({ op: 'admit', knock: k.id }), 'primary small'),
      button('Deny', () => this.send({ op: 'deny', knock: k.id })));
    return row;
  }

  personRow(name, s) {
    const li = document.createElement('li');
    const label = document.createElement('span');
    label.className = 'person';
    label.textContent = s.hosts.includes(name) ? `${name} (host)` : name;
    li.append(label);
    if (!s.hosts.includes(name)) {
      li.append(button('Make host', () => this.send({ op: 'promote', name })),
        button('Hand over', () => this.send({ op: 'handOver', name })));
    }
    li.append(button('Remove', () => this.send({ op: 'remove', name }), 'secondary small danger'));
    if (this.view.seal.canSeal()) {
      li.append(button('Remove and move to a fresh room', () => this.removeAndMove(name), 'secondary small danger'));
    }
    return li;
  }

  // removeAndMove removes name, creates a fresh encrypted room with a new
  // key, sends its link sealed with this room's key to the members still
  // here, and goes there.
  async removeAndMove(name) {
    if (this.moving) return;
    this.moving = true;
    try {
      this.send({ op: 'remove', name });
      const fresh = await newRoomSecret();
      const res = await fetch('/api/rooms', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ e2ee: true, keyCheck: fresh.keyCheck }),
      });
      const body = await res.json().catch(() => ({}));
      if (res.status !== 201 || typeof body.room !== 'string') {
        this.view.list.addSystem(`Could not make a fresh room: ${body.text || `HTTP ${res.status}`}`, Date.now(), 'warn');
        return;
      }
      const link = `/r/${body.room}#k=${fresh.secret}`;
      const to = this.users.filter((u) => u !== this.view.me && u !== name);
      const sealed = await this.view.seal.seal(this.view.me, link);
      this.send({ op: 'move', to, sealed });
      this.go(link, { created: true, key: fresh.secret, host: body.host, moved: true });
    } finally {
      this.moving = false;
    }
  }

  // follow opens a move's sealed link with this room's key and goes there,
  // if the host who sent it sealed it under the name the server gives.
  async follow(p) {
    const cipher = this.view.seal.cipher;
    if (!cipher || typeof p.sealed !== 'string') return;
    let inner;
    try {
      inner = await cipher.open(p.sealed);
    } catch {
      return;
    }
    const m = inner.name === p.from ? inner.text.match(movePattern) : null;
    if (!m) return;
    this.go(inner.text, { key: m[2], moved: true });
  }
}

// wireHost connects the host panel's fixed controls to the current room's
// panel, found through current().
export function wireHost(current) {
  $('host-lock').addEventListener('click', () => {
    const h = current();
    if (h?.state) h.send({ op: h.state.locked ? 'unlock' : 'lock' });
  });
  $('host-knock').addEventListener('change', () => {
    const h = current();
    if (h?.state) h.send({ op: $('host-knock').checked ? 'knockOn' : 'knockOff' });
  });
}
