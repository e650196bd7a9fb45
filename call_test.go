package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// These tests cover a room's call on the server: a signal reaches only its
// recipient, bad, unsealed and flooding signals are refused while chat goes
// on, the call is full past CALL_MAX and off at zero, a member who goes
// leaves it, and each member gets TURN credentials of its own. The relay is
// tested in turn_test.go, calls in Chromium in test/call_browser_test.go.

// callFrame sends a call frame with action.
func (c *testClient) callFrame(action string) {
	c.t.Helper()
	c.sendRaw(`{"type":"call","payload":{"action":"` + action + `"}}`)
}

// signal sends data to the member named to.
func (c *testClient) signal(to, data string) {
	c.t.Helper()
	b, _ := json.Marshal(outEnvelope{Type: typeSignal, Payload: signalPayload{To: to, Data: json.RawMessage(data)}})
	c.sendRaw(string(b))
}

// waitCall reads past other frames to a call frame listing members.
func (c *testClient) waitCall(members ...string) {
	c.t.Helper()
	for {
		got := skipUntil[callInfo](c, typeCall)
		if slices.Equal(got.Members, members) {
			return
		}
	}
}

// expectError reads past other frames to an error frame and requires code.
func (c *testClient) expectError(code string) errorPayload {
	c.t.Helper()
	e := skipUntil[errorPayload](c, typeError)
	if e.Code != code {
		c.t.Fatalf("got error %q (%s), want %q", e.Code, e.Text, code)
	}
	return e
}

// chatStillWorks has from say text and requires to to receive it, so a
// refusal is shown to have cost the sender nothing; it fails on an error
// frame or anything else that is not a notice, a count, a call frame, a
// signal or the message.
func chatStillWorks(t *testing.T, from, to *testClient, text string) {
	t.Helper()
	from.say(text, "")
	for {
		e := to.next()
		switch e.Type {
		case typeChatMessage:
			var m chatMessagePayload
			json.Unmarshal(e.Payload, &m)
			if m.Message == text {
				return
			}
		case typeSystem, typeUserCount, typeCall, typeSignal:
		default:
			t.Fatalf("before %q got %s %s", text, e.Type, e.Payload)
		}
	}
}

// callOfTwo has alice and bob in a room with carol, alice and bob in its
// call, each having read the call frame that says so.
func callOfTwo(t *testing.T, ts *testServer, room string) (alice, bob, carol *testClient) {
	t.Helper()
	alice = ts.dial(t, room, "alice")
	alice.welcome()
	bob = ts.dial(t, room, "bob")
	bob.welcome()
	carol = ts.dial(t, room, "carol")
	w, _ := carol.welcome()
	if w.Call == nil || w.Call.Max != 6 || len(w.Call.Members) != 0 {
		t.Fatalf("carol's welcome call = %+v, want no members and max 6", w.Call)
	}
	alice.callFrame("join")
	alice.waitCall("alice") // Joins from two connections have no order of their own.
	bob.callFrame("join")
	for _, c := range []*testClient{alice, bob, carol} {
		c.waitCall("alice", "bob")
	}
	return alice, bob, carol
}

func TestCallSignalReachesOnlyItsRecipient(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	alice, bob, carol := callOfTwo(t, ts, "callroom")

	// A forged "from" is replaced by the sender's own name.
	alice.sendRaw(`{"type":"signal","payload":{"to":"bob","from":"carol","data":{"sdp":"v=0 offer"}}}`)
	got := skipUntil[signalPayload](bob, typeSignal)
	if got.From != "alice" || got.To != "" || !strings.Contains(string(got.Data), "v=0 offer") {
		t.Fatalf("bob got signal %+v, want from alice with the offer", got)
	}
	bob.signal("alice", `{"sdp":"v=0 answer"}`)
	if got := skipUntil[signalPayload](alice, typeSignal); got.From != "bob" || !strings.Contains(string(got.Data), "answer") {
		t.Fatalf("alice got signal %+v, want bob's answer", got)
	}
	// Carol, in the room but not the call, sees the chat but no signal.
	alice.say("after the signals", "")
	if e := carol.next(); e.Type != typeChatMessage {
		t.Fatalf("carol got %s %s, want only the chat message", e.Type, e.Payload)
	}

	// A newcomer learns the call from welcome; no signal is in history.
	dave := ts.dial(t, "callroom", "dave")
	w, history := dave.welcome()
	if w.Call == nil || !slices.Equal(w.Call.Members, []string{"alice", "bob"}) {
		t.Fatalf("dave's welcome call = %+v, want alice and bob", w.Call)
	}
	if len(history) != 1 || history[0].Message != "after the signals" {
		t.Fatalf("dave's history = %+v, want only the chat message", history)
	}
	for _, line := range strings.Split(ts.logs.String(), "\n") {
		if strings.Contains(line, "v=0") {
			t.Fatalf("the server logged a signal: %s", line)
		}
	}
}

