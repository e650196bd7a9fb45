// Tests of static/crypto.js in Node's WebCrypto, run by `node --test`
// (crypto_node_test.go runs them with the Go suite). The module is loaded
// from its source as an ES module whatever Node's package settings are.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { webcrypto } from 'node:crypto';

if (!globalThis.crypto) globalThis.crypto = webcrypto; // Node 18 keeps it out of the globals.

const source = readFileSync(new URL('../static/crypto.js', import.meta.url), 'utf8');
const c = await import(`data:text/javascript,${encodeURIComponent(source)}`);

const room = 'k3v7q2mxa9c4tdzp';

// rejects asserts that promise fails with a CryptoError of code.
async function rejects(promise, code, what) {
  await assert.rejects(promise, (err) => err instanceof c.CryptoError && err.code === code, what);
}

// flipBit returns wire with one bit of its decoded body inverted, re-encoded canonically.
function flipBit(wire, byteIndex, bit = 0) {
  const body = c.decodeBase64url(wire.slice(c.sealedPrefix.length));
  const i = byteIndex < 0 ? body.length + byteIndex : byteIndex;
  body[i] ^= 1 << bit;
  return c.sealedPrefix + c.encodeBase64url(body);
}

test('round trip', async () => {
  const secret = c.newSecret();
  assert.match(secret, /^[A-Za-z0-9_-]{43}$/);
  const alice = await c.openRoom(secret, room);
  const bob = await c.openRoom(secret, room); // another page with the same link
  for (const text of ['hello', 'Zoë says «bonjour» 👋\nsecond line "quoted" \\ and \u0000', 'x'.repeat(5000)]) {
    const wire = await alice.seal('Alice', text, 1764050000000);
    assert.ok(wire.startsWith('e1.'), wire);
    assert.match(wire.slice(3), /^[A-Za-z0-9_-]+$/);
    assert.ok(!wire.includes(text.slice(0, 5)), 'the text shows through');
    const got = await bob.open(wire);
    assert.deepEqual({ name: got.name, time: got.time, text: got.text }, { name: 'Alice', time: 1764050000000, text });
    assert.match(got.id, /^[A-Za-z0-9_-]{22}$/);
  }
});

test('a wrong key or a wrong room fails cleanly', async () => {
  const secret = c.newSecret();
  const wire = await (await c.openRoom(secret, room)).seal('Alice', 'for this room only');
  await rejects((await c.openRoom(c.newSecret(), room)).open(wire), 'undecryptable', 'another key');
  await rejects((await c.openRoom(secret, 'another-room')).open(wire), 'undecryptable', 'the same secret in another room');
});

test('a flipped bit in the IV, the ciphertext or the tag fails cleanly', async () => {
  const cipher = await c.openRoom(c.newSecret(), room);
  const wire = await cipher.seal('Alice', 'integrity matters');
  const places = { 'IV first byte': 0, 'IV last byte': 11, 'ciphertext first byte': 12, 'ciphertext middle': 20, 'tag first byte': -16, 'tag last byte': -1 };
  for (const [where, index] of Object.entries(places)) {
    for (const bit of [0, 7]) {
      await rejects(cipher.open(flipBit(wire, index, bit)), 'undecryptable', `${where}, bit ${bit}`);
    }
  }
  const body = c.decodeBase64url(wire.slice(3));
  await rejects(cipher.open('e1.' + c.encodeBase64url(body.subarray(0, body.length - 1))), 'undecryptable', 'cut short');
  assert.equal((await cipher.open(wire)).text, 'integrity matters', 'the original still opens');
});

test('IVs and message ids are unique', async () => {
  const cipher = await c.openRoom(c.newSecret(), room);
  const ivs = new Set();
  const ids = new Set();
  const wires = new Set();
  const n = 2000;
  for (let i = 0; i < n; i++) {
    const wire = await cipher.seal('Alice', 'the same text every time');
    wires.add(wire);
    ivs.add(c.encodeBase64url(c.decodeBase64url(wire.slice(3)).subarray(0, 12)));
    ids.add((await cipher.open(wire)).id);
  }
  assert.equal(ivs.size, n, 'an IV repeated');
  assert.equal(ids.size, n, 'a message id repeated');
  assert.equal(wires.size, n, 'the same text sealed twice gave the same ciphertext');
});

