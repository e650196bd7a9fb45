//go:build linux

package test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// Replies and reactions in a real browser: what people see, by keyboard
// and by mouse, in ordinary and encrypted rooms.

// msgSelector finds the confirmed message whose text as written is text.
const msgSelector = `(text) => [...document.querySelectorAll('#message-list .msg')]
	.find((li) => li.dataset.text === text && li.dataset.id && !li.classList.contains('pending'))`

// pressButtonKey presses Enter with its keypress, which activates a button.
var pressButtonKey = chromedp.KeyEvent("\r")

// pressOn focuses the control sel inside the message holding text and
// presses Enter, as a keyboard user does.
func (u *browserUser) pressOn(text, sel string) {
	u.t.Helper()
	u.waitFor(fmt.Sprintf("%s on %q", sel, text), `(text, sel) => (`+msgSelector+`)(text)?.querySelector(sel)`, text, sel)
	browserEval[chromedp.Void](u, fmt.Sprintf(`(%s)(%q).querySelector(%q).focus()`, msgSelector, text, sel))
	u.do("press Enter on "+sel, pressButtonKey)
}

// replyTo answers the message holding text by keyboard alone: its Reply
// control, then the composer, which the reply bar focuses.
func (u *browserUser) replyTo(text, answer string) {
	u.t.Helper()
	u.pressOn(text, ".reply-open")
	u.waitFor("the reply bar", `() => !document.getElementById('reply-bar').hidden &&
		document.activeElement === document.getElementById('composer-input')`)
	u.do("type the reply", chromedp.SetValue(chromedp.ID("composer-input"), answer), pressEnter)
}

// reactWith opens the picker on the message holding text by keyboard and
// chooses emoji with the arrow keys and Enter.
func (u *browserUser) reactWith(text, emoji string) {
	u.t.Helper()
	u.pressOn(text, ".react-open")
	u.waitFor("the picker to hold the focus", `() => document.activeElement?.closest('.emoji-picker')`)
	for range 40 {
		if browserEval[string](u, `document.activeElement.textContent`) == emoji {
			u.do("choose "+emoji, pressButtonKey)
			u.waitFor("the picker to close", `() => !document.querySelector('.emoji-picker')`)
			return
		}
		u.do("next emoji", pressKey("ArrowRight", 39))
	}
	u.fail("find "+emoji, fmt.Errorf("not in the picker"))
}

// waitReaction waits until the message holding text shows emoji with label
// (its aria-label) and pressed (aria-pressed).
func (u *browserUser) waitReaction(text, emoji, label string, pressed bool) {
	u.t.Helper()
	u.waitFor(fmt.Sprintf("%s on %q labelled %q", emoji, text, label), `(text, emoji, label, pressed) => {
		const li = (`+msgSelector+`)(text);
		const chip = li && [...li.querySelectorAll('.reaction')].find((b) => b.dataset.emoji === emoji);
		return chip && chip.getAttribute('aria-label') === label && chip.getAttribute('aria-pressed') === String(pressed) &&
			chip.title.length > 0;
	}`, text, emoji, label, pressed)
}

// waitNoReaction waits until the message holding text shows no emoji.
func (u *browserUser) waitNoReaction(text, emoji string) {
	u.t.Helper()
	u.waitFor(fmt.Sprintf("no %s on %q", emoji, text), `(text, emoji) => {
		const li = (`+msgSelector+`)(text);
		return li && ![...li.querySelectorAll('.reaction')].some((b) => b.dataset.emoji === emoji);
	}`, text, emoji)
}

// clickReaction clicks the emoji's chip under the message holding text.
func (u *browserUser) clickReaction(text, emoji string) {
	u.t.Helper()
	browserEval[chromedp.Void](u, fmt.Sprintf(`[...(%s)(%q).querySelectorAll('.reaction')].find((b) => b.dataset.emoji === %q).click()`, msgSelector, text, emoji))
}

// waitQuote waits until the message holding text quotes author and quoted.
func (u *browserUser) waitQuote(text, author, quoted string) {
	u.t.Helper()
	u.waitFor(fmt.Sprintf("%q quoting %s", text, author), `(text, author, quoted) => {
		const q = (`+msgSelector+`)(text)?.querySelector('.quote');
		return q && q.querySelector('.quote-author').textContent === author &&
			q.querySelector('.quote-text').textContent === quoted && q.getAttribute('aria-label').includes(author);
	}`, text, author, quoted)
}

