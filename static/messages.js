// messages.js renders the conversation: chat messages, sends that are still
// pending or that failed, and quiet system lines. Every piece of user text is
// set with textContent; formatting and links are built as elements by
// markdown.js, never parsed as HTML. Each message keeps the text as sent in
// li.dataset.text, the source for Retry and resends.

import { render as renderText } from './markdown.js';

// groupWindowMs is how close in time two messages by one author must be for
// the second to drop its name line.
const groupWindowMs = 5 * 60 * 1000;
// stickPx is how near the bottom (in pixels) still counts as "at the bottom".
const stickPx = 96;

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const dayTimeFormat = new Intl.DateTimeFormat(undefined, {
  month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit',
});
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' });

// timeElement returns a <time> showing ts (Unix ms) in local time: the hour
// for today, the date too for older messages, everything in its tooltip.
export function timeElement(ts, now = new Date()) {
  const el = document.createElement('time');
  const d = new Date(Number.isFinite(ts) ? ts : Date.now());
  el.dateTime = d.toISOString();
  el.title = fullFormat.format(d);
  el.textContent = d.toDateString() === now.toDateString() ? timeFormat.format(d) : dayTimeFormat.format(d);
  return el;
}

// hue picks one of eight colours (CSS classes hue-0 … hue-7) for a name,
// the same for everyone and on every screen.
export function hue(name) {
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return h % 8;
}

// MessageList owns the message <ol>. Confirmed messages appear in server
// order; messages still being sent stay below them until their echo arrives.
export class MessageList {
  // list is the <ol>, scroller the element that scrolls, empty the hint
  // shown while nothing was said. hooks: isMe(name), onRetry(el, text),
  // onDiscard(el), onUnseen(n) when content arrived out of view.
  constructor(list, scroller, empty, hooks) {
    this.list = list;
    this.scroller = scroller;
    this.empty = empty;
    this.hooks = hooks;
    this.seen = new Set(); // "id:ts" of every message shown, for dedupe
    this.pending = new Map(); // clientId → <li>
    this.unseen = 0;
    scroller.addEventListener('scroll', () => {
      if (this.atBottom()) this.markSeen();
    }, { passive: true });
  }

  // has reports whether the message with this id and ts is shown.
  has(id, ts) {
    return this.seen.has(`${id}:${ts}`);
  }

  // addChat shows a chatMessage payload; flag {kind, note} marks one that
  // an encrypted room could not vouch for. It returns "dup" for a message
  // already shown (history replay after a reconnect), "confirmed" for the
  // echo of our own pending message, and "new" otherwise.
  addChat(p) {
    const key = `${p.id}:${p.ts}`;
    if (this.seen.has(key)) return 'dup';
    this.seen.add(key);
    // clientId is echoed to everyone, so only our own name may confirm it.
    const mine = p.clientId ? this.pending.get(p.clientId) : undefined;
    if (mine && this.hooks.isMe(p.username)) {
      this.pending.delete(p.clientId);
      this.confirm(mine, p);
      return 'confirmed';
    }
    const li = this.messageElement(p.username, p.message, p.ts, this.hooks.isMe(p.username), p.flag?.kind === 'locked');
    li.dataset.id = String(p.id);
    if (p.mention) {
      li.classList.add('mention');
      const tag = document.createElement('span');
      tag.className = 'mention-tag';
      tag.textContent = 'mentions you';
      li.querySelector('.meta')?.append(' ', tag);
    }
    if (p.flag) {
      li.classList.add(`sealed-${p.flag.kind}`);
      if (p.flag.note) {
        const note = document.createElement('p');
        note.className = 'seal-note';
        note.textContent = p.flag.note;
        li.append(note);
      }
    }
    this.insert(li, this.firstPending());
    return 'new';
  }

