//go:build !wasip1

// The browser tests need a native Chromium; chromedp does not build for wasip1.

package main

import (
	"fmt"
	"hallway/internal/chattest"
	"strings"
	"testing"
)

// TestBrowserRejoinsQuietlyWhenRoomMoves has two people chat on one Fly.io
// machine behind the stand-in proxy; a second machine joins and wins their
// room, so the first closes them with 4307. The page must rejoin on the new
// machine on its own, with no banner, and the chat carry on.
func TestBrowserRejoinsQuietlyWhenRoomMoves(t *testing.T) {
	first, second := "1781954c0e4e18", "3d8d2e6b4c1f28"
	room := roomOwnedBy(t, []string{first, second}, second)
	f := startFlyFleet(t, first)
	b := startBrowser(t)
	alice := newBrowserUser(t, b, "alice")
	alice.joinFromLink(f.front.URL+"/r/"+room, "Alice")
	bob := newBrowserUser(t, b, "bob")
	bob.joinFromLink(f.front.URL+"/r/"+room, "Bob")
	alice.say("before the move")
	bob.waitMessage("Alice", "before the move")

	f.addMachine(second)
	f.dns.set(first, second)
	chattest.WaitUntil(t, e2eTimeout, "both people on the new machine", func() string {
		if got := f.machines[second].placement()[room]; got != 2 {
			return fmt.Sprintf("%d members there", got)
		}
		return ""
	})
	for _, u := range []*browserUser{alice, bob} {
		u.waitJoined()
		if banners := browserEval[[]string](u, `__e2e.banners`); len(banners) > 0 {
			t.Errorf("%s: the move showed banners %q, want a quiet rejoin", u.name, banners)
		}
		if got := browserEval[string](u, `location.pathname`); got != "/r/"+room {
			t.Errorf("%s: address changed to %q", u.name, got)
		}
	}
	alice.waitPeople("Alice", "Bob")
	bob.say("after the move")
	alice.waitMessage("Bob", "after the move")
	if !strings.Contains(f.machines[first].logs.String(), "rooms moved to their new machine") {
		t.Error("the first machine did not log the move")
	}
}
