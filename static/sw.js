// sw.js exists because Chrome on Android shows notifications only from a
// service worker. The page registers it only when it cannot show one
// itself. It handles no requests and keeps nothing.

// A click on a notification brings its room's tab forward, or any tab.
self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const path = event.notification.data && event.notification.data.path;
  event.waitUntil((async () => {
    const tabs = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    const tab = tabs.find((c) => new URL(c.url).pathname === path) || tabs[0];
    if (tab) await tab.focus();
  })());
});
