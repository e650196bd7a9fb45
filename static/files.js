// files.js shares files in a room: choosing one (the attach button, a drop
// or a paste), its preview, the upload with its progress, and the file
// messages in the list, an image inline or a card with Download. Bytes
// always come from the server as an attachment and are shown through blob:
// URLs made here; in an encrypted room they are sealed before they leave
// and opened after they arrive (crypto.js). docs/files.md has the protocol.

import {
  CryptoError, encodeBase64url, fileRecordSize, fileSalt, newFileSalt, openFile, sealFile, sealedFileSize,
} from './crypto.js';

// inlineTypes are the images shown in the list. Never SVG: it can carry script.
const inlineTypes = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif', 'image/bmp']);
// thumbPx is the largest side of an inline image, in CSS pixels.
const thumbPx = 320;

// uploadErrors rewords the server's error codes for a failed upload.
const uploadErrors = {
  file_too_large: 'the file is over this server’s size limit.',
  not_member: 'the connection to the room changed. Retry.',
  rate_limited: 'you are sending files too fast. Wait a minute, then retry.',
  storage_full: 'the server is holding all the files it can just now. Try again later.',
  upload_timeout: 'the upload took too long.',
  bad_file: 'the server could not read this file.',
};

const $ = (id) => document.getElementById(id);