  // addFile shows a file message whose body files.js built, and returns
  // its <li>, or null for one already shown. label is its text for screen
  // readers, in place of a message's.
  addFile(p, body, label) {
    const key = `${p.id}:${p.ts}`;
    if (this.seen.has(key)) return null;
    this.seen.add(key);
    const li = this.messageElement(p.username, '', p.ts, this.hooks.isMe(p.username));
    li.dataset.id = String(p.id);
    li.classList.add('file-msg');
    this.fileBody(li, body, label);
    this.insert(li, this.firstPending());
    return li;
  }

  // addPendingFile shows an upload of ours under way, below the rest.
  addPendingFile(body, label) {
    const li = this.messageElement(this.hooks.me(), '', Date.now(), true);
    li.classList.add('file-msg', 'pending');
    this.fileBody(li, body, label);
    this.insert(li, null, true);
    return li;
  }

  // fileBody puts a file's body in li after its text, which only screen
  // readers see.
  fileBody(li, body, label) {
    const text = li.querySelector('.text');
    text.className = 'text sr-only';
    text.textContent = label;
    text.after(body);
  }

  // addPending shows a message we just sent as pending; a queued one was
  // written while offline and waits for the connection.
  addPending(clientId, text, queued = false) {
    const li = this.messageElement(this.hooks.me(), text, Date.now(), true);
    this.setPending(li, clientId, queued);
    this.insert(li, null, true);
    return li;
  }

  // setPending marks li as waiting for the server's echo of clientId.
  setPending(li, clientId, queued = false) {
    li.classList.remove('failed');
    li.classList.add('pending');
    li.dataset.clientId = clientId;
    li.querySelector('.state')?.remove();
    const state = document.createElement('p');
    state.className = 'state';
    li.append(state);
    this.pending.set(clientId, li);
    if (queued) {
      li.dataset.queued = '1';
      state.textContent = 'Waiting for the connection…';
    } else {
      this.markSent(li);
    }
  }

  // markSent says a queued message went out and now awaits its echo.
  markSent(li) {
    delete li.dataset.queued;
    const state = li.querySelector('.state');
    if (state) state.textContent = 'Sending…';
  }

  // retry moves a failed message back to the bottom as pending again,
  // under a new clientId.
  retry(li, clientId, queued = false) {
    this.pending.delete(li.dataset.clientId);
    this.setPending(li, clientId, queued);
    li.remove();
    this.insert(li, null, true);
  }

  // fail marks the pending message clientId as not sent, with the reason,
  // and offers Retry and Discard. It returns false when no such message is pending.
  fail(clientId, reason) {
    const li = this.pending.get(clientId);
    if (!li || !li.classList.contains('pending')) return false;
    this.markFailed(li, reason);
    return true;
  }

  // failAll marks every message in flight as not sent: the connection dropped
  // before the server confirmed them. They stay in the pending map, so a
  // history replay that contains one still confirms it.
  failAll(reason) {
    for (const li of this.pending.values()) {
      if (li.classList.contains('pending') && li.dataset.queued !== '1') this.markFailed(li, reason);
    }
  }

  // queued lists the messages written while offline, to send on reconnect.
  queued() {
    return [...this.pending].filter(([, li]) => li.dataset.queued === '1');
  }

  markFailed(li, reason) {
    li.classList.remove('pending');
    li.classList.add('failed');
    delete li.dataset.queued;
    li.querySelector('.state')?.remove();
    const state = document.createElement('p');
    state.className = 'state';
    const why = document.createElement('span');
    why.className = 'reason';
    why.textContent = `Not sent: ${reason}`;
    const retry = document.createElement('button');
    retry.type = 'button';
    retry.className = 'link retry';
    retry.textContent = 'Retry';
    retry.addEventListener('click', () => this.hooks.onRetry(li, li.dataset.text));
    const discard = document.createElement('button');
    discard.type = 'button';
    discard.className = 'link discard';
    discard.textContent = 'Discard';
    discard.addEventListener('click', () => {
      this.pending.delete(li.dataset.clientId);
      const next = li.nextElementSibling;
      li.remove();
      if (next) this.regroup(next);
      this.updateEmpty();
      this.hooks.onDiscard?.();
    });
    state.append(why, ' ', retry, ' ', discard);
    li.append(state);
    // A failed message leaves the pending block and stays where it is.
    const first = this.firstPending();
    if (first && first !== li && li.compareDocumentPosition(first) & Node.DOCUMENT_POSITION_PRECEDING) {
      li.remove();
      this.insert(li, first);
    }
  }

