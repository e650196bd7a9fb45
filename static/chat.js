// chat.js is the connection to one room: it opens the WebSocket, splits
// batched frames, reconnects with backoff and jitter, and finds out why a
// handshake was refused. It knows nothing about the page.

// closeCode names the WebSocket close codes the server uses.
export const closeCode = Object.freeze({
  normal: 1000,
  goingAway: 1001, // "server restarting"
  unsupported: 1003, // a binary frame was sent
  policy: 1008, // too slow, too many bad messages
  tooBig: 1009,
  internal: 1011,
  roomMoved: 4307, // the room now lives on another machine: rejoin
  replaced: 4409, // a newer connection with this one's rejoin secret took its place
  denied: 4401, // the host did not let this knock in
  removed: 4403, // the host removed this member
});

// minBackoffMs is the first delay before a reconnect after a failure.
const minBackoffMs = 1000;
// maxBackoffMs caps the delay between reconnect attempts.
const maxBackoffMs = 30000;
// restartDelayMs is the quiet, short delay range after a 1001 close, spread
// so that a restarted server is not hit by every client at once.
const restartDelayMs = [250, 1250];
// busyDelayMs is the least delay after the server said it is full (503).
const busyDelayMs = 5000;
// stableMs is how long a connection must have lasted for the backoff to
// start again from 1 s; a server that accepts and then drops us at once keeps
// the delay growing.
const stableMs = 10000;
// restartQuietMs is how long after a 1001 close failed attempts stay quiet:
// a restarting server is briefly unreachable, and that is not news.
const restartQuietMs = 30000;
// heartbeatMs is how often an open connection sends a ping frame; the
// server answers each with a pong, so an idle room still hears something.
export const heartbeatMs = 15000;
// deadAfterMs is how long an open connection may go without receiving any
// frame before it is taken for dead and replaced: two heartbeats missed,
// and a few seconds for a slow network. Browsers cannot see WebSocket pings,
// and a half-open connection never reports its own death.
export const deadAfterMs = 35000;

// backoffDelay returns the delay before reconnect attempt n (0-based):
// exponential from 1 s to 30 s, each with "equal jitter" (half fixed, half random).
export function backoffDelay(n, random = Math.random) {
  const cap = Math.min(maxBackoffMs, minBackoffMs * 2 ** Math.min(n, 15));
  return Math.round(cap / 2 + (random() * cap) / 2);
}

// splitFrames parses one WebSocket text message into envelopes: with batch=1
// the server may put several JSON envelopes on separate lines.
export function splitFrames(data) {
  const frames = [];
  for (const line of String(data).split('\n')) {
    if (line.trim() === '') continue;
    try {
      const env = JSON.parse(line);
      if (env && typeof env.type === 'string') frames.push(env);
    } catch {
      // A line that is not JSON is ignored rather than breaking the room.
    }
  }
  return frames;
}

// RoomConnection keeps one room's WebSocket alive. Callbacks:
//   onFrame(type, payload, info)  every envelope, in order; a welcome's info
//                                 says {missing: true} when messages may be lost
//   onState({state, ...details})  state is "connecting", "open", "waiting",
//                                 "offline" (the browser says so) or "stopped"
// A "waiting" state carries {retryAt, quiet, reason}; "stopped" carries
// {code, text}: the server refused us or asked us to go away, so a person decides.
export class RoomConnection {
  constructor(room, username, { onFrame, onState }) {
    this.room = room;
    this.username = username; // replaced by the name the server gives us
    this.onFrame = onFrame;
    this.onState = onState;
    this.ws = null;
    this.timer = 0;
    this.failures = 0;
    this.closedByUs = false;
    this.state = 'idle';
    this.welcomed = false;
    this.welcomedAt = 0;
    this.quietUntil = 0;
    this.epoch = ''; // the room's incarnation, from the latest welcome
    this.lastId = 0; // the newest message id received in that epoch
    this.cleanClose = false; // the last connection ended with a restart's 1001
    this.lastHeard = 0;
    this.lastPing = 0;
    this.heartbeat = 0;
    this.onOnline = () => {
      if (this.state === 'waiting' || this.state === 'offline') this.retryNow();
    };
    this.onOffline = () => this.offline();
    window.addEventListener('online', this.onOnline);
    window.addEventListener('offline', this.onOffline);
  }

