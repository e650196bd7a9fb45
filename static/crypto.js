// crypto.js seals and opens the messages of an end-to-end encrypted room.
// The room's secret travels in the link's fragment (#k=…), which browsers
// never send to a server; everything here runs in the page, through
// WebCrypto. It knows nothing about the page, so it also runs under Node.
//
// Format version 1, as README.md documents it:
//   secret   32 random bytes, base64url (43 characters, no padding)
//   keys     HKDF-SHA256(secret, salt "hallway e1", info LABEL + "\n" + room code):
//            "message key" → AES-256-GCM key; "safety words" → 6 bytes, one
//            word of `words` each; "key check" (with an empty room) → 16 bytes
//   message  "e1." + base64url(IV (12 random bytes) ‖ ciphertext ‖ tag (16 bytes))
//            of the UTF-8 JSON {"n": sender, "i": message id, "t": client ms, "m": text}

// sealedPrefix starts every sealed message on the wire.
export const sealedPrefix = 'e1.';
// secretLength is the size of a room secret in bytes (256 bits).
const secretLength = 32;
// ivLength is AES-GCM's 96-bit nonce; tagLength its 128-bit tag.
const ivLength = 12;
const tagLength = 16;
// idLength is the size of a message id in bytes: random, so repeats are replays.
const idLength = 16;
// keyCheckLength is the size of the key check a creator gives the server.
const keyCheckLength = 16;
// safetyWordCount is how many words members compare (48 bits).
const safetyWordCount = 6;
// maxNameLength bounds a sealed sender name (the server allows 32 characters).
const maxNameLength = 128;
// maxQuoteLength bounds a reply's sealed quote (the page quotes 80 characters).
const maxQuoteLength = 400;
// sealedEmojiPrefix starts a sealed reaction (format version 1).
const sealedEmojiPrefix = 'r1.';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });
const salt = encoder.encode('hallway e1');

// words spell the safety words: 256 of them, one per byte.
export const words = Object.freeze(`acorn actor alarm album amber angle apple apron arrow atlas attic award
bacon badge bagel baker bamboo banjo barn basil basket beach beard bell bench berry bison blade blanket bloom
boat bone bonus book boot bottle bread brick bridge broom brush bucket cabin cable cactus camel camera candle
canoe canyon carpet carrot castle cedar chair chalk cheese cherry chess chimney cider circle clock cloud clover
coast cobra cocoa comet copper coral cotton cousin crane crayon cricket crown crystal cup daisy dancer delta
desert diamond dinner dolphin donkey dragon drum eagle echo elbow ember engine falcon farmer feather fence ferry
fiddle field finch flame flute forest fossil fountain fox garden garlic gecko ginger giraffe glacier globe
glove goat grape gravel guitar hammer harbor harp hazel helmet heron hill honey hornet hotel island ivory jacket
jaguar jelly jewel jungle kayak kettle kiwi koala ladder lagoon lamp lantern lemon lily lion lizard lobster
locket lotus magnet mango maple marble meadow melon mirror mitten monkey moose mosaic moth mountain muffin
nectar needle nest noodle nutmeg oak oasis ocean olive onion orange orbit otter owl paddle palace panda paper
parrot peach peanut pebble pencil pepper piano pillow pine pirate planet plum pocket pony poppy potato pumpkin
puzzle quartz quill rabbit radio raven ribbon river robin rocket rose ruby saddle salmon sandal satin scarf
shell shovel silver sketch sled snail socket spider spoon squid stamp star stone sugar summit swan table tiger
toast tomato topaz torch tulip tunnel turtle velvet violin wagon walnut walrus whale whistle willow window
wizard wolf yogurt zebra`.split(/\s+/));

// CryptoError is a failure with a stable code a page can explain:
// "unavailable" (no WebCrypto: not a secure context), "bad_key" (the link's
// secret is not one), "not_sealed" (plain text), "malformed" (not a sealed
// message of this format) or "undecryptable" (another key, or altered).
export class CryptoError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'CryptoError';
    this.code = code;
  }
}

// available reports whether this page can encrypt: WebCrypto exists only
// in secure contexts (https, localhost).
export function available() {
  return Boolean(globalThis.crypto && globalThis.crypto.subtle) && globalThis.isSecureContext !== false;
}

