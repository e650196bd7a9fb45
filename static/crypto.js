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
  return new RoomCipher(key, await keyCheck(secret), [...safety].map((b) => words[b]));
}

// jsonBytes is the UTF-8 size of v as JSON.
function jsonBytes(v) {
  return encoder.encode(JSON.stringify(v)).length;
}

// RoomCipher seals and opens one room's messages.
export class RoomCipher {
  constructor(key, keyCheck, safetyWords) {
    this.key = key;
    // keyCheck lets the server tell a page with another key at once; it
    // reveals nothing about the key.
    this.keyCheck = keyCheck;
    // safetyWords are compared out of band to confirm one shared key.
    this.safetyWords = safetyWords;
  }

  // seal encrypts text from name under a fresh IV and returns the wire string.
  async seal(name, text, time = Date.now()) {
    const inner = { n: name, i: encodeBase64url(randomBytes(idLength)), t: time, m: text };
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
    return { name: inner.n, id: inner.i, time: inner.t, text: inner.m };
  }

  // plaintextRoom is how many bytes of text (as cost counts them) fit in a
  // sealed message from name when the server allows maxBytes on the wire.
  plaintextRoom(maxBytes, name, time = Date.now()) {
    const bodyBytes = Math.floor((3 * (maxBytes - sealedPrefix.length)) / 4);
    const overhead = jsonBytes({ n: name, i: 'A'.repeat(22), t: time, m: '' });
    return bodyBytes - ivLength - tagLength - overhead;
  }
}

// cost is what text takes of plaintextRoom: its UTF-8 bytes as JSON, where a
// line break or a quote costs two.
export function cost(text) {
  return jsonBytes(text) - 2;
}