// jumpFrom clicks the quote of the message holding text and waits for its
// original, holding orig, to be highlighted and focused.
func (u *browserUser) jumpFrom(text, orig string) {
	u.t.Helper()
	browserEval[chromedp.Void](u, fmt.Sprintf(`(%s)(%q).querySelector('.quote').click()`, msgSelector, text))
	u.waitFor("the original to be highlighted and focused", `(orig) => {
		const li = (`+msgSelector+`)(orig);
		return li && li.classList.contains('highlight') && document.activeElement === li;
	}`, orig)
}

func TestBrowserReplyQuotesAndJumps(t *testing.T) {
	es := startE2EServer(t, map[string]string{"HISTORY_SIZE": "2"})
	alice, bob, code := aliceAndBob(t, es)
	long := "The original message, long enough that its quote is cut short: " + strings.Repeat("word ", 10) + "end"
	alice.say(long)
	bob.waitMessage("Alice", long)
	bob.replyTo(long, "the answer")
	alice.waitMessage("Bob", "the answer")
	quoted := string([]rune(strings.TrimSpace(long))[:80]) + "…"
	for _, u := range []*browserUser{alice, bob} {
		u.waitQuote("the answer", "Alice", quoted)
	}
	alice.jumpFrom("the answer", long)
	alice.checkLabels("room with a reply")

	// HISTORY_SIZE is 2: after one more message the original is gone, and
	// a newcomer's quote says so when clicked.
	alice.say("one more")
	bob.waitMessage("Alice", "one more")
	carol := newBrowserUser(t, startBrowser(t), "carol")
	carol.joinFromLink(es.URL+"/r/"+code, "Carol")
	carol.waitQuote("the answer", "Alice", quoted)
	browserEval[chromedp.Void](carol, fmt.Sprintf(`(%s)(%q).querySelector('.quote').click()`, msgSelector, "the answer"))
	carol.waitFor("the notice that the original is gone", `() => !document.getElementById('toast').hidden &&
		document.getElementById('toast').textContent.includes('no longer in this room’s history')`)
}

func TestBrowserReactionsAreShared(t *testing.T) {
	es := startE2EServer(t, nil)
	alice, bob, code := aliceAndBob(t, es)
	alice.say("react to me")
	bob.waitMessage("Alice", "react to me")
	bob.reactWith("react to me", "🎉")
	alice.waitReaction("react to me", "🎉", "🎉 1 reaction, by Bob; press to add yours", false)
	bob.waitReaction("react to me", "🎉", "🎉 1 reaction, by you; press to remove yours", true)
	alice.clickReaction("react to me", "🎉")
	alice.waitReaction("react to me", "🎉", "🎉 2 reactions, by Bob and you; press to remove yours", true)
	bob.waitReaction("react to me", "🎉", "🎉 2 reactions, by you and Alice; press to remove yours", true)
	alice.checkLabels("room with reactions")

	// A newcomer sees them, and so does a reload.
	carol := newBrowserUser(t, startBrowser(t), "carol")
	carol.joinFromLink(es.URL+"/r/"+code, "Carol")
	carol.waitReaction("react to me", "🎉", "🎉 2 reactions, by Bob and Alice; press to add yours", false)
	bob.reload()
	bob.waitJoined()
	bob.waitReaction("react to me", "🎉", "🎉 2 reactions, by you and Alice; press to remove yours", true)

	// A second press takes one's own off; the last one takes the chip away.
	bob.clickReaction("react to me", "🎉")
	alice.waitReaction("react to me", "🎉", "🎉 1 reaction, by you; press to remove yours", true)
	alice.reactWith("react to me", "🎉") // the picker toggles too
	for _, u := range []*browserUser{alice, bob, carol} {
		u.waitNoReaction("react to me", "🎉")
	}
}