test('decoding is canonical', async () => {
  assert.deepEqual([...c.decodeBase64url('AAEC_-8')], [0, 1, 2, 255, 239]);
  for (const bad of ['AB', 'AAE=', 'AAEC/+8', 'AAEC+-8', 'A', 'AA AA', 'AAA\n', 'ÀA']) {
    assert.throws(() => c.decodeBase64url(bad), (err) => err.code === 'malformed', bad);
  }
  for (let n = 0; n < 40; n++) {
    const bytes = crypto.getRandomValues(new Uint8Array(n));
    const s = c.encodeBase64url(bytes);
    assert.deepEqual([...c.decodeBase64url(s)], [...bytes]);
    assert.ok(!s.includes('='));
  }
  // A second spelling of the same bytes (other trailing bits) is refused.
  const cipher = await c.openRoom(c.newSecret(), room);
  for (let i = 0; i < 20; i++) {
    const wire = await cipher.seal('Alice', 'x'.repeat(i));
    const body = wire.slice(3);
    if (body.length % 4 === 0) continue; // no spare bits to play with
    const last = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.indexOf(body.at(-1));
    const alias = wire.slice(0, -1) + 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'[last | 1];
    await rejects(cipher.open(alias), 'malformed', `alias of ${wire}`);
  }
});

test('what is not a sealed message says so', async () => {
  const cipher = await c.openRoom(c.newSecret(), room);
  await rejects(cipher.open('hello in the clear'), 'not_sealed');
  await rejects(cipher.open(undefined), 'not_sealed');
  await rejects(cipher.open('e1.'), 'malformed');
  await rejects(cipher.open('e1.AAAA'), 'malformed', 'too short');
  await rejects(cipher.open('e1.!!!!'), 'malformed');
  // Authentic but not this format: the room key sealed something else.
  for (const inner of ['not json', '{"n":"a","t":1,"m":"no id"}', '{"n":"a","i":"AAAAAAAAAAAAAAAAAAAAAA","t":1.5,"m":"x"}', '[]']) {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const ct = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, cipher.key, new TextEncoder().encode(inner)));
    await rejects(cipher.open('e1.' + c.encodeBase64url(new Uint8Array([...iv, ...ct]))), 'malformed', inner);
  }
});

test('keys are not extractable, and each output is separate', async () => {
  const secret = c.newSecret();
  const a = await c.openRoom(secret, room);
  const again = await c.openRoom(secret, room);
  const other = await c.openRoom(secret, 'another-room');
  assert.equal(a.key.extractable, false);
  assert.deepEqual(a.key.algorithm, { name: 'AES-GCM', length: 256 });
  await assert.rejects(crypto.subtle.exportKey('raw', a.key));
  assert.match(a.keyCheck, /^[A-Za-z0-9_-]{22}$/);
  assert.equal(a.keyCheck, again.keyCheck);
  // The key check is known before the room has a code, so it is the same in
  // every room, and another secret has another.
  assert.equal(a.keyCheck, other.keyCheck);
  assert.equal(a.keyCheck, await c.keyCheck(secret));
  assert.notEqual(a.keyCheck, await c.keyCheck(c.newSecret()));
  assert.equal(a.safetyWords.length, 6);
  assert.ok(a.safetyWords.every((w) => c.words.includes(w)));
  assert.deepEqual(a.safetyWords, again.safetyWords);
  assert.notDeepEqual(a.safetyWords, other.safetyWords);
  assert.equal(new Set(c.words).size, 256);
});

test('the secret is read from a fragment, and a damaged one is refused', async () => {
  const secret = c.newSecret();
  assert.equal(c.secretFromFragment(`#k=${secret}`), secret);
  assert.equal(c.secretFromFragment(`#x=1&k=${secret}`), secret);
  assert.equal(c.secretFromFragment(''), '');
  assert.equal(c.secretFromFragment('#'), '');
  for (const bad of [`#k=${secret.slice(0, 40)}`, `#k=${secret}A`, '#k=', `#k=${secret.slice(0, -1)}+`]) {
    assert.throws(() => c.secretFromFragment(bad), (err) => err.code === 'bad_key', bad);
  }
  await rejects(c.openRoom('short', room), 'bad_key');
});