// encodeBase64url encodes bytes without padding.
export function encodeBase64url(bytes) {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

// decodeBase64url decodes unpadded base64url and accepts only the one
// canonical spelling of any byte string, so a message has one form.
export function decodeBase64url(s) {
  if (typeof s !== 'string' || !/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) {
    throw new CryptoError('malformed', 'not unpadded base64url');
  }
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/'));
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  if (encodeBase64url(bytes) !== s) throw new CryptoError('malformed', 'not canonical base64url');
  return bytes;
}

// randomBytes returns n bytes from the system's secure generator.
function randomBytes(n) {
  return crypto.getRandomValues(new Uint8Array(n));
}

// newSecret returns a fresh room secret, as it goes into a link.
export function newSecret() {
  return encodeBase64url(randomBytes(secretLength));
}

// secretFromFragment finds the secret in a link's fragment ("#k=…"). It
// returns "" when there is none and throws CryptoError "bad_key" when the
// fragment holds something that is not a secret (a link cut short).
export function secretFromFragment(hash) {
  const m = /(?:^#?|&)k=([^&]*)/.exec(hash || '');
  if (!m) return '';
  let bytes;
  try {
    bytes = decodeBase64url(m[1]);
  } catch {
    bytes = null;
  }
  if (!bytes || bytes.length !== secretLength) {
    throw new CryptoError('bad_key', 'the key in this link is damaged');
  }
  return m[1];
}

// importSecret checks a secret and imports it as an HKDF key.
async function importSecret(secret) {
  if (!available()) throw new CryptoError('unavailable', 'WebCrypto is not available here');
  let raw;
  try {
    raw = decodeBase64url(secret);
  } catch {
    raw = null;
  }
  if (!raw || raw.length !== secretLength) throw new CryptoError('bad_key', 'not a room secret');
  return crypto.subtle.importKey('raw', raw, 'HKDF', false, ['deriveKey', 'deriveBits']);
}

// hkdf names one output of the secret; room is "" for the key check.
function hkdf(label, room) {
  return { name: 'HKDF', hash: 'SHA-256', salt, info: encoder.encode(`${label}\n${room}`) };
}

// keyCheck derives the key check of a secret. It does not depend on the
// room, so a creator can send it before the server has chosen a code.
export async function keyCheck(secret) {
  const base = await importSecret(secret);
  return encodeBase64url(new Uint8Array(await crypto.subtle.deriveBits(hkdf('key check', ''), base, keyCheckLength * 8)));
}

// openRoom derives a room's keys from its secret. The AES key is not
// extractable: not even this page can read it back.
export async function openRoom(secret, room) {
  const base = await importSecret(secret);
  const subtle = crypto.subtle;
  const key = await subtle.deriveKey(hkdf('message key', room), base, { name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
  const safety = new Uint8Array(await subtle.deriveBits(hkdf('safety words', room), base, safetyWordCount * 8));
  const reaction = {
    key: await subtle.deriveKey(hkdf('reaction key', room), base, { name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']),
    mac: await subtle.deriveKey(hkdf('reaction nonce', room), base, { name: 'HMAC', hash: 'SHA-256', length: 256 }, false, ['sign']),
  };
  return new RoomCipher(key, await keyCheck(secret), [...safety].map((b) => words[b]), reaction);
}

// jsonBytes is the UTF-8 size of v as JSON.
function jsonBytes(v) {
  return encoder.encode(JSON.stringify(v)).length;
}

// RoomCipher seals and opens one room's messages.
export class RoomCipher {
  constructor(key, keyCheck, safetyWords, reaction) {
    this.key = key;
    // reaction holds the keys of sealEmoji: AES-GCM and the HMAC of its IV.
    this.reaction = reaction;
    // keyCheck lets the server tell a page with another key at once; it
    // reveals nothing about the key.
    this.keyCheck = keyCheck;
    // safetyWords are compared out of band to confirm one shared key.
    this.safetyWords = safetyWords;
  }

  // seal encrypts text from name under a fresh IV and returns the wire
  // string. A reply's quote {n: author, m: text} is sealed with it.
  async seal(name, text, time = Date.now(), quote = null) {
    const inner = { n: name, i: encodeBase64url(randomBytes(idLength)), t: time, m: text, ...(quote ? { q: quote } : {}) };
    const iv = randomBytes(ivLength);
    const ct = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, this.key, encoder.encode(JSON.stringify(inner))));
    const body = new Uint8Array(ivLength + ct.length);
    body.set(iv);
    body.set(ct, ivLength);
    return sealedPrefix + encodeBase64url(body);
  }

  // open decrypts a wire string into {name, id, time, text}, or throws a
  // CryptoError saying why not.
  async open(wire) {
    if (typeof wire !== 'string' || !wire.startsWith(sealedPrefix)) {
      throw new CryptoError('not_sealed', 'not an encrypted message');
    }
    const body = decodeBase64url(wire.slice(sealedPrefix.length));
    if (body.length < ivLength + tagLength + 1) throw new CryptoError('malformed', 'too short');
    let plain;
    try {
      plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: body.subarray(0, ivLength) }, this.key, body.subarray(ivLength));
    } catch {
      throw new CryptoError('undecryptable', 'another key, or the message was altered');
    }
    let inner;
    try {
      inner = JSON.parse(decoder.decode(plain));
    } catch {
      inner = null;
    }
    const ok = inner && typeof inner === 'object' && typeof inner.n === 'string' && inner.n.length <= maxNameLength &&
      typeof inner.i === 'string' && /^[A-Za-z0-9_-]{22}$/.test(inner.i) &&
      Number.isSafeInteger(inner.t) && typeof inner.m === 'string';
    if (!ok) throw new CryptoError('malformed', 'not a message of this format');
    const q = inner.q;
    const quote = q && typeof q === 'object' && typeof q.n === 'string' && q.n.length <= maxNameLength &&
      typeof q.m === 'string' && q.m.length <= maxQuoteLength ? { username: q.n, text: q.m } : null;
    return { name: inner.n, id: inner.i, time: inner.t, text: inner.m, quote };
  }

  // plaintextRoom is how many bytes of text (as cost counts them) fit in a
  // sealed message from name when the server allows maxBytes on the wire.
  plaintextRoom(maxBytes, name, time = Date.now(), quote = null) {
    const bodyBytes = Math.floor((3 * (maxBytes - sealedPrefix.length)) / 4);
    const overhead = jsonBytes({ n: name, i: 'A'.repeat(22), t: time, m: '', ...(quote ? { q: quote } : {}) });
    return bodyBytes - ivLength - tagLength - overhead;
  }

  // sealEmoji seals a reaction deterministically, so that the same emoji
  // always gives the same token and a second press removes the first: the
  // IV is an HMAC of the emoji (a synthetic IV, as in AES-SIV). The server
  // sees only which reactions are equal, never what they are.
  async sealEmoji(emoji) {
    const plain = encoder.encode(emoji);
    const iv = new Uint8Array(await crypto.subtle.sign('HMAC', this.reaction.mac, plain)).subarray(0, ivLength);
    const ct = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, this.reaction.key, plain));
    const body = new Uint8Array(ivLength + ct.length);
    body.set(iv);
    body.set(ct, ivLength);
    return sealedEmojiPrefix + encodeBase64url(body);
  }

  // openEmoji opens a sealed reaction, or returns "" for one that does not
  // open or was not sealed deterministically (its IV is not its HMAC), so
  // that no one can add a second copy of a reaction that toggling misses.
  async openEmoji(token) {
    try {
      if (!token.startsWith(sealedEmojiPrefix)) return '';
      const body = decodeBase64url(token.slice(sealedEmojiPrefix.length));
      const iv = body.subarray(0, ivLength);
      const plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv }, this.reaction.key, body.subarray(ivLength));
      const want = new Uint8Array(await crypto.subtle.sign('HMAC', this.reaction.mac, plain)).subarray(0, ivLength);
      return want.every((b, i) => b === iv[i]) ? decoder.decode(plain) : '';
    } catch {
      return '';
    }
  }
}

