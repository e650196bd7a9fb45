//go:build !wasip1

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// People in a room, in a real browser: who is typing.

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
