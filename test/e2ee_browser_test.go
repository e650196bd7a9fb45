//go:build linux

package test

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// End-to-end encrypted rooms in a real browser: what two people see, and
// that neither the text nor the key ever leaves the page in the clear.

// wireTap records what one tab puts on the network, as Chromium reports it
// over CDP: every WebSocket frame both ways, and every request.
type wireTap struct {
	mu       sync.Mutex
	frames   []string
	requests []string
}

// tapWire starts recording u's traffic; call it before u opens a page.
func tapWire(u *browserUser) *wireTap {
	u.t.Helper()
	w := &wireTap{}
	err := chromedp.Listen(u.ctx, func(ev any) {
		w.mu.Lock()
		defer w.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventWebSocketFrameSent:
			w.frames = append(w.frames, "sent "+string(e.Response.PayloadData))
		case *network.EventWebSocketFrameReceived:
			w.frames = append(w.frames, "received "+string(e.Response.PayloadData))
		case *network.EventWebSocketCreated:
			w.requests = append(w.requests, "websocket "+e.URL)
		case *network.EventWebSocketWillSendHandshakeRequest:
			w.requests = append(w.requests, fmt.Sprintf("handshake %v", e.Request.Headers))
		case *network.EventRequestWillBeSent:
			// URL has no fragment: Chromium reports that apart, as URLFragment, because it is never sent.
			line := fmt.Sprintf("%s %s %v", e.Request.Method, e.Request.URL, e.Request.Headers)
			for _, p := range e.Request.PostDataEntries {
				line += " " + string(p.Bytes)
			}
			w.requests = append(w.requests, line)
		}
	})
	if err != nil {
		u.t.Fatalf("%s: listen to the network: %v", u.name, err)
	}
	return w
}

// snapshot returns copies of what was recorded.
func (w *wireTap) snapshot() (frames, requests []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.frames...), append([]string(nil), w.requests...)
}

// checkSentNoChat requires that u's page, tapped by w, sent no chat frame
// and nothing holding the text "leak?" that forceSend tried. The page seals
// and sends within a few milliseconds of a submit, so a second of nothing
// but pings is a fair wait.
func (u *browserUser) checkSentNoChat(w *wireTap) {
	u.t.Helper()
	time.Sleep(time.Second)
	frames, _ := w.snapshot()
	received := 0
	for _, f := range frames {
		if strings.HasPrefix(f, "received ") {
			received++
		} else if strings.Contains(f, `"chatMessage"`) || strings.Contains(f, "leak?") {
			u.t.Errorf("%s: the page sent %.200q", u.name, f)
		}
	}
	if received == 0 {
		u.t.Fatalf("%s: no frame recorded at all: the tap saw nothing", u.name)
	}
}

// canary returns a random marker that cannot appear anywhere by chance.
func canary(label string) string {
	return label + "-" + hex.EncodeToString(randomBytes(8))
}

// waitSealed waits until u's room is connected and ready to encrypt: the
// header says so and the composer is enabled.
func (u *browserUser) waitSealed() {
	u.t.Helper()
	u.waitJoined()
	u.waitFor("the room to be end-to-end encrypted and ready", `() =>
		!document.getElementById('e2ee-badge').hidden &&
		document.getElementById('e2ee-badge').textContent.includes('End-to-end encrypted') &&
		!document.getElementById('composer-input').disabled &&
		document.getElementById('e2ee-words').textContent !== ''`)
}

// roomKey returns the key u's page holds for its room: what Copy link
// puts after "#k=".
func (u *browserUser) roomKey() string {
	u.t.Helper()
	key := browserEval[string](u, `(history.state && history.state.key) || ''`)
	if len(key) != 43 {
		u.t.Fatalf("%s: the page holds key %q, want 43 base64url characters", u.name, key)
	}
	return key
}

// waitLocked waits for the alert that says why u's page can neither read
// nor write, and checks that the composer is disabled.
func (u *browserUser) waitLocked(why string) {
	u.t.Helper()
	u.waitFor("the alert "+why, `(why) => {
		const alert = document.getElementById('e2ee-alert');
		return !alert.hidden && alert.textContent.includes(why) && document.getElementById('composer-input').disabled;
	}`, why)
}

