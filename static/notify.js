// notify.js is opt-in desktop notifications: the browser's permission is
// asked only when the person ticks the box, the choice is remembered in this
// browser, and a notification shows the message text only when a second
// box says so. It also finds @mentions of a name.

import { showViaWorker } from './pwa.js';

// enabledKey and textKey are where the two choices are remembered.
const enabledKey = 'hallway.notify';
const textKey = 'hallway.notifyText';

function load(key) {
  try {
    return localStorage.getItem(key) === '1';
  } catch {
    return false;
  }
}

function save(key, on) {
  try {
    localStorage.setItem(key, on ? '1' : '0');
  } catch {
    // Storage can be off (private mode); the choice then lasts for this visit.
  }
}

// supported reports whether this browser can show notifications at all.
export function supported() {
  return typeof Notification === 'function';
}

// mentions reports whether text names me as @me, ignoring case; the name
// must end there (not @alicea for alice). Only syntax characters are
// escaped: under the u flag an escaped hyphen is itself a syntax error.
export function mentions(text, me) {
  if (!me) return false;
  const escaped = me.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  return new RegExp(`(^|[^\\p{L}\\p{N}_])@${escaped}(?![\\p{L}\\p{N}_])`, 'iu').test(text);
}

// Notifier holds the two choices and shows notifications.
export class Notifier {
  constructor() {
    this.enabled = load(enabledKey) && supported() && Notification.permission === 'granted';
    this.showText = load(textKey);
  }

  // enable asks for the permission (it must run from a click) and returns
  // "on", "denied" or "unsupported".
  async enable() {
    if (!supported()) return 'unsupported';
    let permission = Notification.permission;
    if (permission === 'default') permission = await Notification.requestPermission();
    this.enabled = permission === 'granted';
    save(enabledKey, this.enabled);
    return this.enabled ? 'on' : 'denied';
  }

  disable() {
    this.enabled = false;
    save(enabledKey, false);
  }

  setShowText(on) {
    this.showText = on;
    save(textKey, on);
  }

  // message notifies of a message while the tab is hidden, or always when
  // it mentions me. readable is false for text the page could not open
  // (an encrypted message without its key), which is never shown.
  message({ author, text, mention, readable, room }) {
    if (!this.enabled || Notification.permission !== 'granted') return;
    if (!document.hidden && !mention) return;
    const title = mention ? `${author} mentioned you` : `New message from ${author}`;
    const body = this.showText && readable ? text : 'Open Hallway to read it.';
    try {
      const n = new Notification(title, { body, tag: `hallway-${room}` });
      n.onclick = () => {
        window.focus();
        n.close();
      };
    } catch {
      // Chrome on Android allows notifications only from a service worker.
      showViaWorker(title, { body, tag: `hallway-${room}` });
    }
  }
}
