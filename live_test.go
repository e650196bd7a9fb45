package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Tests of the heartbeat, typing and resume frames, with real WebSocket
// clients against the real server.

// ids lists the ids of messages.
func ids(msgs []chatMessagePayload) []uint64 {
	out := make([]uint64, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}

// postN has c say n messages and waits for each echo.
func (c *testClient) postN(n int) {
	c.t.Helper()
	for i := range n {
		c.say(fmt.Sprintf("message %d", i+1), "")
		c.nextMessage()
	}
}

func TestPingIsAnsweredToTheSenderAlone(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"MESSAGE_RATE": "1", "MESSAGE_BURST": "1"})
	alice := ts.dial(t, "room", "Alice")
	alice.welcome()
	bob := ts.dial(t, "room", "Bob")
	bob.welcome()
	alice.waitForCount(2)

	// More pings than the message burst: they are not chat messages.
	for range 5 {
		alice.sendRaw(`{"type":"ping"}`)
		if e := alice.next(); e.Type != typePong {
			t.Fatalf("after a ping Alice got %s %s, want pong", e.Type, e.Payload)
		}
	}
	alice.sendRaw(`{"type":"ping","payload":{"anything":1}}`)
	expect[struct{}](alice, typePong)
	alice.say("still allowed", "c-1")
	if m := alice.nextMessage(); m.Message != "still allowed" {
		t.Fatalf("Alice's message after pings came back as %+v", m)
	}
	// Bob's next frame is the message: no pong reached him.
	if e := bob.next(); e.Type != typeChatMessage {
		t.Fatalf("Bob got %s %s, want only the chat message", e.Type, e.Payload)
	}
	carol := ts.dial(t, "room", "Carol")
	if _, history := carol.welcome(); len(history) != 1 {
		t.Fatalf("a newcomer was replayed %+v, want the one message and no pings", history)
	}
}

func TestPingFloodIsRefusedThenClosed(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	c := ts.dial(t, "room", "Alice")
	c.welcome()
	for range controlBurst {
		c.sendRaw(`{"type":"ping"}`)
	}
	for range controlBurst {
		expect[struct{}](c, typePong)
	}
	// Past the burst, pings are refused until tokens come back (2 a second).
	for range 10 {
		c.sendRaw(`{"type":"ping"}`)
	}
	limited := 0
	for range 10 {
		if e := c.next(); e.Type == typeError {
			if p := decodePayload[errorPayload](t, e); p.Code != codeRateLimited {
				t.Fatalf("refused ping got %+v, want rate_limited", p)
			}
			limited++
		}
	}
	// At 2 tokens a second, at most one or two come back while ten are sent.
	if limited < 8 {
		t.Fatalf("%d of ten pings past the burst were refused, want at least 8", limited)
	}
	// A flood spends the abuse budget and is closed.
	for range 200 {
		if err := c.conn.Write(t.Context(), websocket.MessageText, []byte(`{"type":"ping"}`)); err != nil {
			break
		}
	}
	if code, reason := c.closeStatus(); code != websocket.StatusPolicyViolation || reason != reasonAbuse {
		t.Fatalf("flood closed with %d %q, want 1008 %q", code, reason, reasonAbuse)
	}
}

// decodePayload decodes an envelope's payload.
func decodePayload[T any](t *testing.T, e envelope) T {
	t.Helper()
	var p T
	if err := json.Unmarshal(e.Payload, &p); err != nil {
		t.Fatalf("decode %s payload %s: %v", e.Type, e.Payload, err)
	}
	return p
}