func TestCallRefusesBadSignals(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	alice, bob, carol := callOfTwo(t, ts, "badsignals")
	for _, tc := range []struct {
		name, frame, code string
	}{
		{"to oneself", `{"type":"signal","payload":{"to":"alice","data":{}}}`, codeBadRecipient},
		{"to no one in the room", `{"type":"signal","payload":{"to":"mallory","data":{}}}`, codeBadRecipient},
		{"to a member outside the call", `{"type":"signal","payload":{"to":"carol","data":{}}}`, codeNotInCall},
		{"without a recipient", `{"type":"signal","payload":{"data":{}}}`, codeBadMessage},
		{"without data", `{"type":"signal","payload":{"to":"bob"}}`, codeBadMessage},
		{"not an object", `{"type":"signal","payload":"hello"}`, codeBadMessage},
		{"oversized", `{"type":"signal","payload":{"to":"bob","data":"` + strings.Repeat("x", maxSignalBytes) + `"}}`, codeSignalTooLarge},
		{"bad call action", `{"type":"call","payload":{"action":"dance"}}`, codeBadMessage},
	} {
		alice.sendRaw(tc.frame)
		alice.expectError(tc.code)
		chatStillWorks(t, alice, bob, "still here after "+tc.name)
	}
	// Carol, outside the call, cannot signal into it either.
	carol.signal("bob", `{}`)
	carol.expectError(codeNotInCall)
	chatStillWorks(t, carol, bob, "carol still chats")
}

func TestCallRefusesUnsealedSignalsInEncryptedRooms(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	_, out := ts.createRoomBody(t, `{"e2ee":true}`)
	code := out["room"].(string)
	alice := ts.dial(t, code, "alice")
	alice.welcome()
	bob := ts.dial(t, code, "bob")
	bob.welcome()
	alice.callFrame("join")
	alice.waitCall("alice") // Joins from two connections have no order of their own.
	bob.callFrame("join")
	alice.waitCall("alice", "bob")
	bob.waitCall("alice", "bob")

	alice.signal("bob", `{"sdp":"v=0 a=fingerprint:sha-256 AB:CD"}`)
	alice.expectError(codeNotEncrypted)
	alice.signal("bob", `"e1.c2VhbGVk"`)
	if got := skipUntil[signalPayload](bob, typeSignal); got.From != "alice" || string(got.Data) != `"e1.c2VhbGVk"` {
		t.Fatalf("bob got %+v, want alice's sealed signal", got)
	}
}

func TestCallSignalFloodIsRefusedAndChatGoesOn(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	alice, bob, _ := callOfTwo(t, ts, "flood")
	// Batches of signals, each followed by a ping: alice's answers up to
	// the pong say whether any of the batch was refused.
	refused := 0
	for sent := 0; refused == 0; sent += 10 {
		if sent > 2*signalBurst {
			t.Fatalf("%d signals sent at once and none refused", sent)
		}
		for range 10 {
			alice.signal("bob", `{"candidate":"x"}`)
		}
		alice.sendRaw(`{"type":"ping","payload":{}}`)
		for e := alice.next(); e.Type != typePong; e = alice.next() {
			if e.Type == typeError && strings.Contains(string(e.Payload), codeRateLimited) {
				refused++
			}
		}
	}
	chatStillWorks(t, alice, bob, "still chatting after the flood")
}

func TestCallFullPastCallMax(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"CALL_MAX": "2"})
	alice := ts.dial(t, "full", "alice")
	alice.welcome()
	bob := ts.dial(t, "full", "bob")
	bob.welcome()
	carol := ts.dial(t, "full", "carol")
	carol.welcome()
	alice.callFrame("join")
	alice.waitCall("alice") // Joins from two connections have no order of their own.
	bob.callFrame("join")
	carol.waitCall("alice", "bob")
	carol.callFrame("join")
	if e := carol.expectError(codeCallFull); !strings.Contains(e.Text, "2") {
		t.Fatalf("call_full text %q does not say the limit", e.Text)
	}
	chatStillWorks(t, carol, alice, "carol chats while the call is full")

	// When bob leaves, there is room again.
	bob.callFrame("leave")
	carol.waitCall("alice")
	carol.callFrame("join")
	alice.waitCall("alice", "carol")
}