// cost is what text takes of plaintextRoom: its UTF-8 bytes as JSON, where a
// line break or a quote costs two.
export function cost(text) {
  return jsonBytes(text) - 2;
}

// ---- Files --------------------------------------------------------------
//
// A file in an encrypted room (format f1, after RFC 8188's aes128gcm, with
// AES-256-GCM):
//   header   salt (16 random bytes, fresh per file) ‖ record size rs (uint32,
//            big-endian: plaintext bytes per record, 65536)
//   keys     HKDF-SHA256(secret, salt, info "file key\n" + room) → AES-256-GCM
//            key; HKDF-SHA256(secret, salt, info "file nonce\n" + room) → 12 bytes
//   records  AES-GCM(plaintext piece ‖ delimiter) with nonce = nonce base XOR
//            the record's number (big-endian, from 0); every piece but the
//            last is rs bytes; the delimiter is 1, or 2 on the last record
// A record that is altered, moved or dropped fails its tag or its delimiter,
// so a damaged file never decrypts in part. The name and the media type are
// sealed apart, as a message ({"f": name, "t": type, "s": salt, "w", "h"}),
// and the salt in it ties them to this file's bytes.

// fileSaltLength is the size of a file's salt; fileHeaderLength its header.
const fileSaltLength = 16;
const fileHeaderLength = fileSaltLength + 4;
// fileRecordSize is the plaintext bytes in each record but the last.
export const fileRecordSize = 65536;
// maxFileRecordSize bounds the record size a header may declare.
const maxFileRecordSize = 1 << 20;

