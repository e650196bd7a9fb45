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
//   onFrame(type, payload)        every envelope, in order
//   onState({state, ...details})  state is "connecting", "open", "waiting" or "stopped"
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
    this.onOnline = () => {
      if (this.state === 'waiting') this.retryNow();
    };
    window.addEventListener('online', this.onOnline);
  }

  // start opens the first connection.
  start() {
    this.closedByUs = false;
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
    if (this.ws) this.ws.close(closeCode.normal, 'left the room');
    this.ws = null;
    this.setState({ state: 'stopped', code: 'left' });
  }

  // send writes one envelope; it returns false when the socket is not open.
  send(type, payload) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || !this.welcomed) return false;
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
    return `/ws/${encodeURIComponent(this.room)}?username=${encodeURIComponent(this.username)}`;
  }

  connect() {
    clearTimeout(this.timer);
    this.welcomed = false;
    this.setState({ state: 'connecting' });
    let opened = false;
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.onopen = () => {
      opened = true;
    };
    ws.onmessage = (ev) => {
      if (ws !== this.ws) return;
      for (const env of splitFrames(ev.data)) this.receive(env);
    };
    ws.onclose = (ev) => {
      if (ws !== this.ws || this.closedByUs) return;
      this.ws = null;
      this.welcomed = false;
      if (!opened) {
        this.diagnose();
      } else {
        this.closed(ev.code, ev.reason);
      }
    };
  }

  receive(env) {
    const payload = env.payload || {};
    if (env.type === 'welcome') {
      if (typeof payload.username === 'string' && payload.username) this.username = payload.username;
      this.welcomed = true;
      this.welcomedAt = Date.now();
      this.quietUntil = 0;
      this.setState({ state: 'open' });
    }
    this.onFrame(env.type, payload);
  }

  // closed decides what to do after an open connection ended.
  closed(code, reason) {
    if (this.welcomedAt && Date.now() - this.welcomedAt > stableMs) this.failures = 0;
    this.welcomedAt = 0;
    switch (code) {
      case closeCode.goingAway:
      case closeCode.roomMoved: {
        const [lo, hi] = restartDelayMs;
        this.quietUntil = Date.now() + restartQuietMs;
        this.wait(lo + Math.random() * (hi - lo), { reason });
        return;
      }
      case closeCode.policy:
      case closeCode.unsupported:
      case closeCode.tooBig:
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
