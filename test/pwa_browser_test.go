//go:build linux

package test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// The installable app in a real browser: the manifest, the service
// worker's copy of the app shell and what it never keeps, a start without
// a network, and notifications shown through the worker where the page's
// own Notification constructor throws, as on Chrome for Android.

// waitWorker waits until the service worker is active and controls u's
// page: before that, neither a notification through it nor an offline
// start can be relied on.
func (u *browserUser) waitWorker() {
	u.t.Helper()
	if state := browserEval[string](u, `navigator.serviceWorker.ready.then((r) => r.active ? 'active' : 'none')`); state != "active" {
		u.t.Fatalf("%s: the service worker is %s", u.name, state)
	}
	u.waitFor("the service worker to control the page", `() => navigator.serviceWorker.controller !== null`)
}

// shellCopy returns the names of the worker's caches and the paths kept in them.
func (u *browserUser) shellCopy() (caches, paths []string) {
	u.t.Helper()
	got := browserEval[map[string][]string](u, `(async () => {
		const names = await caches.keys();
		const paths = [];
		for (const n of names) {
			for (const r of await (await caches.open(n)).keys()) paths.push(new URL(r.url).pathname + new URL(r.url).search);
		}
		return { names, paths: paths.sort() };
	})()`)
	return got["names"], got["paths"]
}

// installability returns Chromium's reasons why u's page could not be
// installed, and the manifest's parse errors.
func (u *browserUser) installability() []string {
	u.t.Helper()
	var problems []string
	u.do("check installability", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		m, err := cdp.Call(ctx, t, page.GetAppManifest, page.GetAppManifestParams{})
		if err != nil {
			return err
		}
		for _, e := range m.Errors {
			problems = append(problems, "manifest: "+e.Message)
		}
		if m.URL == "" {
			problems = append(problems, "no manifest")
		}
		ie, err := cdp.Call(ctx, t, page.GetInstallabilityErrors, cdp.Empty{})
		if err != nil {
			return err
		}
		for _, e := range ie.InstallabilityErrors {
			// Each test user has a browser context of its own, which
			// Chromium treats as incognito, where nothing installs.
			if e.ErrorID != "in-incognito" {
				problems = append(problems, "installability: "+e.ErrorID)
			}
		}
		return nil
	}))
	return problems
}

func TestBrowserInstallableAppStartsOffline(t *testing.T) {
	es := startE2EServer(t, nil)
	b := startBrowser(t)
	maya := newBrowserUser(t, b, "maya")
	tap := tapWire(maya)
	code := maya.createRoomFromStart(es.URL, "Maya", "create-room")
	maya.waitWorker()
	if p := maya.installability(); len(p) != 0 {
		t.Errorf("the app cannot be installed: %q", p)
	}
	icons := browserEval[[]string](maya, `(async () => {
		const m = await (await fetch('/manifest.webmanifest')).json();
		const out = [m.name, m.start_url, m.display, m.theme_color ? 'theme' : 'no theme'];
		for (const i of m.icons) {
			const img = new Image();
			img.src = i.src;
			await img.decode();
			out.push(i.purpose + ' ' + i.type + ' ' + i.sizes + ' ' + img.naturalWidth + 'x' + img.naturalHeight);
		}
		return out;
	})()`)
	want := []string{"Hallway", "/", "standalone", "theme", "any image/png 192x192 192x192", "any image/png 512x512 512x512", "maskable image/png 512x512 512x512"}
	if !slices.Equal(icons, want) {
		t.Errorf("manifest says %q, want %q", icons, want)
	}

	// The room is used: a message, the API, a room page. The copy still holds
	// the app shell and nothing else, under this build's name.
	maya.say("kept only in memory")
	maya.waitMessage("Maya", "kept only in memory")
	maya.reload()
	maya.waitMessage("Maya", "kept only in memory")
	names, paths := maya.shellCopy()
	served := get(t, es.URL+"/sw-build.js")
	build := string(regexp.MustCompile(`hallwayBuild = "([0-9a-f]{16})"`).FindSubmatch(served)[1])
	if len(names) != 1 || names[0] != "hallway-shell-"+build {
		t.Errorf("caches %q, want one named for build %s", names, build)
	}
	var shell []string
	if err := json.Unmarshal(regexp.MustCompile(`hallwayShell = (\[.*\]);`).FindSubmatch(served)[1], &shell); err != nil {
		t.Fatal(err)
	}
	slices.Sort(shell)
	if !slices.Equal(paths, shell) || !slices.Contains(paths, "/") || !slices.Contains(paths, "/app.js") {
		t.Errorf("the worker keeps %q, want the app shell %q", paths, shell)
	}
	for _, p := range paths {
		if strings.HasPrefix(p, "/ws/") || strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/r/") || strings.Contains(p, code) {
			t.Errorf("the worker keeps %s", p)
		}
	}

	// The server and the network are gone; the installed app opens anyway
	// and says it is offline, in the room and on the start screen.
	es.stop()
	maya.setOffline(true)
	maya.open(es.URL + "/r/" + code)
	maya.waitFor("the room to say it is offline", `() => !document.getElementById('room').hidden &&
		document.getElementById('status').dataset.state === 'offline' &&
		!document.getElementById('banner').hidden && document.getElementById('banner-text').textContent.includes('You are offline')`)
	maya.screenshot("app-offline-room.png")
	maya.open(es.URL + "/")
	maya.waitFor("the start screen to say it is offline", `() => !document.getElementById('home').hidden &&
		document.getElementById('offline-note') && !document.getElementById('offline-note').hidden &&
		document.getElementById('offline-note').textContent.includes('You are offline')`)

	_, requests := tap.snapshot()
	for _, r := range requests {
		if f := strings.Fields(r); len(f) > 1 && strings.Contains(f[1], "://") && !strings.HasPrefix(f[1], es.URL) && !strings.HasPrefix(f[1], strings.Replace(es.URL, "http", "ws", 1)) {
			t.Errorf("a request left the origin: %.200s", r)
		}
	}
}

