//go:build linux

package test

import (
	"encoding/base64"
	"encoding/json"
	"regexp"
	"sync/atomic"
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
	if !regexp.MustCompile(`^[a-z2-7]{16}_[0-9]*e(-|$)`).MatchString(code) {
		t.Fatalf("room code %q does not carry the e setting", code)
	}
	// The server turns against the room: its welcome now says "not
	// encrypted", hoping a page opened without the key sends in the clear,
	// and it hands on a message in the clear where one sealed came in.
	stand := sealedPrefix + base64.RawURLEncoding.EncodeToString(randomBytes(48))
	var lied atomic.Int32
	es.proxy.setTamper(func(frame []byte) []byte {
		var e struct {
			Type    string         `json:"type"`
			Payload map[string]any `json:"payload"`
		}
		if json.Unmarshal(frame, &e) != nil {
			return frame
		}
		switch {
		case e.Type == typeWelcome && e.Payload["e2ee"] == true:
			delete(e.Payload, "e2ee")
		case e.Type == typeChatMessage && e.Payload["message"] == stand:
			e.Payload["message"] = "plain from eve"
		default:
			return frame
		}
		lied.Add(1)
		out, _ := json.Marshal(e)
		return out
	})

	u := newBrowserUser(t, b, "nokey")
	wire := tapWire(u)
	u.joinFromLink(es.URL+"/r/"+code, "Nokey")
	u.waitLocked("This link is missing its key")
	if lied.Load() == 0 {
		t.Fatal("no welcome was rewritten: the page was never told the room is plain")
	}
	u.do("try to write", forceSend("in the clear?"))
	u.checkSentNoChat(wire)
	eve := dialRoom(t, es, code, "Eve")
	eve.say(stand, "")
	u.waitFor("plain text to be marked", `() => [...document.querySelectorAll('#message-list .msg.sealed-plain')].some((li) =>
		li.querySelector('.text').textContent === 'plain from eve')`)
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
