// e2ee.js is what an end-to-end encrypted room adds to the room screen:
// the room's key (from the link), sealing what is sent, opening what
// arrives, and telling the person plainly when the page cannot do either.
// The cryptography itself is in crypto.js.

import {
  available, cost, CryptoError, keyCheck, newSecret, openRoom, sealedPrefix, secretFromFragment,
} from './crypto.js';

export { available, cost };

// lockReasons explains why this page can neither read nor write a room.
const lockReasons = {
  unavailable: 'Encryption is unavailable on this page: it was not opened over https:// (or on localhost), so the browser offers no cryptography. This room is end-to-end encrypted, so nothing can be read or sent from here, and nothing is sent in the clear.',
  missing: 'This link is missing its key. The room is end-to-end encrypted, and the key is the part of the link after “#”. Ask for the whole link.',
  bad_key: 'The key in this link is damaged (was the link cut short?). Ask for the whole link again.',
  mismatch: 'This link’s key does not match this room: its messages cannot be read with it. Ask for the link again.',
};

// lockedTexts stand in for a message this page cannot open.
const lockedTexts = {
  unavailable: 'Encrypted message: this page cannot decrypt anything (not a secure context).',
  missing: 'Encrypted message: this link has no key to read it.',
  bad_key: 'Encrypted message: the key in this link is damaged.',
  mismatch: 'Encrypted message: it could not be decrypted with this link’s key.',
  undecryptable: 'Encrypted message: it could not be decrypted with this link’s key.',
  malformed: 'A damaged encrypted message that could not be read.',
};

// sealedSkewMs is how far a message's sealed time may be from the server's
// time for it before the page says so: more than clocks drift apart, less
// than the gap between two visits.
const sealedSkewMs = 10 * 60 * 1000;

// codeSaysEncrypted reports whether room is a code made for an encrypted
// room: 16 base32 characters, "_", an optional capacity of 2 or more, "e",
// then on Fly.io "-" and a machine ID (README.md's room codes, and
// roomSettings in the server). Such a room is encrypted in this page
// whatever the server's welcome says.
export function codeSaysEncrypted(room) {
  const m = /^[a-z2-7]{16}_(\d*)e(?:-|$)/.exec(String(room));
  return Boolean(m) && (m[1] === '' || Number(m[1]) >= 2);
}

// newRoomSecret makes the secret and key check of a room about to be created.
export async function newRoomSecret() {
  const secret = newSecret();
  return { secret, keyCheck: await keyCheck(secret) };
}

// keyFromHash reads a link's fragment into history state: {key} for a
// secret, {keyProblem: "bad_key"} for a damaged one, {} for none.
export function keyFromHash(hash) {
  try {
    const key = secretFromFragment(hash);
    return key ? { key } : {};
  } catch {
    return { keyProblem: 'bad_key' };
  }
}

// RoomSeal is one encrypted room as this page sees it. A page with a key
// always seals, and a code made for encryption is encrypted, whatever the
// server says: the server cannot turn encryption off.
export class RoomSeal {
  // state is the history state: key and keyProblem come from the link.
  constructor(room, state) {
    this.secret = typeof state.key === 'string' ? state.key : '';
    this.problem = state.keyProblem || (this.secret && !available() ? 'unavailable' : '');
    this.encrypted = Boolean(this.secret || this.problem || codeSaysEncrypted(room)); // until welcome says more
    if (this.encrypted && !this.secret && !this.problem) this.problem = available() ? 'missing' : 'unavailable';
    this.cipher = null;
    this.ids = new Set(); // message ids opened, to drop replays
    this.emoji = new Map(); // sealed reaction → emoji, or "" for one that does not open
    this.ready = this.secret && !this.problem
      ? openRoom(this.secret, room).then((c) => { this.cipher = c; }, (err) => { this.problem = err.code || 'bad_key'; })
      : Promise.resolve();
  }

  // welcome applies what the server says of the room: whether it is
  // encrypted, and the creator's key check.
  welcome(p) {
    if (p.e2ee) this.encrypted = true;
    if (this.encrypted && !this.secret && !this.problem) this.problem = available() ? 'missing' : 'unavailable';
    if (this.cipher && typeof p.keyCheck === 'string' && p.keyCheck && p.keyCheck !== this.cipher.keyCheck) {
      this.problem = 'mismatch';
      this.cipher = null;
    }
  }