// fileKeys derives a file's AES key and nonce base.
async function fileKeys(secret, room, salt) {
  const base = await importSecret(secret);
  const info = (label) => ({ name: 'HKDF', hash: 'SHA-256', salt, info: encoder.encode(`${label}\n${room}`) });
  const key = await crypto.subtle.deriveKey(info('file key'), base, { name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
  const nonce = new Uint8Array(await crypto.subtle.deriveBits(info('file nonce'), base, ivLength * 8));
  return { key, nonce };
}

// recordNonce is the nonce base XOR the record number i.
function recordNonce(base, i) {
  const iv = base.slice();
  for (let k = ivLength - 1, n = i; k >= ivLength - 6 && n > 0; k--, n = Math.floor(n / 256)) iv[k] ^= n % 256;
  return iv;
}

// sealedFileSize is the size on the wire of a file of n bytes.
export function sealedFileSize(n, rs = fileRecordSize) {
  const records = Math.max(1, Math.ceil(n / rs));
  return fileHeaderLength + n + records * (1 + tagLength);
}

// newFileSalt returns a fresh salt for one file.
export function newFileSalt() {
  return randomBytes(fileSaltLength);
}

// sealFile encrypts bytes (a Uint8Array) into format f1 under salt.
export async function sealFile(secret, room, salt, bytes, rs = fileRecordSize) {
  const { key, nonce } = await fileKeys(secret, room, salt);
  const out = new Uint8Array(sealedFileSize(bytes.length, rs));
  out.set(salt);
  new DataView(out.buffer).setUint32(fileSaltLength, rs);
  const records = Math.max(1, Math.ceil(bytes.length / rs));
  let at = fileHeaderLength;
  for (let i = 0; i < records; i++) {
    const piece = bytes.subarray(i * rs, Math.min(bytes.length, (i + 1) * rs));
    const plain = new Uint8Array(piece.length + 1);
    plain.set(piece);
    plain[piece.length] = i === records - 1 ? 2 : 1;
    const ct = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv: recordNonce(nonce, i) }, key, plain));
    out.set(ct, at);
    at += ct.length;
  }
  return out;
}

// fileSalt reads the salt of a file in format f1.
export function fileSalt(sealed) {
  if (sealed.length < fileHeaderLength + 1 + tagLength) throw new CryptoError('malformed', 'too short for a file');
  return sealed.slice(0, fileSaltLength);
}

// openFile decrypts a file in format f1 and returns its bytes, or throws a
// CryptoError: "malformed", or "undecryptable" when it was altered,
// reordered or cut short, or is another key's.
export async function openFile(secret, room, sealed) {
  const salt = fileSalt(sealed);
  const rs = new DataView(sealed.buffer, sealed.byteOffset).getUint32(fileSaltLength);
  if (rs < 1 || rs > maxFileRecordSize) throw new CryptoError('malformed', 'not a record size');
  const { key, nonce } = await fileKeys(secret, room, salt);
  const body = sealed.subarray(fileHeaderLength);
  const full = rs + 1 + tagLength;
  const out = new Uint8Array(Math.max(0, body.length - Math.ceil(body.length / full) * (1 + tagLength)));
  let at = 0;
  for (let i = 0, off = 0; off < body.length; i++) {
    const record = body.subarray(off, Math.min(body.length, off + full));
    off += record.length;
    let plain;
    try {
      plain = new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv: recordNonce(nonce, i) }, key, record));
    } catch {
      throw new CryptoError('undecryptable', 'another key, or the file was altered');
    }
    const last = off === body.length;
    const delimiter = plain[plain.length - 1];
    if (plain.length === 0 || delimiter !== (last ? 2 : 1) || (!last && plain.length !== rs + 1)) {
      throw new CryptoError('undecryptable', 'the file was cut short or its records moved');
    }
    out.set(plain.subarray(0, plain.length - 1), at);
    at += plain.length - 1;
  }
  if (body.length === 0) throw new CryptoError('malformed', 'no records');
  return out.subarray(0, at);
}
