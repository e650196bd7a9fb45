//go:build linux

package test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// People in a room, in a real browser: who is typing, and notifications.

// typingRepeat mirrors typingRepeatMs in static/typing.js.
const typingRepeat = 3 * time.Second

// typingLine is the typing indicator's text.
const typingLine = `document.getElementById('typing').textContent`

func TestBrowserTypingIndicator(t *testing.T) {
	es := startE2EServer(t, nil)
	b := startBrowser(t)
	alice := newBrowserUser(t, b, "alice")
	wire := tapWire(alice)
	code := alice.createRoomFromStart(es.URL, "Alice", "create-room")
	bob := newBrowserUser(t, b, "bob")
	bob.joinFromLink(es.URL+"/r/"+code, "Bob")
	alice.waitPeople("Alice", "Bob")

	// Typing for longer than the throttle, a key at a time.
	start := time.Now()
	for _, ch := range "hello there" {
		alice.do("type a key", chromedp.SendKeys(chromedp.CSS("#composer-input"), string(ch)))
		time.Sleep(300 * time.Millisecond)
	}
	elapsed := time.Since(start)
	bob.waitFor("Alice is typing", `() => `+typingLine+` === 'Alice is typing…'`)
	if got := browserEval[string](alice, typingLine); got != "" {
		t.Errorf("alice sees %q about herself, want nothing", got)
	}
	bob.screenshot("typing.png")
	alice.do("send", pressEnter)
	bob.waitMessage("Alice", "hello there")
	bob.waitFor("the typing line to clear on send", `() => `+typingLine+` === ''`)
	starts := countFrames(wire, `sent {"type":"typing","payload":{"active":true}}`)
	stops := countFrames(wire, `sent {"type":"typing","payload":{"active":false}}`)
	if most := int(elapsed/typingRepeat) + 1; starts < 1 || starts > most || stops != 1 {
		t.Errorf("typing for %v sent %d starts and %d stops, want 1 to %d starts and one stop", elapsed, starts, stops, most)
	}

	// Typing, then nothing: the line expires without news.
	time.Sleep(typingRepeat)
	alice.do("type again", chromedp.SendKeys(chromedp.CSS("#composer-input"), "x"))
	bob.waitFor("Alice typing again", `() => `+typingLine+` === 'Alice is typing…'`)
	bob.waitFor("the typing line to expire", `() => `+typingLine+` === ''`)

	carol := newBrowserUser(t, b, "carol")
	carol.joinFromLink(es.URL+"/r/"+code, "Carol")
	bob.waitPeople("Alice", "Bob", "Carol")
	alice.do("type more", chromedp.SendKeys(chromedp.CSS("#composer-input"), "y"))
	carol.do("type", chromedp.SendKeys(chromedp.CSS("#composer-input"), "z"))
	bob.waitFor("several typing", `() => `+typingLine+` === 'Several people are typing…'`)
	// Clearing the field says stop at once.
	carol.do("clear", chromedp.SendKeys(chromedp.CSS("#composer-input"), "\b"))
	alice.do("clear", chromedp.SendKeys(chromedp.CSS("#composer-input"), "\b\b"))
	bob.waitFor("nobody typing", `() => `+typingLine+` === ''`)
	if strings.Contains(es.logs.String(), "typing") {
		t.Errorf("the server logged typing:\n%s", es.logs)
	}
}

// notificationRecorder records every notification the page shows, then lets
// the browser show it.
const notificationRecorder = `
window.__notes = [];
if (window.Notification) {
  const Real = window.Notification;
  window.Notification = class extends Real {
    constructor(title, options) {
      window.__notes.push({ title, body: (options && options.body) || '' });
      super(title, options);
    }
  };
}`

// allowNotifications grants u's pages on origin the notification
// permission, as a person's "Allow" would, and records what they show from
// the next page load on.
func (u *browserUser) allowNotifications(origin string) {
	u.t.Helper()
	if _, err := chromedp.CallBrowser(u.ctx, browser.SetPermission, browser.SetPermissionParams{
		Permission: &browser.PermissionDescriptor{Name: "notifications"}, Setting: browser.PermissionSettingGranted,
		Origin: origin, BrowserContextID: chromedp.FromContext(u.ctx).BrowserContextID,
	}); err != nil {
		u.t.Fatalf("grant notifications: %v", err)
	}
	if _, err := chromedp.Call(u.ctx, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: notificationRecorder}); err != nil {
		u.t.Fatalf("%s: add notification recorder: %v", u.name, err)
	}
}

// setHidden tells u's page it is hidden or visible: headless tabs are
// always visible.
func (u *browserUser) setHidden(hidden bool) {
	u.t.Helper()
	browserEval[chromedp.Void](u, fmt.Sprintf(`Object.defineProperty(document, 'hidden', { configurable: true, get: () => %t });
		document.dispatchEvent(new Event('visibilitychange'))`, hidden))
}

// notes returns "title / body" of every notification shown.
func (u *browserUser) notes() []string {
	u.t.Helper()
	return browserEval[[]string](u, `window.__notes.map((n) => n.title + ' / ' + n.body)`)
}

func TestBrowserNotifications(t *testing.T) { notifications(t, false) }

func TestBrowserEncryptedNotifications(t *testing.T) { notifications(t, true) }

