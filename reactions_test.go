package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// These tests check replies and reactions on the server: a reply's quote,
// reactions as room state that leave with their message, the history
// budget, the bounds, each refusal code, flood control, and both sealed in
// an encrypted room. In Chromium they are test/reactions_browser_test.go.

// react sends a react frame.
func (c *testClient) react(id uint64, emoji string, on bool) {
	c.t.Helper()
	b, _ := json.Marshal(outEnvelope{Type: typeReact, Payload: reactRequest{ID: id, Emoji: emoji, On: &on}})
	c.sendRaw(string(b))
}

// reply sends a chat message answering the message id.
func (c *testClient) reply(id uint64, message, clientID string) {
	c.t.Helper()
	b, _ := json.Marshal(outEnvelope{Type: typeChatMessage, Payload: inboundMessage{Message: message, ClientID: clientID, ReplyTo: id}})
	c.sendRaw(string(b))
}

// usersOf returns who reacted with emoji in list, or nil.
func usersOf(list []reaction, emoji string) []string {
	for _, r := range list {
		if r.Emoji == emoji {
			return r.Users
		}
	}
	return nil
}

// checkHistoryBytes checks that the room's history bytes are its frames
// plus its reactions' encoded size, and that the server's budget agrees.
func checkHistoryBytes(t *testing.T, ts *testServer, name string) (frames, reactions int) {
	t.Helper()
	ts.srv.mu.Lock()
	r := ts.srv.rooms[name]
	ts.srv.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.history {
		frames += len(f)
	}
	count := 0
	for id, held := range r.react.byID {
		if !r.holdsLocked(id) {
			t.Errorf("reactions kept for message %d, which left the history", id)
		}
		b, _ := json.Marshal(messageReactions{ID: id, Reactions: held.list})
		if held.bytes != len(b) {
			t.Errorf("message %d: reactions counted as %d bytes, encode to %d", id, held.bytes, len(b))
		}
		reactions += held.bytes
		for _, x := range held.list {
			count += len(x.Users)
		}
	}
	if r.histBytes != frames+reactions {
		t.Errorf("histBytes = %d, want frames %d + reactions %d", r.histBytes, frames, reactions)
	}
	if got := ts.srv.history.bytes.Load(); got != int64(r.histBytes) {
		t.Errorf("history budget holds %d bytes, the room %d", got, r.histBytes)
	}
	if count != r.react.count {
		t.Errorf("room counts %d reactions, holds %d", r.react.count, count)
	}
	return frames, reactions
}

func TestReplyCarriesItsQuote(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	alice := ts.dial(t, "lobby", "alice")
	alice.welcome()
	bob := ts.dial(t, "lobby", "bob")
	bob.welcome()
	long := "first line\n\n" + strings.Repeat("é", 100)
	alice.say(long, "a1")
	orig := bob.nextMessage()
	bob.reply(orig.ID, "answer", "b1")
	for _, c := range []*testClient{alice, bob} {
		m := c.nextMessage()
		if m.ID != orig.ID+1 {
			m = c.nextMessage()
		}
		want := "first line " + strings.Repeat("é", maxQuoteRunes-len("first line ")) + "…"
		if m.ReplyTo != orig.ID || m.Quote == nil || m.Quote.Username != "alice" || m.Quote.Text != want {
			t.Fatalf("reply = %+v quote %+v, want replyTo %d quoting alice %q", m, m.Quote, orig.ID, want)
		}
	}
	// The reply and its quote are in the history a newcomer gets.
	carol := ts.dial(t, "lobby", "carol")
	_, history := carol.welcome()
	if len(history) != 2 || history[1].ReplyTo != orig.ID || history[1].Quote == nil {
		t.Fatalf("replayed %+v, want the reply with its quote", history)
	}
	// A reply at MAX_MESSAGE_BYTES keeps its frame within maxFrameBytes:
	// it goes without the quote.
	bob.reply(orig.ID, strings.Repeat("\"", ts.srv.cfg.MaxMessageBytes), "b2")
	m := carol.nextMessage()
	if frame := encodeFrame(typeChatMessage, m); m.ReplyTo != orig.ID || m.Quote != nil || len(frame) > maxFrameBytes(ts.srv.cfg.MaxMessageBytes) {
		t.Fatalf("a full reply came as %d bytes with quote %+v", len(frame), m.Quote)
	}
}