// waitLockedMessage waits for a message from author that shows text instead
// of what it holds.
func (u *browserUser) waitLockedMessage(author, text string) {
	u.t.Helper()
	u.waitFor(fmt.Sprintf("a message from %s shown as %q", author, text), `(author, text) =>
		[...document.querySelectorAll('#message-list .msg.sealed-locked')].some((li) =>
			li.dataset.author === author && li.querySelector('.text').textContent === text)`, author, text)
}

// forceSend fills the composer, disabled or not, and submits it.
func forceSend(text string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.getElementById('composer-input').value = %q;
		document.getElementById('composer').requestSubmit()`, text))
}

func TestBrowserEncryptedRoomKeepsTextAndKeyFromTheServer(t *testing.T) {
	es := startE2EServer(t, nil)
	b := startBrowser(t)
	alice := newBrowserUser(t, b, "alice")
	bob := newBrowserUser(t, b, "bob")
	taps := []*wireTap{tapWire(alice), tapWire(bob)}

	alice.open(es.URL + "/")
	alice.do("wait for the start screen", chromedp.WaitVisible(chromedp.ID("home-e2ee")))
	if !browserEval[bool](alice, `document.getElementById('home-e2ee').checked && !document.getElementById('home-e2ee').disabled`) {
		t.Fatal("end-to-end encryption is not the default on a page that can do it")
	}
	alice.sealed = true
	code := alice.createRoomFromStart(es.URL, "Alice", "create-room")
	alice.waitSealed()
	alice.waitSystem("End-to-end encrypted room")
	key := alice.roomKey()

	// The address bar holds the same working link as Copy link, key
	// included, and Bob opens exactly what Alice's address bar shows.
	link := alice.copyLink(es.URL)
	if want := es.URL + "/r/" + code + "#k=" + key; link != want {
		t.Fatalf("copied link %q, want %q", link, want)
	}
	bar := browserEval[string](alice, `location.href`)
	if bar != link {
		t.Fatalf("alice's address bar shows %q, want the copied link %q", bar, link)
	}
	bob.joinFromLink(bar, "Bob")
	bob.waitSealed()
	if got := browserEval[string](bob, `location.href`); got != link {
		t.Errorf("bob's address bar shows %q, want %q", got, link)
	}
	aliceWords := browserEval[string](alice, `document.getElementById('e2ee-words').textContent`)
	if bobWords := browserEval[string](bob, `document.getElementById('e2ee-words').textContent`); len(strings.Split(aliceWords, " · ")) != 6 || aliceWords != bobWords {
		t.Errorf("safety words: alice %q, bob %q, want the same six", aliceWords, bobWords)
	}

	fromAlice, fromBob := canary("alice"), canary("bob")
	alice.say(fromAlice)
	bob.waitMessage("Alice", fromAlice)
	alice.waitMessage("Alice", fromAlice)
	bob.say(fromBob)
	alice.waitMessage("Bob", fromBob)
	bob.waitMessage("Bob", fromBob)

	// A reload keeps the whole link in the address bar, and the room readable.
	alice.reload()
	alice.waitJoined()
	alice.waitMessage("Bob", fromBob)
	if got := browserEval[string](alice, `location.href`); got != link {
		t.Errorf("after a reload alice's address bar shows %q, want %q", got, link)
	}

	// The explanation is one click away, limits included.
	bob.do("open the explanation", chromedp.Click(chromedp.ID("e2ee-badge")))
	bob.waitFor("the explanation", `() => !document.getElementById('e2ee-info').hidden &&
		document.getElementById('e2ee-info').textContent.includes('What it does not protect')`)

	// Bob leaves, so that the server has a connection's end to log.
	bob.do("leave", chromedp.Click(chromedp.ID("leave")))
	alice.waitSystem("Bob left")

	secrets := []string{fromAlice, fromBob, key}
	sealed := 0
	for i, tap := range taps {
		frames, requests := tap.snapshot()
		for _, f := range frames {
			sealed += strings.Count(f, `"message":"e1.`)
			for _, s := range secrets {
				if strings.Contains(f, s) {
					t.Errorf("%s's WebSocket frame carries %q: %s", []string{"alice", "bob"}[i], s, f)
				}
			}
		}
		for _, r := range requests {
			for _, s := range secrets {
				if strings.Contains(r, s) {
					t.Errorf("%s's request carries %q: %s", []string{"alice", "bob"}[i], s, r)
				}
			}
		}
		if len(requests) < 3 {
			t.Errorf("recorded only %d requests: the tap is not working", len(requests))
		}
	}
	if sealed < 6 { // each message sent once and received twice
		t.Errorf("the recorded frames hold %d sealed messages, want at least 6: the tap is not working", sealed)
	}
	history := roomHistory(t, es, code)
	if len(history) != 2 || !strings.Contains(history[0], `"message":"e1.`) {
		t.Fatalf("the server remembers %q, want two sealed messages", history)
	}
	for _, place := range []struct{ name, text string }{
		{"the server's history", strings.Join(history, "\n")},
		{"the server's requests", es.requests.String()},
		{"the server's logs", es.logs.String()},
	} {
		if place.text == "" && place.name != "the server's history" {
			t.Errorf("%s are empty: nothing was checked", place.name)
		}
		for _, s := range secrets {
			if strings.Contains(place.text, s) {
				t.Errorf("%s hold %q", place.name, s)
			}
		}
	}
}