test('plaintextRoom is exactly what fits in maxBytes on the wire', async () => {
  const cipher = await c.openRoom(c.newSecret(), room);
  const t = 1764050000000;
  for (const maxBytes of [200, 333, 4096]) {
    for (const name of ['Al', 'Zoë Ångström-Ødegård']) {
      const room_ = cipher.plaintextRoom(maxBytes, name, t);
      for (const filler of ['a', 'é', '\n']) {
        const per = c.cost(filler);
        const fits = filler.repeat(Math.floor(room_ / per));
        assert.ok(c.cost(fits) <= room_);
        const wire = await cipher.seal(name, fits, t);
        assert.ok(wire.length <= maxBytes, `${maxBytes}/${name}/${JSON.stringify(filler)}: ${wire.length} bytes`);
        if (per === 1) assert.ok(wire.length >= maxBytes - 2, `room wasted: ${wire.length} of ${maxBytes}`);
        const over = await cipher.seal(name, fits + 'a'.repeat(room_ - c.cost(fits) + 1), t);
        assert.ok(over.length > maxBytes, `one byte over the room still fits: ${over.length} of ${maxBytes}`);
      }
    }
  }
  assert.equal(c.cost('plain'), 5);
  assert.equal(c.cost('a\nb'), 4);
  assert.equal(c.cost('é'), 2);
});

// fileBytes returns n bytes of a repeating pattern with a marker at the start.
function fileBytes(n) {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
}

// sealedCopy seals bytes in small records, so that a test has many.
async function sealedCopy(secret, bytes, rs = 1000) {
  return c.sealFile(secret, room, c.newFileSalt(), bytes, rs);
}

test('a file round trips in records, whatever its length', async () => {
  const secret = c.newSecret();
  for (const n of [0, 1, 999, 1000, 1001, 5000, 70000]) {
    const bytes = fileBytes(n);
    for (const rs of [1000, c.fileRecordSize]) {
      const sealed = await c.sealFile(secret, room, c.newFileSalt(), bytes, rs);
      assert.equal(sealed.length, c.sealedFileSize(n, rs), `size of ${n} bytes in records of ${rs}`);
      assert.deepEqual(await c.openFile(secret, room, sealed), bytes, `${n} bytes in records of ${rs}`);
    }
  }
  const canary = new TextEncoder().encode('CANARY-in-the-file '.repeat(100));
  const sealed = await sealedCopy(secret, canary);
  assert.ok(!Buffer.from(sealed).toString('latin1').includes('CANARY'), 'the plaintext shows through');
});

test('every file gets a fresh salt, so the same bytes seal differently', async () => {
  const secret = c.newSecret();
  const a = await sealedCopy(secret, fileBytes(3000));
  const b = await sealedCopy(secret, fileBytes(3000));
  assert.notDeepEqual(c.fileSalt(a), c.fileSalt(b));
  assert.notDeepEqual(a.subarray(20), b.subarray(20));
});

test('a truncated file fails, at a record boundary or inside a record', async () => {
  const secret = c.newSecret();
  const sealed = await sealedCopy(secret, fileBytes(3500)); // records of 1000: 3 full and a last
  const full = 1000 + 17;
  for (const cut of [20 + full, 20 + 2 * full, 20 + 3 * full, sealed.length - 1, sealed.length - 17, 40]) {
    await rejects(c.openFile(secret, room, sealed.slice(0, cut)), 'undecryptable', `cut at ${cut}`);
  }
  for (const cut of [20, 21, 36]) {
    await rejects(c.openFile(secret, room, sealed.slice(0, cut)), 'malformed', `cut at ${cut}, shorter than one record`);
  }
  // A file of exactly whole records: dropping its last record leaves a
  // record whose delimiter says it is not the last.
  const whole = await sealedCopy(secret, fileBytes(3000));
  await rejects(c.openFile(secret, room, whole.slice(0, 20 + 2 * full)), 'undecryptable', 'last whole record dropped');
});

test('reordered or repeated records fail', async () => {
  const secret = c.newSecret();
  const sealed = await sealedCopy(secret, fileBytes(3500));
  const full = 1000 + 17;
  const rec = (i) => sealed.slice(20 + i * full, Math.min(sealed.length, 20 + (i + 1) * full));
  const join = (...parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  };
  const header = sealed.slice(0, 20);
  await rejects(c.openFile(secret, room, join(header, rec(1), rec(0), rec(2), rec(3))), 'undecryptable', 'first two swapped');
  await rejects(c.openFile(secret, room, join(header, rec(0), rec(0), rec(2), rec(3))), 'undecryptable', 'a record repeated');
  await rejects(c.openFile(secret, room, join(header, rec(0), rec(1), rec(3))), 'undecryptable', 'a middle record dropped');
});