// formatSize writes a byte count for people: 512 B, 1.4 KB, 3.2 MB.
export function formatSize(n) {
  if (n < 1000) return `${n} B`;
  const units = ['KB', 'MB', 'GB'];
  let v = n;
  let u = -1;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

// typeLabel is the short type shown on a card: PDF, ZIP, TEXT.
function typeLabel(type, name) {
  const ext = /\.([A-Za-z0-9]{1,5})$/.exec(name);
  if (ext) return ext[1].toUpperCase();
  const sub = String(type).split('/')[1] || 'file';
  return sub.slice(0, 8).toUpperCase();
}

// plainSize is the size of the file an encrypted room's upload of wire
// bytes holds (crypto.js's format f1: a 20-byte header, 17 bytes a record).
function plainSize(wire) {
  const body = wire - sealedFileSize(0) + 17;
  return Math.max(0, body - Math.ceil(body / (fileRecordSize + 17)) * 17);
}

// el makes an element with a class and, optionally, text.
function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

// imageSize measures an image the browser can decode, or returns null.
async function imageSize(file) {
  if (!inlineTypes.has(file.type) || typeof createImageBitmap !== 'function') return null;
  try {
    const bitmap = await createImageBitmap(file);
    const size = { w: bitmap.width, h: bitmap.height };
    bitmap.close();
    return size;
  } catch {
    return null;
  }
}

// FileShare is the room's files. hooks: list (the MessageList), code() the
// room, seal() its RoomSeal, me() this page's name, nextClientId().
export class FileShare {
  constructor(hooks) {
    this.hooks = hooks;
    this.limits = null; // from welcome
    this.staged = null; // {file, url} being previewed
    this.pending = new Map(); // clientId → {file, li, size}
    this.urls = new Set(); // blob: URLs to revoke when the room is left
  }

  // welcome takes the limits and the token of a new connection.
  welcome(files) {
    this.limits = files && typeof files.token === 'string' ? files : null;
    $('attach').hidden = !this.limits;
  }

  // clear forgets everything: another room was opened.
  clear() {
    this.cancel();
    this.pending.clear();
    for (const url of this.urls) URL.revokeObjectURL(url);
    this.urls.clear();
    this.limits = null;
  }

  // blobURL makes a blob: URL of bytes as type, revoked with the room.
  blobURL(bytes, type) {
    const url = URL.createObjectURL(new Blob([bytes], { type }));
    this.urls.add(url);
    return url;
  }

  // wireSize is what the file takes on the wire: sealed in an encrypted room.
  wireSize(n) {
    return this.hooks.seal().encrypted ? sealedFileSize(n) : n;
  }

  // ---- before sending ----

  // stage shows file in the preview with its name, size and, for an
  // image, a thumbnail; it says at once when the file is too large.
  stage(file) {
    if (!this.limits || !file) return;
    this.cancel();
    const preview = $('file-preview');
    const img = $('file-preview-img');
    this.staged = { file };
    if (inlineTypes.has(file.type)) {
      this.staged.url = URL.createObjectURL(file);
      img.src = this.staged.url;
    }
    img.hidden = !this.staged.url;
    $('file-preview-name').textContent = file.name || 'pasted file';
    $('file-preview-size').textContent = formatSize(file.size);
    let problem = '';
    if (file.size === 0) problem = 'This file is empty.';
    else if (this.wireSize(file.size) > this.limits.maxBytes) problem = `Files here can be at most ${formatSize(this.limits.maxBytes)}.`;
    else if (this.hooks.seal().encrypted && !this.hooks.seal().canSeal()) problem = 'This page cannot encrypt here, so it sends nothing.';
    $('file-preview-error').textContent = problem;
    $('file-preview-error').hidden = !problem;
    $('file-send').disabled = Boolean(problem);
    preview.hidden = false;
    (problem ? $('file-cancel') : $('file-send')).focus();
  }

  // cancel drops the file being previewed.
  cancel() {
    if (this.staged?.url) URL.revokeObjectURL(this.staged.url);
    this.staged = null;
    $('file-preview').hidden = true;
    $('file-preview-img').removeAttribute('src');
    $('file-input').value = '';
  }

  // send uploads the file being previewed.
  send() {
    const staged = this.staged;
    if (!staged || $('file-send').disabled) return;
    this.staged = null;
    $('file-preview').hidden = true;
    $('file-input').value = '';
    const clientId = this.hooks.nextClientId();
    const item = { file: staged.file, url: staged.url, clientId };
    item.li = this.hooks.list.addPendingFile(this.pendingBody(item), `File: ${staged.file.name || 'pasted file'}`);
    this.pending.set(clientId, item);
    this.upload(item);
  }

  // pendingBody is what an upload shows while it is under way.
  pendingBody(item) {
    const body = el('div', 'file-body');
    const card = el('div', 'file-card');
    card.append(el('span', 'file-type', typeLabel(item.file.type, item.file.name)));
    const info = el('div', 'file-info');
    info.append(el('p', 'file-name', item.file.name || 'pasted file'), el('p', 'file-size', formatSize(item.file.size)));
    card.append(info);
    const bar = el('progress', 'file-progress');
    bar.max = 1;
    bar.value = 0;
    body.append(card, bar, el('p', 'file-status', 'Preparing…'));
    return body;
  }

  // ---- uploading ----

  // upload seals (in an encrypted room) and posts item's file, showing
  // progress; a failure shows why, with Retry and Discard.
  async upload(item) {
    const { li } = item;
    const status = li.querySelector('.file-status');
    li.classList.remove('failed');
    li.classList.add('pending');
    li.querySelector('.file-actions')?.remove();
    const bar = li.querySelector('.file-progress');
    bar.hidden = false;
    bar.value = 0;
    let request;
    try {
      request = await this.request(item);
    } catch (err) {
      this.failed(item, err instanceof CryptoError ? 'this page could not encrypt it.' : 'it could not be read.');
      return;
    }
    if (!this.limits) {
      this.failed(item, 'the connection dropped before it could be sent.');
      return;
    }
    status.textContent = 'Sending…';
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/r/${encodeURIComponent(this.hooks.code())}/files`);
    for (const [k, v] of Object.entries(request.headers)) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (ev) => {
      if (ev.lengthComputable) bar.value = ev.loaded / ev.total;
    };
    xhr.onload = () => {
      if (xhr.status === 201) {
        bar.value = 1;
        status.textContent = 'Sent';
        return; // The room's echo replaces this item.
      }
      let code = '';
      try {
        code = JSON.parse(xhr.responseText).code;
      } catch {
        // A proxy's own page: no code.
      }
      this.failed(item, uploadErrors[code] || `the server refused it (HTTP ${xhr.status}).`);
    };
    xhr.onerror = () => this.failed(item, 'the network failed.');
    xhr.ontimeout = xhr.onerror;
    xhr.send(request.body);
  }

  // request builds an upload's body and headers; in an encrypted room the
  // bytes, the name and the type are sealed first.
  async request(item) {
    const { file, clientId } = item;
    const type = file.type || 'application/octet-stream';
    const name = file.name || 'pasted file';
    const size = await imageSize(file);
    const headers = { 'Upload-Token': this.limits?.token ?? '', 'Client-Id': clientId };
    // On Fly.io: straight to the room's machine, which a replay could not
    // do for a body over 1 MB.
    if (this.limits?.machine) headers['fly-force-instance-id'] = this.limits.machine;
    const seal = this.hooks.seal();
    if (!seal.encrypted) {
      Object.assign(headers, { 'Content-Type': type, 'File-Name': encodeURIComponent(name) });
      if (size) headers['Image-Size'] = `${size.w}x${size.h}`;
      return { body: file, headers };
    }
    if (!seal.canSeal()) throw new CryptoError('unavailable', 'no key');
    const salt = newFileSalt();
    const bytes = new Uint8Array(await file.arrayBuffer());
    const sealed = await sealFile(seal.secret, this.hooks.code(), salt, bytes);
    const meta = { f: name, t: type, s: encodeBase64url(salt), ...(size ? { w: size.w, h: size.h } : {}) };
    headers['Content-Type'] = 'application/octet-stream';
    headers['File-Meta'] = await seal.seal(this.hooks.me(), JSON.stringify(meta));
    return { body: new Blob([sealed]), headers };
  }

  // failed marks an upload as not sent, with the reason, Retry and Discard.
  failed(item, reason) {
    const { li } = item;
    if (!li.isConnected) return;
    li.classList.remove('pending');
    li.classList.add('failed');
    li.querySelector('.file-progress').hidden = true;
    li.querySelector('.file-status').textContent = `Not sent: ${reason}`;
    const actions = el('p', 'file-actions state');
    const retry = el('button', 'link retry', 'Retry');
    retry.type = 'button';
    retry.addEventListener('click', () => this.upload(item));
    const discard = el('button', 'link discard', 'Discard');
    discard.type = 'button';
    discard.addEventListener('click', () => {
      this.pending.delete(item.clientId);
      li.remove();
    });
    actions.append(retry, ' ', discard);
    li.append(actions);
  }

  // ---- receiving ----

  // receive shows a file frame: the uploader's own echo takes its pending
  // item's place, without downloading what this page already has.
  async receive(p) {
    const list = this.hooks.list;
    if (list.has(p.id, Number(p.ts))) return;
    const meta = await this.meta(p);
    const mine = p.clientId && p.username === this.hooks.me() ? this.pending.get(p.clientId) : undefined;
    if (mine) {
      this.pending.delete(p.clientId);
      mine.li.remove();
    }
    const body = el('div', 'file-body');
    const li = list.addFile({ ...p, ts: Number(p.ts) }, body, meta.locked ? 'Encrypted file' : `File: ${meta.name}, ${formatSize(meta.size)}`);
    if (!li) return;
    if (meta.flag) {
      li.classList.add(`sealed-${meta.flag.kind}`);
      if (meta.flag.note) li.append(el('p', 'seal-note', meta.flag.note));
    }
    if (meta.locked) {
      body.append(el('p', 'file-status locked', meta.locked));
      return;
    }
    if (inlineTypes.has(meta.type)) {
      this.showImage(body, p, meta, mine?.file);
    } else {
      this.showCard(body, p, meta);
    }
  }

  // meta is a file's name, type and image size: given in an ordinary room,
  // opened from its seal in an encrypted one, or {locked: why}.
  async meta(p) {
    const seal = this.hooks.seal();
    const size = Number(p.size) || 0;
    if (!seal.encrypted) {
      return { name: String(p.name ?? 'file'), type: String(p.type ?? ''), w: Number(p.width) || 0, h: Number(p.height) || 0, size };
    }
    if (typeof p.sealed !== 'string' || !seal.cipher) {
      return { locked: 'Encrypted file: this page has no key to open it.' };
    }
    try {
      const inner = await seal.cipher.open(p.sealed);
      const m = JSON.parse(inner.text);
      if (typeof m.f !== 'string' || typeof m.t !== 'string' || typeof m.s !== 'string') throw new CryptoError('malformed', 'meta');
      const meta = { name: m.f, type: m.t, salt: m.s, w: Number(m.w) || 0, h: Number(m.h) || 0, size: plainSize(size) };
      if (inner.name !== p.username) {
        meta.flag = { kind: 'impostor', note: `Encrypted as “${inner.name}”, but the server says ${p.username} sent it.` };
      }
      return meta;
    } catch {
      return { locked: 'Encrypted file: it could not be decrypted with this link’s key.' };
    }
  }

  // fetchBytes downloads a file, reporting progress from 0 to 1, and opens
  // it in an encrypted room. It throws Error("gone") for a file the server
  // no longer has and CryptoError when it does not decrypt.
  async fetchBytes(p, meta, progress) {
    const res = await fetch(`/r/${encodeURIComponent(this.hooks.code())}/files/${encodeURIComponent(p.file)}`, { cache: 'no-store' });
    if (res.status === 404) throw new Error('gone');
    if (!res.ok || !res.body) throw new Error('failed');
    const total = Number(p.size) || 0;
    const parts = [];
    let got = 0;
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      got += value.length;
      if (total) progress(Math.min(1, got / total));
    }
    const bytes = new Uint8Array(got);
    let at = 0;
    for (const part of parts) {
      bytes.set(part, at);
      at += part.length;
    }
    const seal = this.hooks.seal();
    if (!seal.encrypted) return bytes;
    if (encodeBase64url(fileSalt(bytes)) !== meta.salt) throw new CryptoError('undecryptable', 'not the file its name was sealed with');
    return openFile(seal.secret, this.hooks.code(), bytes);
  }

  // failure says why a download did not work, on its card.
  static failure(err) {
    if (err instanceof CryptoError) return 'This file could not be decrypted: it was altered, or it is another key’s.';
    if (err?.message === 'gone') return 'No longer available: the server has let this file go.';
    return 'Could not download this file. Try again.';
  }

  // showImage shows an inline image in a box of its own shape, so nothing
  // moves while it loads; a click opens it full size.
  showImage(body, p, meta, local) {
    const thumb = el('button', 'thumb');
    thumb.type = 'button';
    thumb.setAttribute('aria-label', `Open ${meta.name} full size`);
    if (meta.w > 0 && meta.h > 0) {
      const scale = Math.min(1, thumbPx / Math.max(meta.w, meta.h));
      thumb.style.aspectRatio = `${meta.w} / ${meta.h}`;
      thumb.style.width = `${Math.max(48, Math.round(meta.w * scale))}px`;
    }
    const img = el('img', 'thumb-img');
    img.alt = meta.name;
    const bar = el('progress', 'file-progress');
    bar.max = 1;
    bar.value = 0;
    const status = el('p', 'file-status', `${meta.name} · ${formatSize(meta.size)}`);
    thumb.append(img);
    body.append(thumb, bar, status);
    const show = (bytes) => {
      bar.hidden = true;
      const url = this.blobURL(bytes, meta.type);
      img.addEventListener('error', () => {
        thumb.remove();
        this.showCard(body, p, meta);
      }, { once: true });
      img.src = url;
      thumb.addEventListener('click', () => openViewer(url, meta.name));
    };
    if (local) {
      local.arrayBuffer().then(show, () => show(new Uint8Array()));
      return;
    }
    this.fetchBytes(p, meta, (f) => { bar.value = f; }).then(show, (err) => {
      bar.hidden = true;
      thumb.disabled = true;
      thumb.classList.add('gone');
      status.textContent = FileShare.failure(err);
    });
  }

  // showCard shows a file as a card with its type, name, size and Download.
  showCard(body, p, meta) {
    const card = el('div', 'file-card');
    card.append(el('span', 'file-type', typeLabel(meta.type, meta.name)));
    const info = el('div', 'file-info');
    info.append(el('p', 'file-name', meta.name), el('p', 'file-size', formatSize(meta.size)));
    const button = el('button', 'secondary small download', 'Download');
    button.type = 'button';
    card.append(info, button);
    const bar = el('progress', 'file-progress');
    bar.max = 1;
    bar.hidden = true;
    const status = el('p', 'file-status');
    body.append(card, bar, status);
    button.addEventListener('click', async () => {
      button.disabled = true;
      bar.hidden = false;
      bar.value = 0;
      status.textContent = 'Downloading…';
      try {
        const bytes = await this.fetchBytes(p, meta, (f) => { bar.value = f; });
        // Saved, never opened here: octet-stream and the download attribute.
        const a = el('a');
        a.href = this.blobURL(bytes, 'application/octet-stream');
        a.download = meta.name.replace(/[\\/]/g, '_') || 'file';
        document.body.append(a);
        a.click();
        a.remove();
        status.textContent = 'Downloaded';
      } catch (err) {
        status.textContent = FileShare.failure(err);
        card.classList.add('gone');
      } finally {
        bar.hidden = true;
        button.disabled = false;
      }
    });
  }
}

// openViewer shows an image full size; Escape or Close ends it.
export function openViewer(url, name) {
  const viewer = $('viewer');
  $('viewer-img').src = url;
  $('viewer-img').alt = name;
  $('viewer-name').textContent = name;
  if (!viewer.open) viewer.showModal();
  $('viewer-close').focus();
}

// wireFiles connects the attach button, the file input, drops on the room,
// pasted images, the preview's buttons and the viewer to files.
export function wireFiles(files) {
  $('attach').addEventListener('click', () => $('file-input').click());
  $('file-input').addEventListener('change', () => files.stage($('file-input').files[0]));
  $('file-send').addEventListener('click', () => files.send());
  $('file-cancel').addEventListener('click', () => {
    files.cancel();
    $('composer-input').focus();
  });
  const room = $('room');
  const hasFiles = (ev) => Array.from(ev.dataTransfer?.types ?? []).includes('Files');
  room.addEventListener('dragover', (ev) => {
    if (!hasFiles(ev)) return;
    ev.preventDefault(); // Even where files are off: a drop must not open the file in place of the room.
    room.classList.toggle('dropping', Boolean(files.limits));
  });
  room.addEventListener('dragleave', (ev) => {
    if (ev.target === room || !room.contains(ev.relatedTarget)) room.classList.remove('dropping');
  });
  room.addEventListener('drop', (ev) => {
    room.classList.remove('dropping');
    if (!hasFiles(ev)) return;
    ev.preventDefault();
    files.stage(ev.dataTransfer.files[0]);
  });
  document.addEventListener('paste', (ev) => {
    const file = ev.clipboardData?.files?.[0];
    if (!file || room.hidden) return;
    ev.preventDefault();
    files.stage(file);
  });
  $('viewer-close').addEventListener('click', () => $('viewer').close());
  $('viewer').addEventListener('close', () => $('viewer-img').removeAttribute('src'));
  $('viewer').addEventListener('click', (ev) => {
    if (ev.target === $('viewer')) $('viewer').close(); // a click beside the image
  });
}