func TestReplyToAMessageNoLongerHeld(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"HISTORY_SIZE": "2"})
	alice := ts.dial(t, "lobby", "alice")
	alice.welcome()
	bob := ts.dial(t, "lobby", "bob")
	bob.welcome()
	for i := range 3 {
		alice.say(fmt.Sprintf("m%d", i), "")
		bob.nextMessage()
		alice.nextMessage()
	}
	for _, id := range []uint64{1, 4, 99} { // trimmed, not yet sent, never
		bob.reply(id, "answer", "b1")
		if e := bob.expectError(codeUnknownMessage); e.ClientID != "b1" {
			t.Fatalf("error %+v does not name the reply", e)
		}
	}
	// Nothing reached alice: her next message is the next one said.
	bob.say("plain", "b2")
	if m := alice.nextMessage(); m.Message != "plain" || m.ReplyTo != 0 {
		t.Fatalf("alice got %+v, want only the plain message", m)
	}
	bob.reply(3, "still held", "b3")
	if m := alice.nextMessage(); m.ReplyTo != 3 || m.Quote.Text != "m2" {
		t.Fatalf("alice got %+v, want a reply to m2", m)
	}
}

func TestReactionsAreRoomState(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	alice := ts.dial(t, "lobby", "alice")
	w, _ := alice.welcome()
	bob := ts.dial(t, "lobby", "bob")
	bob.welcome()
	alice.say("hello", "")
	id := bob.nextMessage().ID
	alice.nextMessage()

	bob.react(id, "👍", true)
	for _, c := range []*testClient{alice, bob} {
		p := skipUntil[reactPayload](c, typeReact)
		if p.ID != id || p.Username != "bob" || !p.On || fmt.Sprint(usersOf(p.Reactions, "👍")) != "[bob]" {
			t.Fatalf("react = %+v, want bob's 👍", p)
		}
	}
	alice.react(id, "👍", true)
	alice.react(id, "🎉", true)
	p := skipUntil[reactPayload](bob, typeReact)
	p = skipUntil[reactPayload](bob, typeReact)
	if fmt.Sprint(usersOf(p.Reactions, "👍"), usersOf(p.Reactions, "🎉")) != "[bob alice] [alice]" {
		t.Fatalf("reactions = %+v", p.Reactions)
	}
	// A second add is no change: the sender alone hears how things stand.
	bob.react(id, "👍", true)
	skipUntil[reactPayload](alice, typeReact)
	skipUntil[reactPayload](alice, typeReact)
	if p := skipUntil[reactPayload](bob, typeReact); len(usersOf(p.Reactions, "👍")) != 2 {
		t.Fatalf("no-change answer = %+v", p)
	}
	checkHistoryBytes(t, ts, "lobby")

	// A newcomer gets them after the replay.
	carol := ts.dial(t, "lobby", "carol")
	expect[welcomePayload](carol, typeWelcome)
	expect[chatMessagePayload](carol, typeChatMessage)
	snap := expect[reactionsPayload](carol, typeReactions)
	if snap.From != 1 || len(snap.Messages) != 1 || snap.Messages[0].ID != id || len(snap.Messages[0].Reactions) != 2 {
		t.Fatalf("reactions frame = %+v", snap)
	}

	// Removing the last reactions leaves nothing counted, and a resume
	// hears that there are none.
	alice.react(id, "🎉", false)
	bob.react(id, "👍", false)
	alice.react(id, "👍", false)
	for range 3 {
		p = skipUntil[reactPayload](carol, typeReact)
	}
	if p.On || len(p.Reactions) != 0 {
		t.Fatalf("last removal = %+v, want no reactions", p)
	}
	if _, n := checkHistoryBytes(t, ts, "lobby"); n != 0 {
		t.Fatalf("%d bytes of reactions left", n)
	}
	dave := ts.dialQuery(t, "lobby", fmt.Sprintf("username=dave&since=%d&epoch=%s", id, w.Epoch))
	expect[welcomePayload](dave, typeWelcome)
	if snap := expect[reactionsPayload](dave, typeReactions); snap.From != 1 || len(snap.Messages) != 0 {
		t.Fatalf("resume's reactions frame = %+v, want none from 1", snap)
	}
}