func notifications(t *testing.T, sealed bool) {
	es := startE2EServer(t, nil)
	var alice, bob *browserUser
	if sealed {
		alice, bob = sealedPair(t, es)
	} else {
		alice, bob, _ = aliceAndBob(t, es)
	}
	bob.allowNotifications(es.URL)
	bob.reload()
	bob.waitJoined()
	// Permission granted, but not yet chosen: a hidden tab and a mention
	// still notify nothing.
	bob.setHidden(true)
	alice.say("before you chose, @Bob")
	bob.waitMessage("Alice", "before you chose, @Bob")
	if n := len(bob.notes()); n != 0 {
		t.Fatalf("bob got %d notifications before opting in", n)
	}
	bob.setHidden(false)
	bob.do("open the people panel and opt in", chromedp.Click(chromedp.ID("notify-on")))
	bob.waitFor("notifications on", `() => document.getElementById('notify-on').checked &&
		!document.getElementById('notify-text').disabled && localStorage.getItem('hallway.notify') === '1'`)

	bob.setHidden(true)
	alice.say("the secret plans")
	bob.waitMessage("Alice", "the secret plans")
	bob.waitFor("a notification", `() => window.__notes.length === 1`)
	if got := bob.notes(); got[0] != "New message from Alice / Open Hallway to read it." {
		t.Errorf("hidden tab notified %q, want the author and no text", got)
	}

	bob.setHidden(false)
	alice.say("seen in the tab")
	bob.waitMessage("Alice", "seen in the tab")
	alice.say("hey @BOB, look")
	bob.waitMessage("Alice", "hey @BOB, look")
	bob.waitFor("the mention notified", `() => window.__notes.length === 2`)
	if got := bob.notes(); got[1] != "Alice mentioned you / Open Hallway to read it." {
		t.Errorf("mention notified %q", got)
	}
	marked := browserEval[[]string](bob, `[...document.querySelectorAll('#message-list .msg.mention .text')].map((e) => e.textContent)`)
	if strings.Join(marked, "|") != "before you chose, @Bob|hey @BOB, look" {
		t.Errorf("highlighted as mentions: %q, want only the one naming @bob", marked)
	}

	bob.do("show text", chromedp.Click(chromedp.ID("notify-text")))
	bob.setHidden(true)
	alice.say("now with its text")
	bob.waitFor("a notification with text", `() => window.__notes.length === 3`)
	if got := bob.notes(); got[2] != "New message from Alice / now with its text" {
		t.Errorf("with text shown, notified %q", got)
	}

	bob.reload()
	bob.waitJoined()
	if !browserEval[bool](bob, `document.getElementById('notify-on').checked && document.getElementById('notify-text').checked`) {
		t.Error("the choices were not remembered across a reload")
	}
	// The replay holds a mention, which would notify even in a visible tab:
	// count only once the last replayed message is shown.
	bob.waitMessage("Alice", "hey @BOB, look")
	bob.waitMessage("Alice", "now with its text")
	if n := len(bob.notes()); n != 0 {
		t.Errorf("the history replayed after a reload notified %d times", n)
	}
}

func TestBrowserNamesWithEveryAllowedCharacter(t *testing.T) { namesWithEveryCharacter(t, false) }

func TestBrowserEncryptedNamesWithEveryAllowedCharacter(t *testing.T) {
	namesWithEveryCharacter(t, true)
}

// namesWithEveryCharacter chats between two people whose names use every
// kind of character the name field allows (letters, digits, spaces, hyphens,
// dots and underscores), mentioning each other: each sees every message, the
// mentions highlighted, and neither page reports an error.
func namesWithEveryCharacter(t *testing.T, sealed bool) {
	es := startE2EServer(t, nil)
	b := startBrowser(t)
	anne := newBrowserUser(t, b, "anne")
	anne.sealed = sealed
	code := anne.createRoomFromStart(es.URL, "Anne-Marie 2.0_x", "create-room")
	link := anne.copyLink(es.URL)
	if sealed && !strings.Contains(link, "#") {
		t.Fatalf("copied link %q has no key", link)
	}
	jean := newBrowserUser(t, b, "jean")
	jean.joinFromLink(link, "Jean-Luc")
	anne.waitPeople("Anne-Marie 2.0_x", "Jean-Luc")

	anne.say("Hello, @Jean-Luc.")
	jean.waitMessage("Anne-Marie 2.0_x", "Hello, @Jean-Luc.")
	jean.say("@Anne-Marie 2.0_x hi back")
	anne.waitMessage("Jean-Luc", "@Anne-Marie 2.0_x hi back")
	anne.say("no mention here")
	jean.waitMessage("Anne-Marie 2.0_x", "no mention here")

	for _, u := range []*browserUser{anne, jean} {
		marked := browserEval[[]string](u, `[...document.querySelectorAll('#message-list .msg.mention .text')].map((e) => e.textContent)`)
		want := map[*browserUser]string{anne: "@Anne-Marie 2.0_x hi back", jean: "Hello, @Jean-Luc."}[u]
		if len(marked) != 1 || marked[0] != want {
			t.Errorf("%s (room %s): highlighted as mentions %q, want only %q", u.name, code, marked, want)
		}
	}

	// Whatever else fails while a message is shown, the message shows and
	// the error is reported: here building any mention pattern throws.
	jean.do("break mention patterns", chromedp.Evaluate[chromedp.Void](`window.RegExp = new Proxy(RegExp, {
		construct(target, args) {
			if (String(args[0]).includes('@')) throw new SyntaxError('broken on purpose');
			return new target(...args);
		},
	})`))
	anne.say("@Jean-Luc still there?")
	jean.waitMessage("Anne-Marie 2.0_x", "@Jean-Luc still there?")
	jean.waitFor("the error reported", `() => __e2e.problems.some((p) => p.includes('broken on purpose'))`)
	jean.do("forget the expected error", chromedp.Evaluate[chromedp.Void](`__e2e.problems = []`))
}