// createSealedRoom starts an encrypted room from the start screen as name
// and returns its code and whole link.
func (u *browserUser) createSealedRoom(baseURL, name string) (code, link string) {
	u.t.Helper()
	u.sealed = true
	code = u.createRoomFromStart(baseURL, name, "create-room")
	u.waitSealed()
	return code, baseURL + "/r/" + code + "#k=" + u.roomKey()
}

func TestBrowserEncryptedHistoryAndReconnect(t *testing.T) {
	es := startE2EServer(t, nil)
	b := startBrowser(t)
	alice := newBrowserUser(t, b, "alice")
	_, link := alice.createSealedRoom(es.URL, "Alice")
	said := []string{"first, sealed", "second, with a\nline break"}
	for _, m := range said {
		alice.do("say", chromedp.SetValue(chromedp.ID("composer-input"), m), chromedp.Focus(chromedp.ID("composer-input")), pressEnter)
		alice.waitMessage("Alice", m)
	}

	carol := newBrowserUser(t, b, "carol")
	carol.joinFromStart(es.URL, "Carol", link) // pasted whole, key included
	carol.waitSealed()
	carol.waitMessage("Alice", said[1])
	if got := carol.messages(); strings.Join(got, "|") != "Alice: "+said[0]+"|Alice: "+said[1] {
		t.Fatalf("carol's replay shows %q, want both messages decrypted in order", got)
	}

	es.dropConnections()
	for _, u := range []*browserUser{alice, carol} {
		u.waitFor("the lost connection to be shown", `() => __e2e.banners.some((b) => b.includes('Connection lost'))`)
		u.waitSystem("Reconnected as")
		u.waitSealed()
	}
	carol.say("after the drop")
	alice.waitMessage("Carol", "after the drop")
	carol.waitMessage("Carol", "after the drop")
	alice.say("still private")
	carol.waitMessage("Alice", "still private")
	want := "Alice: " + said[0] + "|Alice: " + said[1] + "|Carol: after the drop|Alice: still private"
	for _, u := range []*browserUser{alice, carol} {
		if got := u.messages(); strings.Join(got, "|") != want {
			t.Errorf("%s sees %q, want %q: the replay after the reconnect must not repeat anything", u.name, got, want)
		}
		if dropped := browserEval[int](u, `[...document.querySelectorAll('#message-list .sys')].filter((li) => li.textContent.includes('repeated')).length`); dropped != 0 {
			t.Errorf("%s: the reconnect's replay was taken for %d replayed messages", u.name, dropped)
		}
	}
}