// androidNotifications makes the page's Notification constructor throw, as
// Chrome on Android's does, and counts the attempts.
const androidNotifications = `
window.__thrown = 0;
if (window.Notification) {
  const Real = window.Notification;
  window.Notification = class {
    constructor() {
      window.__thrown++;
      throw new TypeError("Failed to construct 'Notification': Illegal constructor. Use ServiceWorkerRegistration.showNotification() instead.");
    }
    static get permission() { return Real.permission; }
    static requestPermission(...args) { return Real.requestPermission(...args); }
  };
}`

// workerNotes returns "title / body / tag" of every notification the
// service worker shows.
func (u *browserUser) workerNotes() []string {
	u.t.Helper()
	return browserEval[[]string](u, `navigator.serviceWorker.ready.then((r) => r.getNotifications())
		.then((ns) => ns.map((n) => n.title + ' / ' + n.body + ' / ' + n.tag))`)
}

func TestBrowserNotificationThroughWorker(t *testing.T) { notificationThroughWorker(t, false) }

func TestBrowserEncryptedNotificationThroughWorker(t *testing.T) { notificationThroughWorker(t, true) }

// notificationThroughWorker: Bob's page cannot construct a Notification;
// once he opted in, a message in a hidden tab and a mention still reach him
// through the service worker, with the same words as on a desktop.
func notificationThroughWorker(t *testing.T, sealed bool) {
	es := startE2EServer(t, nil)
	b := startBrowser(t)
	alice := newBrowserUser(t, b, "alice")
	alice.sealed = sealed
	code := alice.createRoomFromStart(es.URL, "Alice", "create-room")
	link := alice.copyLink(es.URL)
	bob := newBrowserUser(t, b, "bob")
	if _, err := chromedp.CallBrowser(bob.ctx, browser.SetPermission, browser.SetPermissionParams{
		Permission: &browser.PermissionDescriptor{Name: "notifications"}, Setting: browser.PermissionSettingGranted,
		Origin: es.URL, BrowserContextID: chromedp.FromContext(bob.ctx).BrowserContextID,
	}); err != nil {
		t.Fatalf("grant notifications: %v", err)
	}
	if _, err := chromedp.Call(bob.ctx, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: androidNotifications}); err != nil {
		t.Fatalf("make the constructor throw: %v", err)
	}
	bob.joinFromLink(link, "Bob")
	if sealed {
		bob.waitSealed()
	}
	bob.waitWorker()
	bob.do("opt in", chromedp.Click(chromedp.ID("notify-on")))
	bob.waitFor("notifications on", `() => document.getElementById('notify-on').checked`)

	bob.setHidden(true)
	alice.say("the secret plans")
	bob.waitMessage("Alice", "the secret plans")
	bob.waitFor("a notification through the worker", `() => navigator.serviceWorker.ready
		.then((r) => r.getNotifications()).then((ns) => ns.length === 1)`)
	tag := "hallway-" + code
	if got := bob.workerNotes(); len(got) != 1 || got[0] != "New message from Alice / Open Hallway to read it. / "+tag {
		t.Errorf("the worker showed %q, want the author and no text", got)
	}
	if n := browserEval[int](bob, `window.__thrown`); n != 1 {
		t.Errorf("the page tried the constructor %d times, want 1", n)
	}

	bob.setHidden(false)
	alice.say("hey @Bob, look")
	bob.waitMessage("Alice", "hey @Bob, look")
	// One tag per room: the mention replaces the first notification.
	bob.waitFor("the mention through the worker", `() => navigator.serviceWorker.ready
		.then((r) => r.getNotifications()).then((ns) => ns.some((n) => n.title === 'Alice mentioned you'))`)
	if got := bob.workerNotes(); len(got) != 1 || got[0] != fmt.Sprintf("Alice mentioned you / Open Hallway to read it. / %s", tag) {
		t.Errorf("the worker showed %q for a mention", got)
	}
}
