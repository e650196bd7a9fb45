//go:build linux

package test

import (
	"fmt"
	"strings"
	"testing"

	"hallway/internal/chattest"
)

// This test closes two pages with 4307, as a machine does when their room
// moves, and the page must rejoin quietly and the chat carry on. The move
// itself, across machines, is the root's TestFleetBehindFlyProxy.

// closeRoomMoved and reasonRoomMoved are how a Fly.io machine closes the
// members of a room that now lives on another machine (docs/protocol.md).
const (
	closeRoomMoved  = 4307
	reasonRoomMoved = "room moved to another machine; rejoin"
)

// TestBrowserRejoinsQuietlyWhenRoomMoves has two people chat until the
// server closes them with 4307, as a machine does when their room moves
// (the move itself, across machines behind the Fly.io proxy stand-in, is
// the root's TestFleetBehindFlyProxy). The page must
// rejoin on its own, with no banner, and the chat carry on.
func TestBrowserRejoinsQuietlyWhenRoomMoves(t *testing.T) {
	es := startE2EServer(t, nil)
	alice, bob, code := aliceAndBob(t, es)
	alice.say("before the move")
	bob.waitMessage("Alice", "before the move")

	if n := es.proxy.closeWebSockets(closeRoomMoved, reasonRoomMoved); n != 2 {
		t.Fatalf("closed %d WebSockets, want Alice's and Bob's", n)
	}
	chattest.WaitUntil(t, e2eTimeout, "both pages to rejoin", func() string {
		if n := strings.Count(es.requests.String(), "GET /ws/"+code+"?"); n < 4 {
			return fmt.Sprintf("%d joins", n)
		}
		return ""
	})
	for _, u := range []*browserUser{alice, bob} {
		u.waitJoined()
		if banners := browserEval[[]string](u, `__e2e.banners`); len(banners) > 0 {
			t.Errorf("%s: the move showed banners %q, want a quiet rejoin", u.name, banners)
		}
		if got := browserEval[string](u, `location.pathname`); got != "/r/"+code {
			t.Errorf("%s: address changed to %q", u.name, got)
		}
	}
	alice.waitPeople("Alice", "Bob")
	bob.say("after the move")
	alice.waitMessage("Bob", "after the move")
}