func TestBrowserEncryptedRoomWithoutItsKey(t *testing.T) {
	es := startE2EServer(t, nil)
	b := startBrowser(t)
	alice := newBrowserUser(t, b, "alice")
	code, link := alice.createSealedRoom(es.URL, "Alice")
	alice.say("only for the key holders")
	alice.waitMessage("Alice", "only for the key holders")
	key := alice.roomKey()

	wrongKey := base64.RawURLEncoding.EncodeToString(randomBytes(32))
	for _, tc := range []struct {
		who, link, alert, message string
	}{
		{"nokey", es.URL + "/r/" + code, "This link is missing its key", "Encrypted message: this link has no key to read it."},
		{"wrongkey", es.URL + "/r/" + code + "#k=" + wrongKey, "This link’s key does not match this room", "Encrypted message: it could not be decrypted with this link’s key."},
		{"cutshort", link[:len(link)-5], "The key in this link is damaged", "Encrypted message: the key in this link is damaged."},
	} {
		u := newBrowserUser(t, b, tc.who)
		wire := tapWire(u)
		u.joinFromLink(tc.link, tc.who)
		u.waitLocked(tc.alert)
		u.waitLockedMessage("Alice", tc.message)
		u.screenshot("room-e2ee-" + tc.who + ".png")
		if got := browserEval[string](u, `location.href`); got != tc.link {
			t.Errorf("%s: address %q, want the link as opened, %q", tc.who, got, tc.link)
		}
		// Even a submit forced past the disabled composer sends nothing.
		u.do("try to write", forceSend("leak?"))
		u.checkSentNoChat(wire)
	}
	if h := roomHistory(t, es, code); len(h) != 1 {
		t.Fatalf("the room holds %d messages, want only Alice's: %q", len(h), h)
	}
	if strings.Contains(es.requests.String(), key) {
		t.Fatal("the key reached the server")
	}
}

func TestBrowserEncryptedRoomInAnInsecureContext(t *testing.T) {
	es := startE2EServer(t, nil)
	// hallway.test is not localhost, so over plain http the page is not a
	// secure context and has no WebCrypto, as on a LAN address.
	b := startBrowser(t, chromedp.Flag("host-resolver-rules", "MAP hallway.test 127.0.0.1"))
	alice := newBrowserUser(t, b, "alice")
	code, _ := alice.createSealedRoom(es.URL, "Alice")
	alice.say("sealed in a secure page")
	alice.waitMessage("Alice", "sealed in a secure page")
	key := alice.roomKey()

	u, err := url.Parse(es.URL)
	if err != nil {
		t.Fatal(err)
	}
	insecure := "http://hallway.test:" + u.Port()
	lan := newBrowserUser(t, b, "lan")
	lanWire := tapWire(lan)
	lan.open(insecure + "/")
	lan.do("wait for the start screen", chromedp.WaitVisible(chromedp.ID("home-e2ee")))
	if got := browserEval[map[string]any](lan, `({ secure: window.isSecureContext, subtle: Boolean(crypto.subtle),
		checked: document.getElementById('home-e2ee').checked, disabled: document.getElementById('home-e2ee').disabled,
		hint: document.getElementById('home-e2ee-hint').textContent })`); got["secure"] != false || got["subtle"] != false ||
		got["checked"] != false || got["disabled"] != true || !strings.Contains(got["hint"].(string), "needs a secure page") {
		t.Fatalf("start screen in an insecure context: %v, want encryption off and explained", got)
	}
	lan.joinFromLink(insecure+"/r/"+code+"#k="+key, "Lan")
	lan.waitLocked("Encryption is unavailable on this page")
	lan.waitLockedMessage("Alice", "Encrypted message: this page cannot decrypt anything (not a secure context).")
	lan.do("try to write", forceSend("leak?"))
	lan.checkSentNoChat(lanWire)
	if h := roomHistory(t, es, code); len(h) != 1 {
		t.Fatalf("the room holds %d messages, want only Alice's: %q", len(h), h)
	}
}

// sealAsAnyone seals text as name with the room secret, following the format
// docs/e2ee.md documents, in Go: what any holder of the link could send.
func sealAsAnyone(t *testing.T, secret, room, name, text string) string {
	t.Helper()
	return sealAsAnyoneAt(t, secret, room, name, text, time.Now())
}

// sealAsAnyoneAt is sealAsAnyone with the sealed time when.
func sealAsAnyoneAt(t *testing.T, secret, room, name, text string, when time.Time) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(secret)
	if err != nil {
		t.Fatal(err)
	}
	key, err := hkdf.Key(sha256.New, raw, []byte("hallway e1"), "message key\n"+room, 32)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	inner, _ := json.Marshal(map[string]any{
		"n": name, "i": base64.RawURLEncoding.EncodeToString(randomBytes(16)), "t": when.UnixMilli(), "m": text,
	})
	iv := randomBytes(gcm.NonceSize())
	return sealedPrefix + base64.RawURLEncoding.EncodeToString(gcm.Seal(iv, iv, inner, nil))
}

