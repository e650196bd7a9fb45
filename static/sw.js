// sw.js is Hallway's service worker. It keeps a copy of the app shell (the
// page, its scripts, styles and icons) so that the installed app opened
// offline shows itself and says it is offline, and it shows notifications
// where a page may not (Chrome on Android).
//
// The shell is fetched from the network first and the copy is used only
// when the network fails, so an online page never runs an old shell
// against a new server. The copy is named after the build: a deploy changes
// /sw-build.js, the browser installs the new worker, and it drops the old
// copy. Nothing else is kept or even seen: WebSockets, /api/, room pages
// and files go straight to the network, and no request leaves this origin.

importScripts('/sw-build.js'); // self.hallwayBuild, self.hallwayShell

// cachePrefix names every copy this worker makes; cacheName is this build's.
const cachePrefix = 'hallway-shell-';
const cacheName = cachePrefix + self.hallwayBuild;
// shell lists the paths kept; "/" is the page itself.
const shell = new Set(self.hallwayShell);
// roomPage is the path of a room's page, which is the shell's "/" too.
const roomPage = /^\/r\/[^/]+\/?$/;

self.addEventListener('install', (ev) => {
  ev.waitUntil((async () => {
    const cache = await caches.open(cacheName);
    await cache.addAll([...shell].map((path) => new Request(path, { cache: 'reload' })));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (ev) => {
  ev.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith(cachePrefix) && name !== cacheName) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (ev) => {
  const req = ev.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin || url.search) return;
  const page = req.mode === 'navigate' && (url.pathname === '/' || roomPage.test(url.pathname));
  if (!page && !shell.has(url.pathname)) return; // The network's, untouched.
  ev.respondWith(networkFirst(req, page ? '/' : url.pathname));
});

// networkFirst answers from the network, or with the kept copy of path
// when the network fails.
async function networkFirst(req, path) {
  try {
    return await fetch(req);
  } catch (err) {
    const cache = await caches.open(cacheName);
    const copy = await cache.match(path);
    if (copy) return copy;
    throw err;
  }
}

// A click on a notification brings back the room's window, or opens the
// room when none is left.
self.addEventListener('notificationclick', (ev) => {
  ev.notification.close();
  const path = typeof ev.notification.data?.path === 'string' ? ev.notification.data.path : '/';
  ev.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    const same = windows.find((c) => new URL(c.url).pathname === path) || windows[0];
    if (same) return same.focus();
    return self.clients.openWindow(path);
  })());
});