  confirm(li, p) {
    li.classList.remove('pending', 'failed');
    delete li.dataset.queued;
    li.dataset.id = String(p.id);
    li.querySelector('.state')?.remove();
    li.querySelector('time')?.replaceWith(timeElement(p.ts));
    li.dataset.ts = String(p.ts);
    li.querySelector('.author').textContent = p.username;
    li.querySelector('.author').className = `author hue-${hue(p.username)}`;
    li.dataset.author = p.username;
    // Take the place the server gave it: after every confirmed message.
    const next = li.nextElementSibling;
    li.remove();
    if (next) this.regroup(next);
    this.insert(li, this.firstPending());
  }

  // addSystem shows a quiet line such as "alice joined".
  addSystem(text, ts, tone = '') {
    const li = document.createElement('li');
    li.className = `sys ${tone}`.trim();
    const span = document.createElement('span');
    span.className = 'sys-text';
    span.textContent = text;
    li.append(span);
    if (ts) li.append(' ', timeElement(ts));
    this.insert(li, this.firstPending());
  }

  // messageElement builds a message; a plain one (a notice in place of
  // text the page could not open) is shown without formatting.
  messageElement(author, text, ts, own, plain = false) {
    const li = document.createElement('li');
    li.className = own ? 'msg own' : 'msg';
    li.dataset.author = author;
    li.dataset.text = text;
    li.dataset.ts = String(ts);
    const meta = document.createElement('p');
    meta.className = 'meta';
    const who = document.createElement('span');
    who.className = `author hue-${hue(author)}`;
    who.textContent = author;
    meta.append(who, ' ', timeElement(ts));
    const body = document.createElement('div');
    body.className = 'text';
    body.append(plain ? text : renderText(text));
    li.append(meta, body);
    return li;
  }

  firstPending() {
    return this.list.querySelector(':scope > .msg.pending');
  }

  // insert adds li before ref (or at the end), keeps the view pinned to the
  // bottom when it was there, and counts what arrived out of view.
  insert(li, ref, forceScroll = false) {
    const stick = forceScroll || this.atBottom();
    this.list.insertBefore(li, ref);
    this.regroup(li);
    if (li.nextElementSibling) this.regroup(li.nextElementSibling);
    this.updateEmpty();
    if (stick) {
      this.scrollToBottom();
    } else if (li.classList.contains('msg')) {
      this.unseen++;
      this.hooks.onUnseen?.(this.unseen);
    }
  }

  // regroup hides the name line of a message that follows one by the same
  // author within a few minutes.
  regroup(li) {
    if (!li.classList.contains('msg')) return;
    const prev = li.previousElementSibling;
    const same = prev && prev.classList.contains('msg') &&
      prev.dataset.author === li.dataset.author &&
      prev.classList.contains('own') === li.classList.contains('own') &&
      Math.abs(Number(li.dataset.ts) - Number(prev.dataset.ts)) < groupWindowMs;
    li.classList.toggle('cont', Boolean(same));
  }

  updateEmpty() {
    this.empty.hidden = this.list.childElementCount > 0;
  }

  atBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < stickPx;
  }

  scrollToBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.markSeen();
  }

  markSeen() {
    if (this.unseen === 0) return;
    this.unseen = 0;
    this.hooks.onUnseen?.(0);
  }

  // clear empties the list (a different room was opened).
  clear() {
    this.list.replaceChildren();
    this.seen.clear();
    this.pending.clear();
    this.unseen = 0;
    this.updateEmpty();
  }
}