func TestBrowserEncryptedRoomFlagsWhatItCannotVouchFor(t *testing.T) {
	es := startE2EServer(t, nil)
	b := startBrowser(t)
	alice := newBrowserUser(t, b, "alice")
	code, _ := alice.createSealedRoom(es.URL, "Alice")
	key := alice.roomKey()

	// Mallory has the link too, and a client of her own.
	mallory := dialRoom(t, es, code, "Mallory")
	forged := sealAsAnyone(t, key, code, "Alice", "I am Alice, trust me")
	mallory.say(forged, "")
	alice.waitFor("the forged name to be flagged", `() => [...document.querySelectorAll('#message-list .msg.sealed-impostor')].some((li) =>
		li.dataset.author === 'Mallory' && li.querySelector('.text').textContent === 'I am Alice, trust me' &&
		li.querySelector('.seal-note').textContent.includes('Encrypted as “Alice”, but the server says Mallory sent it'))`)
	mallory.say(forged, "") // the same ciphertext again: a replay
	alice.waitSystem("A repeated encrypted message was dropped.")
	mallory.say(sealAsAnyone(t, key, code, "Mallory", "honest now"), "")
	alice.waitMessage("Mallory", "honest now")
	if got := alice.messages(); strings.Join(got, "|") != "Mallory: I am Alice, trust me|Mallory: honest now" {
		t.Errorf("alice sees %q, want the replay dropped", got)
	}
	if n := browserEval[int](alice, `document.querySelectorAll('#message-list .msg.sealed-impostor').length`); n != 1 {
		t.Errorf("%d messages flagged, want only the forged one", n)
	}

	// A room the server does not mark (it restarted, or was opened by
	// name): the page with a key still seals, and marks plain text.
	const plainRoom = "not-marked-by-the-server"
	alice.open(es.URL + "/r/" + plainRoom + "#k=" + key)
	alice.waitSealed()
	eve := dialRoom(t, es, plainRoom, "Eve")
	eve.say("hello in the clear", "")
	alice.waitFor("plain text to be marked", `() => [...document.querySelectorAll('#message-list .msg.sealed-plain')].some((li) =>
		li.querySelector('.text').textContent === 'hello in the clear' && li.querySelector('.seal-note').textContent.includes('Not encrypted'))`)
	alice.say("sealed all the same")
	alice.waitMessage("Alice", "sealed all the same")
	for {
		m := eve.nextMessage()
		if m.Username == "Alice" {
			if !strings.HasPrefix(m.Message, sealedPrefix) || strings.Contains(m.Message, "sealed all the same") {
				t.Fatalf("eve got %q from Alice, want it sealed", m.Message)
			}
			break
		}
	}
}

// sealedPair starts a browser in which Alice starts an encrypted room and
// Bob joins it from its whole link.
func sealedPair(t *testing.T, es *e2eServer) (alice, bob *browserUser) {
	t.Helper()
	b := startBrowser(t)
	alice = newBrowserUser(t, b, "alice")
	_, link := alice.createSealedRoom(es.URL, "Alice")
	bob = newBrowserUser(t, b, "bob")
	bob.joinFromLink(link, "Bob")
	bob.waitSealed()
	return alice, bob
}

func TestBrowserEncryptedRoomSurvivesARestartAndCountsUnread(t *testing.T) {
	es := startE2EServer(t, nil)
	alice, bob := sealedPair(t, es)
	alice.say("before the restart")
	bob.waitMessage("Alice", "before the restart")

	// The new server knows nothing of the room: it comes back as an
	// ordinary one, and the pages, which hold the key, keep sealing.
	es.restart()
	for _, u := range []*browserUser{alice, bob} {
		u.waitFor("a reconnect", `() => __e2e.statuses.some((s) => s.includes('Reconnecting')) &&
			document.getElementById('status').dataset.state === 'open'`)
		u.waitSealed()
	}
	browserEval[chromedp.Void](bob, `Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
		document.dispatchEvent(new Event('visibilitychange'))`)
	alice.say("after the restart")
	alice.say("still sealed?")
	bob.waitMessage("Alice", "still sealed?")
	bob.waitFor("the unread count in the title", `() => document.title === '(2) Hallway'`)
	for _, f := range roomHistory(t, es, browserEval[string](alice, `document.getElementById('room-code').textContent`)) {
		if !strings.Contains(f, `"message":"e1.`) || strings.Contains(f, "sealed?") {
			t.Errorf("after the restart the server holds %s, want sealed messages only", f)
		}
	}
	if got := bob.messages(); strings.Join(got, "|") != "Alice: before the restart|Alice: after the restart|Alice: still sealed?" {
		t.Errorf("bob sees %q", got)
	}
}