  // lock is why this page can neither read nor write here, or "".
  lock() {
    return this.encrypted && this.problem ? lockReasons[this.problem] : '';
  }

  // canSeal reports whether messages sent from here are sealed.
  canSeal() {
    return Boolean(this.cipher);
  }

  // open turns a chatMessage payload into what the page shows: the text,
  // and a flag {kind, note} when it is not a message sealed by its sender.
  // It returns null for a replay, which is dropped.
  async open(p) {
    const view = { ...p };
    if (!this.encrypted) return view;
    if (!String(p.message).startsWith(sealedPrefix)) {
      view.flag = { kind: 'plain', note: 'Not encrypted: this message was sent in the clear.' };
      return view;
    }
    if (!this.cipher) {
      view.message = lockedTexts[this.problem] || lockedTexts.undecryptable;
      view.flag = { kind: 'locked' };
      return view;
    }
    let inner;
    try {
      inner = await this.cipher.open(p.message);
    } catch (err) {
      view.message = lockedTexts[err instanceof CryptoError ? err.code : 'undecryptable'] || lockedTexts.undecryptable;
      view.flag = { kind: 'locked' };
      return view;
    }
    if (this.ids.has(inner.id)) return null;
    this.ids.add(inner.id);
    view.message = inner.text;
    if (inner.quote) view.quote = inner.quote;
    if (inner.name !== p.username) {
      view.flag = { kind: 'impostor', note: `Encrypted as “${inner.name}”, but the server says ${p.username} sent it.` };
    } else if (!(Math.abs(Number(inner.time) - Number(p.ts)) <= sealedSkewMs)) {
      view.flag = { kind: 'stale', note: `This message was sealed ${when(inner.time)}, but the server says it was sent ${when(p.ts)}: it may be an old message sent again.` };
    }
    return view;
  }

  // seal encrypts text from name, with a reply's quote {n, m} if any.
  seal(name, text, quote = null) {
    return this.cipher.seal(name, text, undefined, quote);
  }

  // room is the plaintext room in a message that may be maxBytes on the
  // wire, and that carries quote.
  room(maxBytes, name, quote = null) {
    return this.cipher.plaintextRoom(maxBytes, name, undefined, quote);
  }

  // sealEmoji and openEmoji seal and open reactions (see crypto.js); in an
  // ordinary room the emoji travels as it is.
  sealEmoji(emoji) {
    return this.encrypted ? this.cipher.sealEmoji(emoji) : Promise.resolve(emoji);
  }

  async openEmoji(token) {
    if (!this.encrypted) return token;
    if (!this.cipher) return '';
    if (!this.emoji.has(token)) this.emoji.set(token, await this.cipher.openEmoji(token));
    return this.emoji.get(token);
  }

  // fragment is what Copy link appends: the key.
  fragment() {
    return this.secret ? `#k=${this.secret}` : '';
  }

  // safetyWords are the words members compare, or [] without a key.
  safetyWords() {
    return this.cipher ? this.cipher.safetyWords : [];
  }
}

// when shows a time in milliseconds for a flag's note.
function when(ms) {
  const d = new Date(Number(ms));
  return Number.isNaN(d.getTime()) ? 'at no valid time' : `on ${d.toLocaleString()}`;
}

const $ = (id) => document.getElementById(id);

// showSeal updates the room screen for seal: the header's words, the
// explanation's safety words, the alert and the composer.
export function showSeal(seal) {
  $('e2ee-badge').hidden = !seal.encrypted;
  $('room').classList.toggle('encrypted', seal.encrypted);
  if (!seal.encrypted) $('e2ee-info').hidden = true;
  const words = seal.safetyWords();
  $('e2ee-words').textContent = words.join(' · ');
  $('e2ee-words-row').hidden = words.length === 0;
  const lock = seal.lock();
  $('e2ee-alert').hidden = !lock;
  $('e2ee-alert-text').textContent = lock;
  const input = $('composer-input');
  input.disabled = Boolean(lock) || (seal.encrypted && !seal.canSeal()); // until the keys are ready
  input.placeholder = lock ? 'This page cannot write in this encrypted room' : 'Write a message…';
}

// clearSeal resets the room screen for an ordinary room.
export function clearSeal() {
  showSeal(new RoomSeal('', {}));
}
