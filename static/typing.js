// typing.js is the typing indicator of small rooms: the throttled signal
// this page sends while its person types, and the line that shows who else
// is typing. It knows nothing about the page beyond the element it fills.

// typingRepeatMs is the least time between two "started typing" frames:
// while someone keeps typing, the others hear of it at most this often.
export const typingRepeatMs = 3000;
// typingExpireMs is how long a typist is shown without news: twice the
// repeat, so one late frame does not make the line flicker.
export const typingExpireMs = 6000;

// TypingSignal sends typing frames for this page's person. send(active)
// returns false when nothing could be sent.
export class TypingSignal {
  constructor(send) {
    this.send = send;
    this.lastStart = 0;
    this.active = false;
  }

  // input is called with the composer's text after every change.
  input(text) {
    if (text.trim() === '') {
      this.stop();
      return;
    }
    const now = Date.now();
    if (now - this.lastStart < typingRepeatMs) return;
    if (this.send(true)) {
      this.lastStart = now;
      this.active = true;
    }
  }

  // stop says typing ended (a send, a cleared field), once per start. The
  // next start still waits for typingRepeatMs, so quick messages cost at
  // most two frames every three seconds.
  stop() {
    if (this.active) this.send(false);
    this.active = false;
  }
}

// TypingIndicator shows "Alice is typing…" or "Several people are typing…"
// in el, and forgets a typist after typingExpireMs without news.
export class TypingIndicator {
  constructor(el) {
    this.el = el;
    this.typists = new Map(); // name → time the news expires
    this.timer = 0;
  }

  // update records that name started (active) or stopped typing.
  update(name, active) {
    if (active) {
      this.typists.set(name, Date.now() + typingExpireMs);
    } else {
      this.typists.delete(name);
    }
    this.render();
  }

  // keep forgets everyone not in names (people who left).
  keep(names) {
    const here = new Set(names);
    for (const name of this.typists.keys()) if (!here.has(name)) this.typists.delete(name);
    this.render();
  }

  clear() {
    this.typists.clear();
    this.render();
  }

  render() {
    clearTimeout(this.timer);
    const now = Date.now();
    for (const [name, until] of this.typists) if (until <= now) this.typists.delete(name);
    const names = [...this.typists.keys()];
    const text = names.length === 0 ? ''
      : names.length === 1 ? `${names[0]} is typing…` : 'Several people are typing…';
    if (this.el.textContent !== text) this.el.textContent = text;
    if (names.length > 0) {
      const next = Math.min(...this.typists.values()) - now;
      this.timer = setTimeout(() => this.render(), Math.max(50, next));
    }
  }
}