test('a flipped bit anywhere fails, and so do another key, room or salt', async () => {
  const secret = c.newSecret();
  const sealed = await sealedCopy(secret, fileBytes(2500));
  for (const i of [0, 15, 20, 500, 20 + 1017, sealed.length - 1]) {
    const bad = sealed.slice();
    bad[i] ^= 1;
    await rejects(c.openFile(secret, room, bad), 'undecryptable', `bit flipped at byte ${i}`);
  }
  const badSize = sealed.slice();
  badSize[19] ^= 1; // the record size
  await assert.rejects(c.openFile(secret, room, badSize), (err) => err instanceof c.CryptoError, 'record size altered');
  await rejects(c.openFile(c.newSecret(), room, sealed), 'undecryptable', 'another key');
  await rejects(c.openFile(secret, 'another-room', sealed), 'undecryptable', 'another room');
});

test('the file key is not the message key, nor anything made from the room code', async () => {
  const secret = c.newSecret();
  const sealed = await sealedCopy(secret, fileBytes(100));
  // A key made from the room name, padded to 16 characters, opens nothing.
  const weak = await crypto.subtle.importKey('raw', new TextEncoder().encode(room.padEnd(16, '0').slice(0, 16)), 'AES-GCM', false, ['decrypt']);
  await assert.rejects(crypto.subtle.decrypt({ name: 'AES-GCM', iv: sealed.slice(20, 32) }, weak, sealed.subarray(20)));
  const cipher = await c.openRoom(secret, room);
  const meta = await cipher.seal('Alice', JSON.stringify({ f: 'a.png', t: 'image/png', s: c.encodeBase64url(c.fileSalt(sealed)) }));
  assert.ok(meta.startsWith('e1.'));
  await rejects(c.openFile(secret, room, c.decodeBase64url(meta.slice(3))), 'malformed', 'a sealed message is no file');
});

test('a reply seals its quote, and a malformed quote is dropped', async () => {
  const secret = c.newSecret();
  const alice = await c.openRoom(secret, room);
  const wire = await alice.seal('Bob', 'count me in', 1764050000000, { n: 'Alice', m: 'Lunch on Friday?' });
  assert.ok(!wire.includes('Lunch'));
  assert.deepEqual((await alice.open(wire)).quote, { username: 'Alice', text: 'Lunch on Friday?' });
  assert.equal((await alice.open(await alice.seal('Bob', 'no reply'))).quote, null);
  assert.equal((await alice.open(await alice.seal('Bob', 'bad', 1, { n: 7, m: 'x' }))).quote, null);
  const quote = { n: 'Alice', m: 'é'.repeat(80) };
  const room4096 = alice.plaintextRoom(4096, 'Bob', 1764050000000, quote);
  assert.ok(room4096 < alice.plaintextRoom(4096, 'Bob', 1764050000000) - 100, 'the quote takes room');
});

test('reactions seal deterministically per room, and only such tokens open', async () => {
  const secret = c.newSecret();
  const alice = await c.openRoom(secret, room);
  const bob = await c.openRoom(secret, room);
  const token = await alice.sealEmoji('🎉');
  assert.match(token, /^r1\.[A-Za-z0-9_-]+$/);
  assert.ok(token.length <= 96, token);
  assert.equal(await bob.sealEmoji('🎉'), token, 'the same emoji gives the same token on every page');
  assert.notEqual(await alice.sealEmoji('👍'), token);
  assert.notEqual(await (await c.openRoom(secret, 'another-room')).sealEmoji('🎉'), token);
  assert.equal(await bob.openEmoji(token), '🎉');
  assert.equal(await (await c.openRoom(c.newSecret(), room)).openEmoji(token), '', 'another key');
  // A token sealed under a random IV opens nowhere: toggling would miss it.
  const body = c.decodeBase64url(token.slice(3));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const key = alice.reaction.key;
  const ct = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, key, new TextEncoder().encode('🎉')));
  const random = new Uint8Array(12 + ct.length);
  random.set(iv);
  random.set(ct, 12);
  assert.equal(await bob.openEmoji(`r1.${c.encodeBase64url(random)}`), '');
  body[body.length - 1] ^= 1;
  assert.equal(await bob.openEmoji(`r1.${c.encodeBase64url(body)}`), '', 'an altered token');
  assert.equal(await bob.openEmoji('e1.AAAA'), '');
});