func TestReactionsLeaveWithTheirMessage(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"HISTORY_SIZE": "3", "MESSAGE_RATE": "0"})
	alice := ts.dial(t, "lobby", "alice")
	alice.welcome()
	alice.say("old", "")
	id := alice.nextMessage().ID
	alice.react(id, "❤️", true)
	skipUntil[reactPayload](alice, typeReact)
	if _, n := checkHistoryBytes(t, ts, "lobby"); n == 0 {
		t.Fatal("the reaction is not counted in the history bytes")
	}
	for i := range 3 {
		alice.say(fmt.Sprint(i), "")
		alice.nextMessage()
	}
	if _, n := checkHistoryBytes(t, ts, "lobby"); n != 0 {
		t.Fatalf("%d bytes of reactions kept for a trimmed message", n)
	}
	alice.react(id, "❤️", false)
	alice.expectError(codeUnknownMessage)
}

func TestReactionsGrowTheHistoryWithinItsBytes(t *testing.T) {
	t.Parallel()
	// Three messages leave about 300 bytes of HISTORY_BYTES: reactions on
	// the newest soon push out the oldest, as a new message would.
	limit := maxFrameBytes(4096)
	ts := setupTest(t, map[string]string{"HISTORY_BYTES": fmt.Sprint(limit), "MESSAGE_RATE": "0"})
	alice := ts.dial(t, "lobby", "alice")
	alice.welcome()
	for range 3 {
		alice.say(strings.Repeat("x", (limit-300)/3-100), "")
		alice.nextMessage()
	}
	ts.srv.mu.Lock()
	r := ts.srv.rooms["lobby"]
	ts.srv.mu.Unlock()
	held := func() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.history) }
	if held() != 3 {
		t.Fatalf("history holds %d messages, want 3", held())
	}
	for i, e := range pickerEmoji[:maxMessageEmoji] {
		alice.react(3, e, true)
		skipUntil[reactPayload](alice, typeReact)
		if held() == 2 {
			break
		}
		if i == maxMessageEmoji-1 {
			t.Fatal("reactions never pushed the oldest message out")
		}
	}
	checkHistoryBytes(t, ts, "lobby")
}

// pickerEmoji are distinct valid emoji, as the page's picker offers.
var pickerEmoji = strings.Fields("👍 ❤️ 😂 😮 😢 🎉 😀 😊 😍 🤔 🙌 👏 🙏 🔥 ✅ ❌ 👀 💯 🚀 ⭐ 🌈 🍕 ☕ 🎂 🐶 🐱 🌻 ⚽ 🎵 💡 👋 🤝")

func TestReactionBounds(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"MESSAGE_RATE": "0", "HISTORY_SIZE": "100"})
	alice := ts.dial(t, "lobby", "alice")
	alice.welcome()
	messages := maxRoomReactions/maxMessageEmoji + 1
	for i := range messages {
		alice.say(fmt.Sprint(i), "")
		alice.nextMessage()
	}
	for _, e := range pickerEmoji[:maxMessageEmoji] {
		alice.react(1, e, true)
		skipUntil[reactPayload](alice, typeReact)
	}
	alice.react(1, pickerEmoji[maxMessageEmoji], true)
	alice.expectError(codeTooManyReactions)
	// An emoji already on the message takes another person.
	bob := ts.dial(t, "lobby", "bob")
	bob.react(1, pickerEmoji[0], true)
	if p := skipUntil[reactPayload](bob, typeReact); len(usersOf(p.Reactions, pickerEmoji[0])) != 2 {
		t.Fatalf("react = %+v, want two on %s", p, pickerEmoji[0])
	}
	bob.conn.CloseNow() // Bob's reaction stays when he leaves.
	skipUntil[reactPayload](alice, typeReact)
	// Fill the room to maxRoomReactions, then one more is refused.
	total := maxMessageEmoji + 1
	for id := uint64(2); total < maxRoomReactions; id++ {
		for _, e := range pickerEmoji[:min(maxMessageEmoji, maxRoomReactions-total)] {
			alice.react(id, e, true)
			skipUntil[reactPayload](alice, typeReact)
			total++
		}
	}
	alice.react(uint64(messages), "👍", true)
	alice.expectError(codeTooManyReactions)
	// Removing one makes room again.
	alice.react(1, pickerEmoji[1], false)
	skipUntil[reactPayload](alice, typeReact)
	alice.react(uint64(messages), "👍", true)
	if p := skipUntil[reactPayload](alice, typeReact); p.ID != uint64(messages) || !p.On {
		t.Fatalf("react = %+v, want the reaction accepted", p)
	}
	checkHistoryBytes(t, ts, "lobby")
}

