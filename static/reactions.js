// reactions.js adds replies and reactions to the message list: the Reply
// and React controls of each message, a reply's quote (a click jumps to the
// original), the composer's "Replying to" bar, and the reaction chips under
// a message. It knows nothing about the connection or encryption: app.js
// sends what it is asked to, and hands over reactions already opened.
// Every piece of user text is set with textContent.

// quickEmoji are offered first; pickerEmoji complete the picker. A fixed
// list, drawn by the system's own emoji font.
export const quickEmoji = Object.freeze(['👍', '❤️', '😂', '😮', '😢', '🎉']);
export const pickerEmoji = Object.freeze([
  '😀', '😊', '😍', '🤔', '😅', '😎', '🙃', '😴', '🤯', '🥳', '😬', '🙈',
  '🙌', '👏', '🙏', '💪', '👋', '🤝', '👀', '🔥', '✅', '❌', '💯', '🚀',
  '⭐', '💡', '☕', '🍕', '🎂', '🌈',
]);

// quoteChars is how much of the original a reply quotes.
const quoteChars = 80;
// maxEmojiCodePoints matches the server's bound on one emoji.
const maxEmojiCodePoints = 10;
// highlightMs is how long the original of a quote stays highlighted.
const highlightMs = 2000;
// longPressMs is how long a touch must rest on a reaction to show who.
const longPressMs = 500;

const graphemes = typeof Intl.Segmenter === 'function' ? new Intl.Segmenter(undefined, { granularity: 'grapheme' }) : null;

// oneEmoji reports whether s is a single emoji as a person sees it: one
// grapheme, at most ten code points, no letters, digits or spaces.
export function oneEmoji(s) {
  if (typeof s !== 'string' || s === '' || [...s].length > maxEmojiCodePoints) return false;
  if (/[\p{L}\p{N}\s\p{Cc}]/u.test(s) || !/\p{Extended_Pictographic}|\p{Regional_Indicator}/u.test(s)) return false;
  return graphemes ? [...graphemes.segment(s)].length === 1 : true;
}

// clipQuote folds whitespace and keeps the first quoteChars characters.
export function clipQuote(text) {
  const flat = String(text).split(/\s+/).filter(Boolean).join(' ');
  const chars = [...flat];
  return chars.length > quoteChars ? `${chars.slice(0, quoteChars).join('')}…` : flat;
}

// names lists people as "Alice", "Alice and Bob", "Alice, Bob and Carol".
function names(list) {
  return list.length <= 1 ? list.join('') : `${list.slice(0, -1).join(', ')} and ${list[list.length - 1]}`;
}

// el makes an element with a class and, optionally, its text.
function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

// button makes a button with a class, an accessible name and text.
function button(className, label, text) {
  const b = el('button', className, text);
  b.type = 'button';
  if (label) b.setAttribute('aria-label', label);
  return b;
}

