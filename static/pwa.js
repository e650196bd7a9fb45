// pwa.js makes Hallway an installable app: it registers the service worker
// (sw.js), says so when the page opens without a network, and shows
// notifications through the worker where the page itself may not.

const container = 'serviceWorker' in navigator ? navigator.serviceWorker : null;

// registerWorker installs or updates the worker for the whole site. A page
// without one works as before: only offline start and Android
// notifications are lost.
function registerWorker() {
  if (!container) return;
  container.register('/sw.js', { scope: '/' }).catch(() => {
    // Refused (private mode, a policy, an insecure page): nothing to do.
  });
}

// showOfflineNote shows, on the start and "join as" screens, that the
// network is gone; the room has its own banner for it.
function showOfflineNote() {
  let note = document.getElementById('offline-note');
  if (!note) {
    note = document.createElement('p');
    note.id = 'offline-note';
    note.className = 'offline-note';
    note.setAttribute('role', 'status');
    note.textContent = 'You are offline. Hallway connects again when the network is back.';
    document.body.prepend(note);
  }
  note.hidden = navigator.onLine !== false;
}

// showViaWorker shows a notification from the service worker, as Chrome
// on Android requires. It resolves to whether one was shown.
export async function showViaWorker(title, options) {
  if (!container) return false;
  try {
    const reg = await container.ready;
    await reg.showNotification(title, { ...options, data: { path: location.pathname } });
    return true;
  } catch {
    return false;
  }
}

registerWorker();
showOfflineNote();
addEventListener('offline', showOfflineNote);
addEventListener('online', showOfflineNote);
