//go:build !wasip1

package main

import (
	"strings"
	"testing"
	"time"
)

// These tests cover what an encrypted room's page believes without the
// server's word: a code made for encryption is encrypted whatever the
// welcome says, and a sealed time far from the server's is shown.

func TestBrowserEncryptedCodeIsEncryptedWhateverTheServerSays(t *testing.T) {
	es := startE2EServer(t, nil)
	b := startBrowser(t)
	alice := newBrowserUser(t, b, "alice")
	code, _ := alice.createSealedRoom(es.URL, "Alice")
	if _, e2ee := roomSettings(code, 1000); !e2ee {
		t.Fatalf("room code %q does not carry the e setting", code)
	}
	// The server turns against the room: its welcome now says "not
	// encrypted", hoping a page opened without the key sends in the clear.
	srv := es.live.Load().srv
	srv.mu.Lock()
	r := srv.rooms[code]
	srv.mu.Unlock()
	r.mu.Lock()
	r.cipher.E2EE = false
	r.mu.Unlock()

	u := newBrowserUser(t, b, "nokey")
	u.joinFromLink(es.URL+"/r/"+code, "Nokey")
	u.waitLocked("This link is missing its key")
	u.do("try to write", forceSend("in the clear?"))
	eve := dialRoom(t, es, code, "Eve")
	eve.say("plain from eve", "")
	u.waitFor("plain text to be marked", `() => [...document.querySelectorAll('#message-list .msg.sealed-plain')].some((li) =>
		li.querySelector('.text').textContent === 'plain from eve')`)
	for _, m := range srv.roomHistory(code) {
		if strings.Contains(m, "in the clear?") {
			t.Fatalf("a page without the key sent in the clear: %s", m)
		}
	}
}

func TestBrowserEncryptedRoomFlagsAnOldSealedTime(t *testing.T) {
	es := startE2EServer(t, nil)
	b := startBrowser(t)
	alice := newBrowserUser(t, b, "alice")
	code, _ := alice.createSealedRoom(es.URL, "Alice")
	key := alice.roomKey()
	mallory := dialRoom(t, es, code, "Mallory")
	// Sealed an hour ago (a message from another visit, sent again), then
	// one sealed now.
	mallory.say(sealAsAnyoneAt(t, key, code, "Mallory", "old news", time.Now().Add(-time.Hour)), "")
	mallory.say(sealAsAnyone(t, key, code, "Mallory", "fresh"), "")
	alice.waitMessage("Mallory", "fresh")
	alice.waitFor("the old sealed time to be flagged", `() => [...document.querySelectorAll('#message-list .msg.sealed-stale')].some((li) =>
		li.querySelector('.text').textContent === 'old news' && li.querySelector('.seal-note').textContent.includes('sealed'))`)
	if n := browserEval[int](alice, `document.querySelectorAll('#message-list .msg.sealed-stale').length`); n != 1 {
		t.Errorf("%d messages flagged for their sealed time, want only the old one", n)
	}
}