  // start opens the first connection.
  start() {
    this.closedByUs = false;
    if (navigator.onLine === false) {
      this.offline(); // Opened without a network: say so, and wait for it.
      return;
    }
    this.connect();
  }

  // retryNow skips the wait before the next attempt (or restarts after a stop).
  retryNow() {
    clearTimeout(this.timer);
    this.timer = 0;
    if (this.state === 'open' || this.state === 'connecting') return;
    this.connect();
  }

  // stop closes the connection for good: the person left the room.
  stop() {
    this.closedByUs = true;
    clearTimeout(this.timer);
    window.removeEventListener('online', this.onOnline);
    window.removeEventListener('offline', this.onOffline);
    clearInterval(this.heartbeat);
    if (this.ws) this.ws.close(closeCode.normal, 'left the room');
    this.ws = null;
    this.setState({ state: 'stopped', code: 'left' });
  }

  // send writes one envelope; it returns false when the socket is not open.
  send(type, payload) {
    // A knocker waiting to be let in sends only its heartbeat and a host's claim.
    const ready = this.welcomed || (this.knocking && (type === 'ping' || type === 'host'));
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || !ready) return false;
    this.ws.send(JSON.stringify({ type, payload }));
    return true;
  }

  // isOpen reports whether messages can be sent right now.
  isOpen() {
    return this.state === 'open';
  }

  setState(s) {
    this.state = s.state;
    this.onState(s);
  }

  url() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${location.host}${this.path()}&batch=1`;
  }

  path() {
    return `/ws/${encodeURIComponent(this.room)}?username=${encodeURIComponent(this.username)}${this.resumeQuery()}`;
  }

  // resumeQuery asks a reconnect to replay only what came after the newest
  // message received (a first join gets the whole history), and to take the
  // old connection's place if the server still holds it, so that a page
  // whose network died unnoticed comes back under its own name.
  resumeQuery() {
    const since = this.epoch ? `&since=${this.lastId}&epoch=${encodeURIComponent(this.epoch)}` : '';
    return this.rejoin ? `${since}&rejoin=${encodeURIComponent(this.rejoin)}` : since;
  }

  connect() {
    clearTimeout(this.timer);
    this.welcomed = false;
    this.knocking = false;
    this.setState({ state: 'connecting' });
    let opened = false;
    const ws = new WebSocket(this.url());
    this.ws = ws;
    this.startHeartbeat();
    ws.onopen = () => {
      opened = true;
    };
    ws.onmessage = (ev) => {
      if (ws !== this.ws) return;
      this.lastHeard = Date.now();
      for (const env of splitFrames(ev.data)) this.receive(env);
    };
    ws.onclose = (ev) => {
      if (ws !== this.ws || this.closedByUs) return;
      this.ws = null;
      this.welcomed = false;
      clearInterval(this.heartbeat);
      if (!opened) {
        this.diagnose();
      } else {
        this.closed(ev.code, ev.reason);
      }
    };
  }

  receive(env) {
    const payload = env.payload || {};
    let info;
    if (env.type === 'welcome') {
      if (typeof payload.username === 'string' && payload.username) this.username = payload.username;
      // Kept in memory only: a copy in another tab would take this one's place.
      this.rejoin = typeof payload.rejoin === 'string' ? payload.rejoin : '';
      info = { missing: this.resumed(payload) };
      this.welcomed = true;
      this.welcomedAt = Date.now();
      this.quietUntil = 0;
      this.setState({ state: 'open' });
    } else if ((env.type === 'chatMessage' || env.type === 'file') && Number.isSafeInteger(payload.id) && payload.id > this.lastId) {
      this.lastId = payload.id;
    } else if (env.type === 'knocking') {
      this.knocking = true; // a hosted room's waiting room: keep the heartbeat going
    } else if (env.type === 'pong') {
      return; // It has done its work by arriving.
    }
    this.onFrame(env.type, payload, info);
  }

  // resumed takes in a welcome's epoch and reports whether messages may be
  // missing since the last connection: the server says so (gap), or the room
  // is a new incarnation and the old one did not close cleanly, so it may
  // have said things this page never got.
  resumed(p) {
    const epoch = typeof p.epoch === 'string' ? p.epoch : '';
    const before = this.epoch;
    const missing = Boolean(before) && (p.gap === true || (epoch !== before && !this.cleanClose));
    if (epoch !== before) this.lastId = 0;
    this.epoch = epoch;
    this.cleanClose = false;
    return missing;
  }

  // startHeartbeat pings every heartbeatMs once welcomed, and replaces the
  // connection when nothing at all has arrived for deadAfterMs, including a
  // handshake that never finishes.
  startHeartbeat() {
    clearInterval(this.heartbeat);
    this.lastHeard = Date.now();
    this.lastPing = Date.now();
    this.heartbeat = setInterval(() => {
      const now = Date.now();
      if (now - this.lastHeard >= deadAfterMs) {
        this.abandon();
        this.wait(backoffDelay(this.failures++), { reason: 'no answer' });
      } else if (now - this.lastPing >= heartbeatMs) {
        this.lastPing = now;
        this.send('ping', {});
      }
    }, 1000);
  }

  // abandon drops the current socket without waiting for it: a dead network
  // would hold a closing handshake for minutes.
  abandon() {
    clearInterval(this.heartbeat);
    const ws = this.ws;
    this.ws = null;
    this.welcomed = false;
    if (this.welcomedAt && Date.now() - this.welcomedAt > stableMs) this.failures = 0;
    this.welcomedAt = 0;
    if (ws) ws.close(closeCode.normal, 'no answer');
  }

  // offline shows at once that the browser lost its network, and waits for
  // the online event instead of retrying into nothing.
  offline() {
    if (this.closedByUs || this.state === 'stopped') return;
    clearTimeout(this.timer);
    this.abandon();
    this.setState({ state: 'offline' });
  }

  // closed decides what to do after an open connection ended.
  closed(code, reason) {
    if (this.welcomedAt && Date.now() - this.welcomedAt > stableMs) this.failures = 0;
    this.welcomedAt = 0;
    switch (code) {
      case closeCode.goingAway:
      case closeCode.roomMoved: {
        // A restart flushes everything before it closes; a move does not.
        this.cleanClose = code === closeCode.goingAway;
        const [lo, hi] = restartDelayMs;
        this.quietUntil = Date.now() + restartQuietMs;
        this.wait(lo + Math.random() * (hi - lo), { reason });
        return;
      }
      case closeCode.policy:
      case closeCode.unsupported:
      case closeCode.tooBig:
      case closeCode.replaced:
      case closeCode.denied:
      case closeCode.removed:
        // The server cut us off on purpose; reconnecting in a loop would
        // only repeat it. Let the person decide.
        this.setState({ state: 'stopped', code: `close_${code}`, text: reason || '' });
        return;
      default:
        this.wait(backoffDelay(this.failures++), { reason });
    }
  }

  // diagnose asks the server why a handshake failed: a browser cannot read
  // the status of a refused WebSocket, but a plain GET gets the same answer.
  async diagnose() {
    let res;
    let body = {};
    try {
      res = await fetch(this.path(), { cache: 'no-store', credentials: 'omit' });
      body = await res.json().catch(() => ({}));
    } catch {
      this.wait(backoffDelay(this.failures++), { reason: 'network' });
      return;
    }
    if (this.closedByUs) return;
    const code = typeof body.code === 'string' ? body.code : '';
    const text = typeof body.text === 'string' ? body.text : '';
    if (res.status === 426 || code === 'upgrade_required' || (res.status >= 500 && res.status !== 503)) {
      // Nothing wrong with the request: the network or the server hiccupped.
      this.wait(backoffDelay(this.failures++), { reason: 'network' });
    } else if (code === 'shutting_down' || code === 'room_moving') {
      // Restarting or moving: come back after Retry-After, without alarming anyone.
      const after = Number(res.headers.get('Retry-After')) * 1000 || 0;
      this.quietUntil = Math.max(this.quietUntil, Date.now() + after + restartQuietMs);
      this.wait(Math.max(after, backoffDelay(this.failures++)), { reason: code });
    } else if (res.status === 503 || res.status === 429) {
      const after = Number(res.headers.get('Retry-After')) * 1000 || 0;
      const delay = Math.max(after, busyDelayMs, backoffDelay(this.failures++));
      this.wait(delay, { reason: code || 'busy', text });
    } else {
      this.setState({ state: 'stopped', code: code || `http_${res.status}`, text });
    }
  }

  // wait schedules the next attempt. The state is quiet while a restart is
  // expected, so the page need not alarm anyone.
  wait(ms, details) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), ms);
    const quiet = Date.now() < this.quietUntil;
    this.setState({ state: 'waiting', retryAt: Date.now() + ms, quiet, ...details });
  }
}