func TestTypingReachesOthersWithTheServersName(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	alice := ts.dial(t, "room", "Alice")
	alice.welcome()
	bob := ts.dial(t, "room", "Bob")
	bob.welcome()
	carol := ts.dial(t, "room", "Carol")
	carol.welcome()
	alice.waitForCount(3)
	bob.waitForCount(3)

	alice.sendRaw(`{"type":"typing","payload":{"active":true,"username":"Mallory"}}`)
	for _, c := range []*testClient{bob, carol} {
		p := expect[typingPayload](c, typeTyping)
		if p.Username != "Alice" || p.Active == nil || !*p.Active {
			t.Fatalf("typing relayed as %+v, want Alice active", p)
		}
	}
	alice.sendRaw(`{"type":"typing","payload":{"active":false}}`)
	if p := expect[typingPayload](bob, typeTyping); p.Username != "Alice" || *p.Active {
		t.Fatalf("stop relayed as %+v", p)
	}
	// Alice heard neither of her own frames: before the answer to a ping,
	// she gets nothing but arrival notices. Some may still be on their way,
	// since the count of three took the place of a count not yet sent,
	// ahead of them.
	alice.sendRaw(`{"type":"ping"}`)
	for e := alice.next(); e.Type != typePong; e = alice.next() {
		if e.Type != typeSystem && e.Type != typeUserCount {
			t.Fatalf("Alice got %s %s, want pong (no echo of her typing)", e.Type, e.Payload)
		}
	}
	for _, bad := range []string{
		`{"type":"typing"}`,
		`{"type":"typing","payload":{}}`,
		`{"type":"typing","payload":{"active":"yes"}}`,
	} {
		alice.sendRaw(bad)
		if p := expect[errorPayload](alice, typeError); p.Code != codeBadMessage {
			t.Fatalf("%s got %+v, want bad_message", bad, p)
		}
	}
	dave := ts.dial(t, "room", "Dave")
	if _, history := dave.welcome(); len(history) != 0 {
		t.Fatalf("typing was kept in history: %+v", history)
	}
	if strings.Contains(ts.logs.String(), "Alice") {
		t.Fatalf("the log names a member:\n%s", ts.logs)
	}
}

func TestUnknownFrameTypeIsRefused(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	c := ts.dial(t, "room", "Alice")
	c.welcome()
	c.sendRaw(`{"type":"pong","payload":{}}`)
	if p := expect[errorPayload](c, typeError); p.Code != codeBadMessage {
		t.Fatalf("a pong from a client got %+v, want bad_message", p)
	}
}

func TestResumeReplaysOnlyNewerMessages(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	alice := ts.dial(t, "room", "Alice")
	w, _ := alice.welcome()
	if w.Epoch == "" || w.Gap {
		t.Fatalf("fresh welcome %+v, want an epoch and no gap", w)
	}
	alice.postN(5)

	cases := []struct {
		query string
		want  []uint64
		gap   bool
	}{
		{"", []uint64{1, 2, 3, 4, 5}, false},
		{"since=3&epoch=" + w.Epoch, []uint64{4, 5}, false},
		{"since=5&epoch=" + w.Epoch, []uint64{}, false},
		{"since=0&epoch=" + w.Epoch, []uint64{1, 2, 3, 4, 5}, false},
		{"since=2", []uint64{3, 4, 5}, false},
		{"since=3&epoch=0123456789ab", []uint64{1, 2, 3, 4, 5}, false}, // another incarnation, and this one is whole
		{"since=99&epoch=" + w.Epoch, []uint64{1, 2, 3, 4, 5}, false},  // in the future: the room was re-created
	}
	for _, tc := range cases {
		c := ts.dialQuery(t, "room", "username=Bob&"+tc.query)
		got, history := c.welcome()
		if fmt.Sprint(ids(history)) != fmt.Sprint(tc.want) || got.Gap != tc.gap || got.Epoch != w.Epoch {
			t.Errorf("?%s: replayed %v, gap %v, epoch %q; want %v, gap %v, epoch %q",
				tc.query, ids(history), got.Gap, got.Epoch, tc.want, tc.gap, w.Epoch)
		}
		c.conn.Close(websocket.StatusNormalClosure, "")
	}
}

func TestResumeSaysWhenHistoryWasTrimmed(t *testing.T) {
	t.Parallel()
	for _, limit := range []map[string]string{
		{"HISTORY_SIZE": "3"},
		{"HISTORY_BYTES": "3000", "MAX_MESSAGE_BYTES": "1000"}, // six messages of ~700 bytes: four fit
	} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			ts := setupTest(t, limit)
			alice := ts.dial(t, "room", "Alice")
			w, _ := alice.welcome()
			for i := range 6 {
				alice.say(strings.Repeat("x", 600)+fmt.Sprint(i), "")
				alice.nextMessage()
			}
			fresh := ts.dial(t, "room", "Fresh")
			fw, held := fresh.welcome()
			if fw.Gap || len(held) == 0 || len(held) >= 6 {
				t.Fatalf("fresh join: gap %v and %d messages; want no gap field and a trimmed history", fw.Gap, len(held))
			}
			first := held[0].ID
			bob := ts.dialQuery(t, "room", fmt.Sprintf("username=Bob&since=%d&epoch=%s", first-2, w.Epoch))
			bw, history := bob.welcome()
			if !bw.Gap || fmt.Sprint(ids(history)) != fmt.Sprint(ids(held)) {
				t.Fatalf("resume from %d: gap %v, replay %v; want a gap and %v", first-2, bw.Gap, ids(history), ids(held))
			}
			carol := ts.dialQuery(t, "room", fmt.Sprintf("username=Carol&since=%d&epoch=%s", first-1, w.Epoch))
			if cw, history := carol.welcome(); cw.Gap || fmt.Sprint(ids(history)) != fmt.Sprint(ids(held)) {
				t.Fatalf("resume from %d, just before what is held: gap %v, replay %v; want no gap and %v", first-1, cw.Gap, ids(history), ids(held))
			}
			// Another epoch cannot be trusted, and this one's start is gone.
			dave := ts.dialQuery(t, "room", "username=Dave&since=6&epoch=00")
			if dw, _ := dave.welcome(); !dw.Gap {
				t.Fatalf("resume from another epoch of a trimmed room: no gap")
			}
		})
	}
}