func TestCallMemberWhoDisconnectsLeavesTheCall(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"METRICS_ADDR": ""})
	alice, bob, carol := callOfTwo(t, ts, "drop")
	bob.conn.CloseNow()
	alice.waitCall("alice")
	carol.waitCall("alice")
	var b strings.Builder
	ts.srv.metrics.writeTo(&b)
	for _, want := range []string{"hallway_calls_total 1\n", "hallway_call_joins_total 2\n", "hallway_call_participants 1\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(b.String(), "alice") {
		t.Error("metrics name a member")
	}
}

func TestCallOffWhenCallMaxIsZero(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"CALL_MAX": "0"})
	alice := ts.dial(t, "nocalls", "alice")
	w, _ := alice.welcome()
	if w.Call != nil || w.ICEServers != nil {
		t.Fatalf("welcome has call %+v and ICE servers %+v with calls off", w.Call, w.ICEServers)
	}
	alice.callFrame("join")
	alice.expectError(codeBadMessage)
}

func TestCallWelcomeGivesEachMemberItsOwnTURNCredentials(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{
		"TURN_PORT": "3478", "TURN_TCP_PORT": "3478", "TURN_PUBLIC_IP": "203.0.113.7", "TURN_SECRET": "s3cret",
		"ICE_SERVERS": `[{"urls":["turn:coturn.example.org:3478"]},{"urls":["stun:stun.example.org"]}]`,
	})
	alice := ts.dial(t, "creds", "alice")
	wa, _ := alice.welcome()
	bob := ts.dial(t, "creds", "bob")
	wb, _ := bob.welcome()
	if len(wa.ICEServers) != 3 {
		t.Fatalf("alice's ICE servers = %+v, want the relay, coturn and a STUN server", wa.ICEServers)
	}
	own := wa.ICEServers[0]
	wantURLs := []string{"stun:203.0.113.7:3478", "turn:203.0.113.7:3478?transport=udp", "turn:203.0.113.7:3478?transport=tcp"}
	if !slices.Equal(own.URLs, wantURLs) {
		t.Fatalf("relay URLs %v, want %v", own.URLs, wantURLs)
	}
	// coturn's use-auth-secret: the same secret signs the operator's relay.
	if c := wa.ICEServers[1]; c.Username != own.Username || c.Credential != own.Credential {
		t.Fatalf("coturn entry %+v lacks the member's credentials", c)
	}
	if s := wa.ICEServers[2]; s.Username != "" {
		t.Fatalf("STUN entry %+v got credentials", s)
	}
	expiry, id, ok := strings.Cut(own.Username, ":")
	if !ok || id == "" || strings.Contains(own.Username, "alice") || expiry == "" {
		t.Fatalf("username %q is not <expiry>:<id> without a name", own.Username)
	}
	if own.Credential != turnPassword([]byte("s3cret"), own.Username) {
		t.Fatalf("credential is not base64(HMAC-SHA1(secret, username))")
	}
	if wb.ICEServers[0].Username == own.Username {
		t.Fatal("two members got the same TURN username")
	}
}

func TestCallConfigRefusesNonsense(t *testing.T) {
	t.Parallel()
	for _, env := range []map[string]string{
		{"CALL_MAX": "-1"},
		{"TURN_PORT": "3478"}, // no public IP
		{"TURN_PORT": "3478", "TURN_PUBLIC_IP": "example.org"},
		{"TURN_TCP_PORT": "443"},
		{"TURN_RELAY_PORTS": "60000-50000"},
		{"ICE_SERVERS": `{"urls":"turn:x"}`},
		{"ICE_SERVERS": `[{"urls":["http://x"]}]`},
	} {
		if _, err := loadConfig(env); err == nil {
			t.Errorf("loadConfig(%v) accepted it", env)
		} else if k := firstKey(env); !strings.Contains(err.Error(), k) && !strings.Contains(err.Error(), "TURN_PUBLIC_IP") {
			t.Errorf("loadConfig(%v) = %v, which does not name %s", env, err, k)
		}
	}
}

// firstKey is the one key of a one-entry map.
func firstKey(m map[string]string) string {
	for k := range m {
		return k
	}
	return fmt.Sprint(m)
}