func TestBrowserEncryptedRepliesAndReactionsStaySealed(t *testing.T) {
	es := startE2EServer(t, nil)
	b := startBrowser(t)
	alice := newBrowserUser(t, b, "alice")
	aliceWire := tapWire(alice)
	code, link := alice.createSealedRoom(es.URL, "Alice")
	bob := newBrowserUser(t, b, "bob")
	bobWire := tapWire(bob)
	bob.joinFromLink(link, "Bob")
	bob.waitSealed()

	orig, answer := canary("original"), canary("answer")
	alice.say(orig)
	bob.waitMessage("Alice", orig)
	bob.replyTo(orig, answer)
	alice.waitMessage("Bob", answer)
	alice.waitQuote(answer, "Alice", orig)
	alice.jumpFrom(answer, orig)
	bob.reactWith(orig, "🎉")
	alice.waitReaction(orig, "🎉", "🎉 1 reaction, by Bob; press to add yours", false)
	alice.clickReaction(orig, "🎉")
	bob.waitReaction(orig, "🎉", "🎉 2 reactions, by you and Alice; press to remove yours", true)

	// A reload opens the sealed reactions and quote from the replay.
	alice.reload()
	alice.waitSealed()
	alice.waitReaction(orig, "🎉", "🎉 2 reactions, by Bob and you; press to remove yours", true)
	alice.waitQuote(answer, "Alice", orig)
	// The sealed emoji is the same every time: a second press removes it.
	bob.clickReaction(orig, "🎉")
	alice.waitReaction(orig, "🎉", "🎉 1 reaction, by you; press to remove yours", true)

	for who, w := range map[string]*wireTap{"alice": aliceWire, "bob": bobWire} {
		frames, _ := w.snapshot()
		reacts := 0
		for _, f := range frames {
			for _, secret := range []string{orig, answer, "🎉", `"quote"`, `\ud83c`} {
				if strings.Contains(f, secret) {
					t.Errorf("%s's page put %q on the wire in the clear: %.300s", who, secret, f)
				}
			}
			if strings.Contains(f, `"react"`) || strings.Contains(f, `"reactions"`) {
				reacts++
			}
		}
		if reacts == 0 {
			t.Errorf("%s: no reaction frame recorded: the tap saw nothing", who)
		}
	}
	for _, f := range roomHistory(t, es, code) {
		if strings.Contains(f, orig) || strings.Contains(f, answer) {
			t.Errorf("the server holds %s in the clear", f)
		}
	}
}

// TestBrowserReplyAndReactionsScreenshot pictures a reply and reactions;
// docs/screenshot-reply-reactions.png is a copy of it.
func TestBrowserReplyAndReactionsScreenshot(t *testing.T) {
	es := startE2EServer(t, nil)
	b := startBrowser(t)
	maya := newBrowserUser(t, b, "maya")
	maya.do("size", chromedp.EmulateViewport(720, 780), setColorScheme("light"))
	code := maya.createRoomFromStart(es.URL, "Maya", "create-room")
	jonas := newBrowserUser(t, b, "jonas")
	jonas.joinFromLink(es.URL+"/r/"+code, "Jonas")
	priya := newBrowserUser(t, b, "priya")
	priya.joinFromLink(es.URL+"/r/"+code, "Priya")
	lunch := "Lunch on Friday? I was thinking of the new ramen place by the station, around 12:30."
	maya.say(lunch)
	jonas.waitMessage("Maya", lunch)
	jonas.replyTo(lunch, "Count me in! I'll book a table for three.")
	maya.waitMessage("Jonas", "Count me in! I'll book a table for three.")
	priya.waitMessage("Jonas", "Count me in! I'll book a table for three.")
	priya.reactWith(lunch, "👍")
	jonas.reactWith(lunch, "👍")
	priya.reactWith("Count me in! I'll book a table for three.", "🎉")
	maya.waitReaction(lunch, "👍", "👍 2 reactions, by Priya and Jonas; press to add yours", false)
	maya.waitReaction("Count me in! I'll book a table for three.", "🎉", "🎉 1 reaction, by Priya; press to add yours", false)
	maya.do("start a reply", chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`))
	maya.pressOn("Count me in! I'll book a table for three.", ".reply-open")
	maya.do("type a draft", chromedp.SendKeys(chromedp.ID("composer-input"), "Perfect"))
	maya.do("close the people list", chromedp.Evaluate[chromedp.Void](`document.getElementById('room').classList.remove('people-open')`))
	maya.do("scroll to the end", chromedp.Evaluate[chromedp.Void](`document.getElementById('messages').scrollTop = 1e6`))
	maya.screenshot("reply-reactions.png")
}