func TestRecreatedRoomHasANewEpoch(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"ROOM_IDLE_TIMEOUT": "10ms"})
	alice := ts.dial(t, "room", "Alice")
	w, _ := alice.welcome()
	alice.postN(2)
	alice.conn.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(testTimeout)
	for {
		if rooms, _ := ts.srv.stats(); rooms == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the empty room was never destroyed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	bob := ts.dialQuery(t, "room", "username=Bob&since=2&epoch="+w.Epoch)
	bw, history := bob.welcome()
	if bw.Epoch == w.Epoch || bw.Gap || len(history) != 0 {
		t.Fatalf("re-created room: epoch %q (was %q), gap %v, history %d; want a new epoch, no gap in it, nothing", bw.Epoch, w.Epoch, bw.Gap, len(history))
	}
}

func TestBadResumeIsRefusedBeforeTheUpgrade(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	for _, q := range []string{"since=-1", "since=abc", "since=1.5", "epoch=ab", "since=1&epoch=xyz", "since=1&epoch=" + strings.Repeat("a", 34),
		"rejoin=abc", "rejoin=" + strings.Repeat("A", 23), "rejoin=" + strings.Repeat("+", 22)} {
		req, _ := http.NewRequest("GET", ts.URL+"/ws/room?username=Bob&"+q, nil)
		var body errorPayload
		resp := getJSON(t, req, &body)
		if resp.StatusCode != http.StatusBadRequest || body.Code != codeBadRequest {
			t.Errorf("?%s: %d %+v, want 400 bad_request", q, resp.StatusCode, body)
		}
	}
}

func TestTypingIsNotRelayedInACrowd(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"MAX_CONNS_PER_IP": "0", "JOIN_RATE": "0"})
	var crowd []*testClient
	for i := range maxListedUsers + 1 {
		c := ts.dial(t, "crowd", fmt.Sprintf("m%d", i))
		c.welcome()
		crowd = append(crowd, c)
	}
	crowd[0].sendRaw(`{"type":"typing","payload":{"active":true}}`)
	crowd[0].say("hi", "")
	for {
		e := crowd[1].next()
		if e.Type == typeTyping {
			t.Fatalf("a room of %d relayed typing: %s", maxListedUsers+1, e.Payload)
		}
		if e.Type == typeChatMessage {
			break
		}
	}
}

func TestRejoinTakesTheOldConnectionsPlace(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	alice := ts.dial(t, "room", "Alice")
	w, _ := alice.welcome()
	if len(w.Rejoin) != 22 {
		t.Fatalf("welcome's rejoin secret is %q, want 22 characters of base64url", w.Rejoin)
	}
	bob := ts.dial(t, "room", "Bob")
	bob.welcome()
	alice.say("hello", "")
	bob.nextMessage()

	// Alice's network died without either end noticing; her page reconnects.
	back := ts.dialQuery(t, "room", fmt.Sprintf("username=Alice&since=1&epoch=%s&rejoin=%s", w.Epoch, w.Rejoin))
	bw, history := back.welcome()
	if bw.Username != "Alice" || len(history) != 0 || bw.Rejoin == "" || bw.Rejoin == w.Rejoin {
		t.Fatalf("rejoin welcome %+v with %d replayed; want Alice, nothing replayed, a new secret", bw, len(history))
	}
	if code, reason := alice.closeStatus(); code != closeReplaced || reason != reasonReplaced {
		t.Fatalf("the old connection closed with %d %q, want %d %q", code, reason, closeReplaced, reasonReplaced)
	}
	back.say("back", "")
	// Bob saw nobody leave or arrive: the next thing he gets is her message.
	if e := bob.next(); e.Type != typeChatMessage || !strings.Contains(string(e.Payload), `"username":"Alice","message":"back"`) {
		t.Fatalf("bob got %s %s, want Alice's message and nothing before it", e.Type, e.Payload)
	}
	// The old connection gives its place under MAX_CLIENTS back.
	for deadline := time.Now().Add(testTimeout); ; time.Sleep(10 * time.Millisecond) {
		if _, clients := ts.srv.stats(); clients == 2 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("%d connections counted after the old one closed, want 2", clients)
		}
	}
	carol := ts.dial(t, "room", "Carol")
	carol.welcome()
	if got := skipUntil[userCountPayload](bob, typeUserCount).Users; strings.Join(got, ",") != "Alice,Bob,Carol" {
		t.Fatalf("members %v, want Alice in her old place: Alice,Bob,Carol", got)
	}
}

