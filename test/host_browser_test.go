//go:build linux

package test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// The host's controls in a real browser: lock, knock, remove, hand-over,
// and the move of everyone else to a fresh encrypted room.

// hostButton is the button labelled label in the host's row for person.
func hostButton(person, label string) chromedp.Action[chromedp.Void] {
	return chromedp.Click(chromedp.Search(`//ul[@id="host-people"]/li[span[@class="person" and text()="` + person +
		`"]]/button[text()="` + label + `"]`))
}

// waitBanner waits until u's banner says text.
func (u *browserUser) waitBanner(text string) {
	u.t.Helper()
	u.waitFor("the banner to say "+text, `(text) =>
		!document.getElementById('banner').hidden && document.getElementById('banner-text').textContent.includes(text)`, text)
}

// knockFromLink opens a room link as a person who has no name remembered
// yet and asks to join as name, without waiting to be in.
func (u *browserUser) knockFromLink(link, name string) {
	u.t.Helper()
	u.open(link)
	u.do("ask to join as "+name,
		chromedp.WaitVisible(chromedp.ID("gate-name")),
		chromedp.SendKeys(chromedp.ID("gate-name"), name),
		chromedp.Click(chromedp.CSS("#gate-form button[type=submit]")),
	)
}

// hostedTrio starts a room from the start screen as Alice, and Bob joins
// it from the link, all in one browser; carol is ready to act.
func hostedTrio(t *testing.T, es *e2eServer) (alice, bob, carol *browserUser, code string) {
	t.Helper()
	b := startBrowser(t)
	alice = newBrowserUser(t, b, "alice")
	code = alice.createRoomFromStart(es.URL, "Alice", "create-room")
	bob = newBrowserUser(t, b, "bob")
	bob.joinFromLink(es.URL+"/r/"+code, "Bob")
	return alice, bob, newBrowserUser(t, b, "carol"), code
}

// waitHost waits until u's page shows the host's controls.
func (u *browserUser) waitHost() {
	u.t.Helper()
	u.waitFor("the host's controls", `() => !document.getElementById('host-panel').hidden`)
}

func TestBrowserLockRefusesNewcomersAndLetsMembersBack(t *testing.T) {
	es := startE2EServer(t, nil)
	alice, bob, carol, code := hostedTrio(t, es)
	alice.waitHost()
	if browserEval[string](alice, `location.href`) != es.URL+"/r/"+code {
		t.Fatal("the host credential is in the address")
	}
	alice.do("lock the room", chromedp.Click(chromedp.ID("host-lock")))
	bob.waitSystem("Alice locked the room")

	carol.knockFromLink(es.URL+"/r/"+code, "Carol")
	carol.waitBanner("The room is locked")

	// The network drops: the members come back in with their rejoin
	// secrets, the host keeps her role, and the room still works.
	es.dropConnections()
	bob.waitSystem("Reconnected as Bob")
	alice.waitSystem("Reconnected as Alice")
	alice.waitHost()
	bob.say("still here")
	alice.waitMessage("Bob", "still here")
}

func TestBrowserKnockThenAdmitAndDeny(t *testing.T) {
	es := startE2EServer(t, nil)
	b := startBrowser(t)
	alice := newBrowserUser(t, b, "alice")
	code := alice.createRoomFromStart(es.URL, "Alice", "create-room")
	alice.waitHost()
	alice.do("turn knocking on", chromedp.Click(chromedp.ID("host-knock")))
	alice.waitSystem("Alice turned on knocking")
	alice.say("before anyone knocks")
	alice.waitMessage("Alice", "before anyone knocks")

	bob := newBrowserUser(t, b, "bob")
	bob.knockFromLink(es.URL+"/r/"+code, "Bob")
	bob.waitBanner("Waiting for the host to let you in")
	alice.waitFor("Bob's knock", `() => document.getElementById('knocks').textContent.includes('Bob wants to join')`)
	alice.screenshot("host-knock-prompt.png")
	// Bob, waiting, sees nothing of the room: no messages, no names, no count.
	if seen := browserEval[string](bob, `document.getElementById('message-list').textContent + '|' +
		document.getElementById('people-list').textContent + '|' + document.getElementById('people-count').textContent`); strings.Contains(seen, "Alice") ||
		strings.Contains(seen, "before anyone knocks") || !strings.HasSuffix(seen, "|0") {
		t.Fatalf("a knocker sees %q", seen)
	}
	alice.do("admit Bob", chromedp.Click(chromedp.Search(`//div[@class="knock"][p[text()="Bob wants to join"]]/button[text()="Admit"]`)))
	bob.waitJoined()
	bob.waitMessage("Alice", "before anyone knocks")
	alice.waitPeople("Alice", "Bob")

	carol := newBrowserUser(t, b, "carol")
	carol.knockFromLink(es.URL+"/r/"+code, "Carol")
	carol.waitBanner("Waiting for the host to let you in")
	alice.do("deny Carol", chromedp.Click(chromedp.Search(`//div[@class="knock"][p[text()="Carol wants to join"]]/button[text()="Deny"]`)))
	carol.waitBanner("You were not let in")
	alice.waitFor("the prompt to go", `() => document.getElementById('knocks').hidden`)
	bob.checkNoProblems()
}