func TestBrowserEncryptedMessageFailsAndRetries(t *testing.T) { rateLimitedMessageFails(t, true) }

func TestBrowserEncryptedComposerCountsPlaintextRoom(t *testing.T) {
	es := startE2EServer(t, map[string]string{"MAX_MESSAGE_BYTES": "300"})
	b := startBrowser(t)
	alice := newBrowserUser(t, b, "alice")
	alice.createSealedRoom(es.URL, "Alice")
	// What is left is what still fits once sealed: fill the room exactly,
	// and the message goes through within the server's 300 bytes.
	room := browserEval[int](alice, `(async () => {
		const c = await import('/crypto.js');
		const seal = await c.openRoom(history.state.key, document.getElementById('room-code').textContent);
		return seal.plaintextRoom(300, 'Alice');
	})()`)
	if room < 100 || room > 200 {
		t.Fatalf("plaintext room %d of 300 wire bytes, want about 3/4 less the overhead", room)
	}
	full := strings.Repeat("x", room)
	alice.do("fill the room", chromedp.SetValue(chromedp.ID("composer-input"), full+"y"), chromedp.Focus(chromedp.ID("composer-input")),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('composer-input').dispatchEvent(new Event('input'))`))
	if c := browserEval[string](alice, `document.getElementById('counter').textContent`); c != "1 byte over the limit" {
		t.Errorf("one byte over the plaintext room, the counter says %q", c)
	}
	alice.do("send exactly the room", chromedp.SetValue(chromedp.ID("composer-input"), full), chromedp.Focus(chromedp.ID("composer-input")),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('composer-input').dispatchEvent(new Event('input'))`))
	if c := browserEval[string](alice, `document.getElementById('counter').textContent`); c != "0 bytes left" {
		t.Errorf("at the plaintext room, the counter says %q", c)
	}
	alice.do("send", pressEnter)
	alice.waitMessage("Alice", full)
}

// TestBrowserEncryptedScreenshots pictures an encrypted room with its
// explanation open, on a desktop and a phone; docs/screenshot-e2ee.png is
// a copy of the desktop one.
func TestBrowserEncryptedScreenshots(t *testing.T) {
	es := startE2EServer(t, nil)
	b := startBrowser(t)
	maya := newBrowserUser(t, b, "maya")
	maya.do("desktop size", chromedp.EmulateViewport(1280, 800), setColorScheme("light"))
	_, link := maya.createSealedRoom(es.URL, "Maya")
	jonas := newBrowserUser(t, b, "jonas")
	jonas.joinFromLink(link, "Jonas")
	jonas.waitSealed()
	for _, line := range []struct {
		who  *browserUser
		name string
		text string
	}{
		{jonas, "Jonas", "Here are the interview notes, as promised."},
		{maya, "Maya", "Thanks. The server only ever sees scrambled text, right?"},
		{jonas, "Jonas", "Right. Let's compare the safety words before we go on."},
	} {
		line.who.do("say", chromedp.SetValue(chromedp.ID("composer-input"), line.text), chromedp.Focus(chromedp.ID("composer-input")), pressEnter)
		maya.waitMessage(line.name, line.text)
	}
	maya.waitPeople("Jonas", "Maya")
	maya.do("open the explanation", chromedp.Click(chromedp.ID("e2ee-badge")))
	maya.waitFor("the explanation", `() => !document.getElementById('e2ee-info').hidden`)
	maya.screenshot("room-e2ee-desktop.png")
	maya.do("phone size", chromedp.EmulateViewport(360, 740, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch))
	maya.waitFor("the phone layout", `() => window.innerWidth === 360`)
	maya.do("close the explanation", chromedp.Click(chromedp.ID("e2ee-close")))
	maya.screenshot("room-e2ee-phone.png")
}