func TestBadReactions(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	alice := ts.dial(t, "lobby", "alice")
	alice.welcome()
	bob := ts.dial(t, "lobby", "bob")
	bob.welcome()
	alice.say("hello", "")
	alice.nextMessage()
	bob.nextMessage()
	alice.react(99, "👍", true)
	alice.expectError(codeUnknownMessage)
	for _, e := range []string{"", "a", "1", ":)", "👍👍", "👍 ", "字", "\u202e👍", "r1.AAAA", strings.Repeat("👍\u200d", 10) + "👍"} {
		alice.react(1, e, true)
		alice.expectError(codeBadEmoji)
	}
	for _, raw := range []string{`{"id":1,"emoji":"👍"}`, `{"id":"1","emoji":"👍","on":true}`, `[]`, `{"emoji":"👍","on":true}`} {
		alice.sendRaw(`{"type":"react","payload":` + raw + `}`)
		alice.expectError(codeBadMessage)
	}
	for _, e := range []string{"👍", "❤️", "👩🏽‍🚀", "👨‍👩‍👧‍👦", "🇫🇷", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "✅"} {
		if !validEmoji(e) {
			t.Errorf("validEmoji(%q) = false", e)
		}
	}
	// None of it reached bob, and alice's chat still works.
	alice.say("still here", "")
	for {
		e := bob.next()
		if e.Type == typeReact || e.Type == typeError {
			t.Fatalf("bob got %s %s", e.Type, e.Payload)
		}
		if e.Type == typeChatMessage {
			break
		}
	}
}

func TestReactionFloodIsRateLimited(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"MESSAGE_RATE": "0.01", "MESSAGE_BURST": "3"})
	alice := ts.dial(t, "lobby", "alice")
	alice.welcome()
	alice.say("hello", "")
	alice.nextMessage()
	for i := range 2 {
		alice.react(1, "👍", i == 0)
		skipUntil[reactPayload](alice, typeReact)
	}
	alice.react(1, "👍", true)
	alice.expectError(codeRateLimited)
	// The connection carries on.
	alice.sendRaw(`{"type":"ping","payload":{}}`)
	skipUntil[struct{}](alice, typePong)
}

func TestEncryptedRoomReactionsAndRepliesStaySealed(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	room := strings.Repeat("a", roomCodeLen) + "_e"
	alice := ts.dial(t, room, "alice")
	alice.welcome()
	alice.say(sealedPrefix+"AAAA", "")
	id := alice.nextMessage().ID
	alice.react(id, "👍", true)
	alice.expectError(codeNotEncrypted)
	sealed := sealedEmojiPrefix + strings.Repeat("B", 48)
	alice.react(id, sealed, true)
	if p := skipUntil[reactPayload](alice, typeReact); usersOf(p.Reactions, sealed) == nil {
		t.Fatalf("react = %+v, want the sealed emoji as sent", p)
	}
	alice.react(id, sealedEmojiPrefix+strings.Repeat("B", maxSealedEmojiBytes), true)
	alice.expectError(codeNotEncrypted)
	alice.reply(id, sealedPrefix+"CCCC", "r1")
	if m := alice.nextMessage(); m.ReplyTo != id || m.Quote != nil {
		t.Fatalf("reply = %+v, want replyTo and no quote the server made", m)
	}
}