func TestBrowserRemoveAndHandOver(t *testing.T) {
	es := startE2EServer(t, map[string]string{"HOST_GRACE": "300ms"})
	alice, bob, carol, code := hostedTrio(t, es)
	carol.joinFromLink(es.URL+"/r/"+code, "Carol")
	carol.waitJoined()
	alice.waitHost()
	alice.waitPeople("Alice", "Bob", "Carol")
	alice.do("remove Carol", hostButton("Carol", "Remove"))
	carol.waitBanner("You were removed from this room by the host")
	bob.waitSystem("Carol was removed.")
	alice.waitSystem("Knocking is on now, so Carol cannot come straight back.")
	carol.open(es.URL + "/r/" + code)
	carol.waitBanner("The host did not let you in")

	// The host leaves; after the grace, Bob, present longest, is the host.
	alice.do("leave", chromedp.Click(chromedp.ID("leave")))
	bob.waitSystem("Bob is now the host: the host left.")
	bob.waitHost()
	if cred := browserEval[string](bob, `(history.state && history.state.host) || ''`); len(cred) != 22 || strings.Contains(browserEval[string](bob, `location.href`), cred) {
		t.Fatalf("bob's page keeps credential %q, want 22 characters in history state and not in the address", cred)
	}
}

func TestBrowserRemoveMovesEveryoneElseToAFreshRoom(t *testing.T) {
	es := startE2EServer(t, nil)
	b := startBrowser(t)
	alice := newBrowserUser(t, b, "alice")
	oldCode, link := alice.createSealedRoom(es.URL, "Alice")
	oldKey := alice.roomKey()
	bob := newBrowserUser(t, b, "bob")
	bob.joinFromLink(link, "Bob")
	bob.waitSealed()
	carol := newBrowserUser(t, b, "carol")
	tap := tapWire(carol)
	carol.joinFromLink(link, "Carol")
	carol.waitSealed()
	alice.waitHost()
	alice.waitPeople("Alice", "Bob", "Carol")

	alice.do("remove Carol and move", hostButton("Carol", "Remove and move to a fresh room"))
	carol.waitBanner("You were removed from this room by the host")
	alice.waitFor("alice to be in a fresh room", `(old) => location.pathname !== '/r/' + old`, oldCode)
	alice.waitSealed()
	bob.waitFor("bob to follow", `(old) => location.pathname !== '/r/' + old`, oldCode)
	bob.waitSealed()
	bob.waitSystem("You moved to a fresh room with a new key")
	newCode := browserEval[string](bob, `document.getElementById('room-code').textContent`)
	newKey := bob.roomKey()
	if newCode == oldCode || newKey == oldKey || alice.roomKey() != newKey ||
		browserEval[string](alice, `document.getElementById('room-code').textContent`) != newCode {
		t.Fatalf("after the move: code %s key %s (old %s %s), alice's key %s", newCode, newKey, oldCode, oldKey, alice.roomKey())
	}
	alice.waitHost()
	alice.say("just us now")
	bob.waitMessage("Alice", "just us now")

	// Carol's browser never received the new room or its key.
	frames, requests := tap.snapshot()
	if len(frames) == 0 {
		t.Fatal("no frame recorded for carol: the tap saw nothing")
	}
	for _, f := range append(frames, requests...) {
		if strings.Contains(f, newCode) || strings.Contains(f, newKey) || strings.Contains(f, "moveRoom") {
			t.Fatalf("carol's browser saw %.300q", f)
		}
	}
}