// Reactions owns replies and reactions on one room's message list. hooks:
//   me()                   this page's name
//   react(id, emoji, on)   send a reaction change
//   reply(target)          start replying to {id, username, text}
//   notice(text)           say something briefly (a quote whose original is gone)
export class Reactions {
  constructor(list, hooks) {
    this.list = list; // the <ol>
    this.hooks = hooks;
    this.state = new Map(); // message id → [{emoji, users}]
    this.picker = null;
    // status announces others' reactions: the chips themselves are kept
    // out of the message list's live region, where a bare count would be read.
    this.status = el('p', 'sr-only');
    this.status.setAttribute('role', 'status');
    document.body.append(this.status);
    document.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape' && this.picker) this.closePicker(true);
    });
    document.addEventListener('click', (ev) => {
      if (this.picker && !this.picker.contains(ev.target) && !ev.target.closest('.react-open')) this.closePicker(false);
    });
  }

  // clear forgets everything (another room was opened).
  clear() {
    this.state.clear();
    this.closePicker(false);
  }

  // item is the shown, confirmed message id, or null.
  item(id) {
    return this.list.querySelector(`:scope > li.msg[data-id="${Number(id)}"]`);
  }

  // decorate gives the confirmed message li its controls, its quote when
  // it is a reply, and the reactions already known for it.
  decorate(li, reply) {
    if (!li || li.classList.contains('pending')) return;
    const id = Number(li.dataset.id);
    if (reply && reply.id > 0 && !li.querySelector(':scope > .quote')) this.addQuote(li, reply);
    if (!li.querySelector(':scope > .msg-actions')) {
      const bar = el('div', 'msg-actions');
      bar.setAttribute('aria-live', 'off');
      const who = li.dataset.author || 'someone';
      const r = button('chip reply-open', `Reply to ${who}`, '↩︎ Reply');
      r.addEventListener('click', () => this.hooks.reply({ id, username: li.dataset.author, text: this.textOf(li) }));
      const add = button('chip react-open', `Add a reaction to ${who}’s message`, '☺︎+');
      add.setAttribute('aria-haspopup', 'true');
      add.setAttribute('aria-expanded', 'false');
      add.addEventListener('click', () => this.openPicker(li, add));
      bar.append(r, add);
      li.append(bar);
    }
    this.render(li);
  }

  // textOf is what a quote shows of li: its text, or a file's label.
  textOf(li) {
    return li.classList.contains('file-msg') ? `📎 ${li.querySelector('.text')?.textContent ?? ''}` : li.dataset.text ?? '';
  }

  // addQuote puts a reply's quote above its text. The original, when this
  // page shows it, is quoted as it is; otherwise the quote that came with
  // the reply (the server's, or the sealed one in an encrypted room).
  addQuote(li, reply) {
    const orig = this.item(reply.id);
    const author = orig ? orig.dataset.author : reply.username;
    const text = orig ? this.textOf(orig) : reply.text;
    const q = button('quote', '');
    q.dataset.replyTo = String(reply.id);
    q.setAttribute('aria-label', `In reply to ${author || 'a message'}: ${clipQuote(text ?? '')}. Show the original`);
    q.append(el('span', 'quote-author', author || 'Earlier message'), el('span', 'quote-text', clipQuote(text ?? '')));
    q.addEventListener('click', () => this.jump(reply.id));
    li.querySelector(':scope > .text')?.before(q);
  }

  // jump scrolls to the original of a quote and highlights it, or says it
  // is no longer here.
  jump(id) {
    const orig = this.item(id);
    if (!orig) {
      this.hooks.notice('The original message is no longer in this room’s history.');
      return;
    }
    orig.scrollIntoView({ block: 'center', behavior: matchMedia('(prefers-reduced-motion: reduce)').matches ? 'auto' : 'smooth' });
    orig.classList.remove('highlight');
    void orig.offsetWidth; // Restart the animation on a second jump.
    orig.classList.add('highlight');
    orig.tabIndex = -1;
    orig.focus({ preventScroll: true });
    setTimeout(() => orig.classList.remove('highlight'), highlightMs);
  }

  // set records a message's reactions ([{emoji, users}], already opened)
  // and shows them.
  set(id, list) {
    if (list.length) this.state.set(Number(id), list); else this.state.delete(Number(id));
    const li = this.item(id);
    if (li) this.render(li);
  }

  // snapshot applies a reactions frame: every shown message from `from` on
  // that it does not list has none.
  snapshot(from, byId) {
    for (const id of [...this.state.keys()]) {
      if (id >= from && !byId.has(id)) this.set(id, []);
    }
    for (const [id, list] of byId) this.set(id, list);
  }

  // announce tells a screen reader that someone else reacted to id.
  announce(id, username, emoji) {
    if (username === this.hooks.me()) return;
    const li = this.item(id);
    const whose = !li ? 'a message' : li.dataset.author === this.hooks.me() ? 'your message' : `${li.dataset.author}’s message`;
    this.status.textContent = `${username} reacted with ${emoji} to ${whose}.`;
  }

  // mine reports whether this page's person chose emoji on message id.
  mine(id, emoji) {
    return Boolean(this.state.get(Number(id))?.some((r) => r.emoji === emoji && r.users.includes(this.hooks.me())));
  }

  // toggle adds this person's emoji to message id, or removes it.
  toggle(id, emoji) {
    this.hooks.react(Number(id), emoji, !this.mine(id, emoji));
  }

  // render draws li's reaction chips.
  render(li) {
    const id = Number(li.dataset.id);
    const list = this.state.get(id) || [];
    let row = li.querySelector(':scope > .reactions');
    if (list.length === 0) {
      row?.remove();
      return;
    }
    if (!row) {
      row = el('div', 'reactions');
      row.setAttribute('aria-live', 'off');
      row.setAttribute('role', 'group');
      row.setAttribute('aria-label', 'Reactions');
      li.querySelector(':scope > .msg-actions')?.before(row);
      if (!row.isConnected) li.append(row);
    }
    row.replaceChildren(...list.map((r) => this.chip(id, r)));
  }

  // chip is one reaction's button: a press toggles one's own; a long
  // touch shows who, as the keyboard focus does.
  chip(id, r) {
    const me = this.hooks.me();
    const own = r.users.includes(me);
    const n = r.users.length;
    const who = names(r.users.map((u) => (u === me ? 'you' : u)));
    const b = button('reaction', `${r.emoji} ${n} reaction${n === 1 ? '' : 's'}, by ${who}; press to ${own ? 'remove yours' : 'add yours'}`);
    b.setAttribute('aria-pressed', String(own));
    b.title = `${who} reacted with ${r.emoji}`;
    b.dataset.emoji = r.emoji;
    b.dataset.who = who;
    b.append(el('span', 'reaction-emoji', r.emoji), el('span', 'reaction-count', String(n)));
    b.querySelector('.reaction-emoji').setAttribute('aria-hidden', 'true');
    let timer = 0;
    let held = false;
    b.addEventListener('pointerdown', (ev) => {
      if (ev.pointerType !== 'touch') return;
      held = false;
      timer = setTimeout(() => {
        held = true;
        b.classList.add('show-who');
        setTimeout(() => b.classList.remove('show-who'), highlightMs);
      }, longPressMs);
    });
    for (const end of ['pointerup', 'pointercancel', 'pointerleave']) b.addEventListener(end, () => clearTimeout(timer));
    b.addEventListener('click', (ev) => {
      if (held) { // a long press shows who; it does not toggle
        held = false;
        ev.preventDefault();
        return;
      }
      this.toggle(id, r.emoji);
    });
    return b;
  }

  // openPicker shows the emoji picker under a message's React button.
  openPicker(li, opener) {
    const again = this.picker?.opener === opener;
    this.closePicker(false);
    if (again) return;
    const id = Number(li.dataset.id);
    const pick = el('div', 'emoji-picker');
    pick.setAttribute('role', 'group');
    pick.setAttribute('aria-label', 'Choose a reaction');
    pick.opener = opener;
    for (const emoji of [...quickEmoji, ...pickerEmoji]) {
      const b = button(quickEmoji.includes(emoji) ? 'emoji quick' : 'emoji', `React with ${emoji}`, emoji);
      b.setAttribute('aria-pressed', String(this.mine(id, emoji)));
      b.addEventListener('click', () => {
        this.toggle(id, emoji);
        this.closePicker(true);
      });
      pick.append(b);
    }
    pick.addEventListener('keydown', (ev) => this.pickerKeys(ev, pick));
    opener.setAttribute('aria-expanded', 'true');
    li.append(pick);
    this.picker = pick;
    pick.querySelector('button').focus();
  }

  // pickerKeys moves through the picker with the arrow keys, Home and End.
  pickerKeys(ev, pick) {
    const all = [...pick.querySelectorAll('button')];
    const at = all.indexOf(document.activeElement);
    const step = { ArrowRight: 1, ArrowDown: 6, ArrowLeft: -1, ArrowUp: -6 }[ev.key];
    let next = -1;
    if (step) next = Math.min(all.length - 1, Math.max(0, at + step));
    if (ev.key === 'Home') next = 0;
    if (ev.key === 'End') next = all.length - 1;
    if (next >= 0) {
      ev.preventDefault();
      all[next].focus();
    }
  }

  // closePicker closes the picker, giving the focus back to its opener
  // when refocus says so.
  closePicker(refocus) {
    const pick = this.picker;
    if (!pick) return;
    this.picker = null;
    pick.opener.setAttribute('aria-expanded', 'false');
    pick.remove();
    if (refocus && pick.opener.isConnected) pick.opener.focus();
  }
}

// ReplyBar is the composer's "Replying to …" line, with its cancel button.
export class ReplyBar {
  constructor(bar, onChange) {
    this.bar = bar;
    this.onChange = onChange;
    this.target = null; // {id, username, text}
    this.bar.querySelector('.reply-cancel').addEventListener('click', () => this.cancel(true));
  }

  // start replies to target and focuses the composer.
  start(target) {
    this.target = { id: target.id, username: target.username || '', text: clipQuote(target.text || '') };
    this.bar.querySelector('.reply-author').textContent = this.target.username;
    this.bar.querySelector('.reply-text').textContent = this.target.text;
    this.bar.hidden = false;
    this.onChange();
    document.getElementById('composer-input').focus();
  }

  // cancel drops the reply under way.
  cancel(refocus = false) {
    if (!this.target) return;
    this.target = null;
    this.bar.hidden = true;
    this.onChange();
    if (refocus) document.getElementById('composer-input').focus();
  }
}