func TestRejoinNeedsTheSecret(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	alice := ts.dial(t, "room", "Alice")
	w, _ := alice.welcome()
	bob := ts.dial(t, "room", "Bob")
	bob.welcome()

	// A secret the server never gave takes nobody's place.
	other := ts.dialQuery(t, "room", "username=Alice&rejoin=AAAAAAAAAAAAAAAAAAAAAA")
	if ow, _ := other.welcome(); ow.Username != "Alice_2" {
		t.Fatalf("a wrong secret joined as %q, want Alice_2 beside Alice", ow.Username)
	}
	if s := expect[systemPayload](bob, typeSystem); s.Text != "Alice_2 joined" {
		t.Fatalf("bob heard %q, want Alice_2 joined", s.Text)
	}
	other.conn.Close(websocket.StatusNormalClosure, "")
	if s := skipUntil[systemPayload](bob, typeSystem); s.Text != "Alice_2 left" {
		t.Fatalf("bob heard %q, want Alice_2 left", s.Text)
	}

	// The right secret under another name replaces Alice, in plain sight.
	carol := ts.dialQuery(t, "room", "username=Carol&rejoin="+w.Rejoin)
	if cw, _ := carol.welcome(); cw.Username != "Carol" {
		t.Fatalf("joined as %q, want Carol", cw.Username)
	}
	if code, _ := alice.closeStatus(); code != closeReplaced {
		t.Fatalf("alice closed with %d, want %d", code, closeReplaced)
	}
	left := skipUntil[systemPayload](bob, typeSystem)
	joined := skipUntil[systemPayload](bob, typeSystem)
	if left.Text != "Alice left" || joined.Text != "Carol joined" {
		t.Fatalf("bob heard %q then %q, want Alice left, Carol joined", left.Text, joined.Text)
	}

	// A secret works once: the connection that used it has its own.
	again := ts.dialQuery(t, "room", "username=Carol&rejoin="+w.Rejoin)
	if aw, _ := again.welcome(); aw.Username != "Carol_2" {
		t.Fatalf("a spent secret joined as %q, want Carol_2", aw.Username)
	}
}

func TestRejoinIntoAFullRoom(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	_, out := ts.createRoomBody(t, `{"capacity":2}`)
	code := out["room"].(string)
	alice := ts.dial(t, code, "Alice")
	w, _ := alice.welcome()
	bob := ts.dial(t, code, "Bob")
	bob.welcome()

	// Someone else, even with a made-up secret, finds the room full.
	for _, q := range []string{"username=Carol", "username=Carol&rejoin=AAAAAAAAAAAAAAAAAAAAAA"} {
		if status, e := ts.refusal(t, code, q, nil); status != http.StatusConflict || e.Code != codeRoomFull {
			t.Fatalf("?%s in a full private room: %d %+v, want 409 room_full", q, status, e)
		}
	}
	// Alice's page, reconnecting before the server noticed her old
	// connection die, gets her place back instead of "room full".
	back := ts.dialQuery(t, code, "username=Alice&rejoin="+w.Rejoin)
	if bw, _ := back.welcome(); bw.Username != "Alice" {
		t.Fatalf("rejoined as %q, want Alice", bw.Username)
	}
	if c, _ := alice.closeStatus(); c != closeReplaced {
		t.Fatalf("the old connection closed with %d, want %d", c, closeReplaced)
	}
	if status, e := ts.refusal(t, code, "username=Carol", nil); status != http.StatusConflict || e.Code != codeRoomFull {
		t.Fatalf("a third person after the rejoin: %d %+v, want 409 room_full", status, e)
	}
	back.say("still here", "")
	if m := bob.nextMessage(); m.Username != "Alice" || m.Message != "still here" {
		t.Fatalf("bob got %+v, want Alice's message", m)
	}
}
