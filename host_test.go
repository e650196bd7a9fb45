package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// These tests cover hosted rooms on the server: a lock that turns away
// newcomers but lets members back, knocks admitted, denied and bounded, a
// removed member kept out, the host role handed over and passed on, bad
// host commands refused to the sender alone, and credentials that reach
// nobody else. The page's side is in test/host_browser_test.go.

// hostEnv makes every test client's address the X-Test-IP header, so that
// one test can be several people.
var hostEnv = map[string]string{"CLIENT_IP_HEADER": "X-Test-IP", "HOST_GRACE": "1m"}

// shortGraceEnv is hostEnv for the tests that wait for HOST_GRACE to pass.
// Every other test keeps a long grace, so that a member coming back on a
// busy machine is never late.
var shortGraceEnv = map[string]string{"CLIENT_IP_HEADER": "X-Test-IP", "HOST_GRACE": "100ms"}

// createHosted creates a room through POST /api/rooms with body and
// returns its code and the creator's credential.
func createHosted(t *testing.T, ts *testServer, body string) (room, credential string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/api/rooms", strings.NewReader(body))
	var out map[string]any
	if resp := getJSON(t, req, &out); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %v", resp.StatusCode, out)
	}
	room, _ = out["room"].(string)
	credential, _ = out["host"].(string)
	if len(credential) != 22 {
		t.Fatalf("host credential %q, want 22 base64url characters", credential)
	}
	return room, credential
}

// knockFrom opens a WebSocket to room from the address ip with a raw
// query: a join, or a knock where the room knocks.
func (ts *testServer) knockFrom(t *testing.T, room, ip, query string) *testClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, ts.wsURL(room, query),
		&websocket.DialOptions{HTTPHeader: http.Header{"X-Test-IP": {ip}}})
	if err != nil {
		t.Fatalf("dial %s from %s: %v (response %v)", room, ip, err, resp)
	}
	conn.SetReadLimit(1 << 24)
	t.Cleanup(func() { conn.CloseNow() })
	return &testClient{t: t, conn: conn}
}

// refusalFrom is refusal from the address ip.
func (ts *testServer) refusalFrom(t *testing.T, room, ip, query string) (int, errorPayload) {
	t.Helper()
	return ts.refusal(t, room, query, http.Header{"X-Test-IP": {ip}})
}

// host sends a host command.
func (c *testClient) host(cmd hostCommand) {
	c.t.Helper()
	b, _ := json.Marshal(outEnvelope{Type: typeHost, Payload: cmd})
	c.sendRaw(string(b))
}

// waitSystem reads past other frames to a system notice holding text.
func (c *testClient) waitSystem(text string) {
	c.t.Helper()
	for !strings.Contains(skipUntil[systemPayload](c, typeSystem).Text, text) {
	}
}

// waitHostState reads past other frames to a hostState for which ok holds.
func (c *testClient) waitHostState(ok func(hostStatePayload) bool) hostStatePayload {
	c.t.Helper()
	for {
		if p := skipUntil[hostStatePayload](c, typeHostState); ok(p) {
			return p
		}
	}
}

// waitError reads past other frames to an error frame and returns its code.
func (c *testClient) waitError() string {
	c.t.Helper()
	return skipUntil[errorPayload](c, typeError).Code
}

// hostedRoom is a created room with alice, its host, and the credential.
func hostedRoom(t *testing.T, ts *testServer, body string) (room, cred string, alice *testClient) {
	t.Helper()
	room, cred = createHosted(t, ts, body)
	alice = ts.knockFrom(t, room, "10.0.0.1", "username=alice")
	alice.welcome()
	alice.host(hostCommand{Credential: cred, Op: opClaim})
	if p := expect[hostStatePayload](alice, typeHostState); !p.Host || len(p.Hosts) != 1 || p.Hosts[0] != "alice" {
		t.Fatalf("claim answered %+v, want alice as the one host", p)
	}
	return room, cred, alice
}

func TestLockRefusesNewcomersAndLetsMembersBack(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, hostEnv)
	room, cred, alice := hostedRoom(t, ts, "")
	bob := ts.knockFrom(t, room, "10.0.0.2", "username=bob")
	w, _ := bob.welcome()
	alice.host(hostCommand{Credential: cred, Op: opLock})
	bob.waitSystem("alice locked the room")

	status, e := ts.refusalFrom(t, room, "10.0.0.3", "username=carol")
	if status != http.StatusForbidden || e.Code != codeRoomLocked {
		t.Fatalf("newcomer to a locked room: %d %+v, want 403 room_locked", status, e)
	}
	// Bob's connection ends; he comes back with his rejoin secret.
	bob.conn.CloseNow()
	alice.waitForCount(1)
	back := ts.knockFrom(t, room, "10.0.0.2", "username=bob&rejoin="+w.Rejoin)
	if w2, _ := back.welcome(); w2.Username != "bob" {
		t.Fatalf("bob came back as %q", w2.Username)
	}
	alice.host(hostCommand{Credential: cred, Op: opUnlock})
	alice.waitSystem("alice unlocked the room")
	ts.knockFrom(t, room, "10.0.0.3", "username=carol").welcome()
}

func TestKnockThenAdmitAndDeny(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, hostEnv)
	room, cred, alice := hostedRoom(t, ts, "")
	alice.host(hostCommand{Credential: cred, Op: opKnockOn})
	alice.waitHostState(func(p hostStatePayload) bool { return p.Knocking })
	alice.say("before carol", "m1")

	carol := ts.knockFrom(t, room, "10.0.0.3", "username=carol")
	expect[struct{}](carol, typeKnocking)
	knock := alice.waitHostState(func(p hostStatePayload) bool { return len(p.Knocks) == 1 }).Knocks[0]
	if knock.Name != "carol" {
		t.Fatalf("knock %+v, want carol", knock)
	}
	alice.say("while carol waits", "m2")
	carol.say("let me in", "c1") // goes nowhere
	carol.sendRaw(`{"type":"ping","payload":{}}`)
	expect[struct{}](carol, typePong) // the server has read her message
	alice.host(hostCommand{Credential: cred, Op: opAdmit, Knock: knock.ID})
	// The first thing carol hears after knocking is her welcome: nothing
	// of the room reached her while she waited.
	w, history := carol.welcome()
	if w.Username != "carol" || len(history) != 2 {
		t.Fatalf("admitted carol: %+v with %d messages, want carol and the 2 messages", w, len(history))
	}
	alice.waitSystem("carol joined")
	alice.say("after", "m3")
	if m := alice.nextMessage(); m.Message != "after" {
		t.Fatalf("alice got %q from %s, want her own message: a knocker's text reached the room", m.Message, m.Username)
	}

	dave := ts.knockFrom(t, room, "10.0.0.4", "username=dave")
	expect[struct{}](dave, typeKnocking)
	knock = alice.waitHostState(func(p hostStatePayload) bool { return len(p.Knocks) == 1 }).Knocks[0]
	alice.host(hostCommand{Credential: cred, Op: opDeny, Knock: knock.ID})
	if code, reason := dave.closeStatus(); code != closeDenied || reason != reasonDenied {
		t.Fatalf("denied dave closed with %d %q, want %d", code, reason, closeDenied)
	}
	if status, e := ts.refusalFrom(t, room, "10.0.0.4", "username=dave"); status != http.StatusForbidden || e.Code != codeKnockRefused {
		t.Fatalf("dave knocking again: %d %+v, want 403 knock_refused", status, e)
	}
	alice.host(hostCommand{Credential: cred, Op: opAdmit, Knock: knock.ID})
	if code := alice.waitError(); code != codeNoSuchKnock {
		t.Fatalf("admitting a knock that ended: %s, want no_such_knock", code)
	}
}

func TestKnocksAreBounded(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, hostEnv)
	room, cred, alice := hostedRoom(t, ts, "")
	alice.host(hostCommand{Credential: cred, Op: opKnockOn})
	alice.waitHostState(func(p hostStatePayload) bool { return p.Knocking })
	// Per address: two wait, the third is refused.
	for range maxKnocksPerIP {
		expect[struct{}](ts.knockFrom(t, room, "10.0.1.1", "username=x"), typeKnocking)
	}
	if status, e := ts.refusalFrom(t, room, "10.0.1.1", "username=x"); status != http.StatusTooManyRequests || e.Code != codeKnockFull {
		t.Fatalf("third knock from one address: %d %+v, want 429 knock_full", status, e)
	}
	// Per room: maxKnocks wait, the next is refused.
	for i := maxKnocksPerIP; i < maxKnocks; i++ {
		expect[struct{}](ts.knockFrom(t, room, "10.0.2."+string(rune('0'+i)), "username=y"), typeKnocking)
	}
	if status, e := ts.refusalFrom(t, room, "10.0.3.1", "username=z"); status != http.StatusTooManyRequests || e.Code != codeKnockFull {
		t.Fatalf("knock past %d waiting: %d %+v, want 429 knock_full", maxKnocks, status, e)
	}
	// Per minute: one address that keeps knocking and giving up runs out.
	room2, cred2, bob := hostedRoom(t, ts, "")
	bob.host(hostCommand{Credential: cred2, Op: opKnockOn})
	bob.waitHostState(func(p hostStatePayload) bool { return p.Knocking })
	for range knocksPerMinute - maxKnocksPerIP {
		k := ts.knockFrom(t, room2, "10.0.1.1", "username=x")
		expect[struct{}](k, typeKnocking)
		bob.waitHostState(func(p hostStatePayload) bool { return len(p.Knocks) == 1 })
		k.conn.CloseNow()
		bob.waitHostState(func(p hostStatePayload) bool { return len(p.Knocks) == 0 })
	}
	if status, e := ts.refusalFrom(t, room2, "10.0.1.1", "username=x"); status != http.StatusTooManyRequests || e.Code != codeRateLimited {
		t.Fatalf("knock past %d a minute: %d %+v, want 429 rate_limited", knocksPerMinute, status, e)
	}
}

func TestRemovedMemberIsClosedAndCannotComeStraightBack(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, hostEnv)
	room, cred, alice := hostedRoom(t, ts, "")
	bob := ts.knockFrom(t, room, "10.0.0.2", "username=bob")
	w, _ := bob.welcome()
	carol := ts.knockFrom(t, room, "10.0.0.3", "username=carol")
	carol.welcome()
	alice.host(hostCommand{Credential: cred, Op: opRemove, Name: "bob"})
	if code, reason := bob.closeStatus(); code != closeRemoved || reason != reasonRemoved {
		t.Fatalf("removed bob closed with %d %q, want %d", code, reason, closeRemoved)
	}
	carol.waitSystem("bob was removed.")
	alice.waitSystem("Knocking is on now, so bob cannot come straight back.")
	if p := alice.waitHostState(func(hostStatePayload) bool { return true }); !p.Knocking {
		t.Fatalf("after a removal the room does not knock: %+v", p)
	}
	if status, e := ts.refusalFrom(t, room, "10.0.0.2", "username=bob&rejoin="+w.Rejoin); status != http.StatusForbidden || e.Code != codeKnockRefused {
		t.Fatalf("removed bob coming back: %d %+v, want 403 knock_refused", status, e)
	}
	// From another address, his old secret does not get him past the door.
	expect[struct{}](ts.knockFrom(t, room, "10.0.0.9", "username=bob&rejoin="+w.Rejoin), typeKnocking)

	alice.host(hostCommand{Credential: cred, Op: opRemove, Name: "bob"})
	if code := alice.waitError(); code != codeNoSuchMember {
		t.Fatalf("removing a member who has gone: %s, want no_such_member", code)
	}
}

func TestHostRoleIsPromotedHandedOverAndPassedOn(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, shortGraceEnv)
	room, cred, alice := hostedRoom(t, ts, "")
	bob := ts.knockFrom(t, room, "10.0.0.2", "username=bob")
	bob.welcome()
	carol := ts.knockFrom(t, room, "10.0.0.3", "username=carol")
	carol.welcome()

	alice.host(hostCommand{Credential: cred, Op: opPromote, Name: "bob"})
	bobCred := bob.waitHostState(func(p hostStatePayload) bool { return p.Credential != "" }).Credential
	carol.waitSystem("alice made bob a host.")
	bob.host(hostCommand{Credential: bobCred, Op: opHandOver, Name: "carol"})
	if p := bob.waitHostState(func(p hostStatePayload) bool { return !p.Host }); p.Credential != "" {
		t.Fatalf("bob, no longer host, got %+v", p)
	}
	carolCred := carol.waitHostState(func(p hostStatePayload) bool { return p.Credential != "" }).Credential
	bob.host(hostCommand{Credential: bobCred, Op: opLock})
	if code := bob.waitError(); code != codeNotHost {
		t.Fatalf("a handed-over credential: %s, want not_host", code)
	}

	// Every host leaves: after HOST_GRACE the role passes to the member
	// present longest, bob, and the old credentials stop working.
	alice.conn.Close(websocket.StatusNormalClosure, "")
	carol.conn.Close(websocket.StatusNormalClosure, "")
	newCred := bob.waitHostState(func(p hostStatePayload) bool { return p.Credential != "" }).Credential
	bob.waitSystem("bob is now the host: the host left.")
	back := ts.knockFrom(t, room, "10.0.0.1", "username=alice")
	back.welcome()
	back.host(hostCommand{Credential: carolCred, Op: opClaim})
	if code := back.waitError(); code != codeNotHost {
		t.Fatalf("a credential from before the hand-over: %s, want not_host", code)
	}
	bob.host(hostCommand{Credential: newCred, Op: opLock})
	bob.waitSystem("bob locked the room")
	_ = cred
}

func TestBadHostCommandsAreRefusedToTheSenderAlone(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, hostEnv)
	room, cred, alice := hostedRoom(t, ts, "")
	bob := ts.knockFrom(t, room, "10.0.0.2", "username=bob")
	bob.welcome()
	alice.waitForCount(2)
	cases := []struct {
		frame string
		code  string
	}{
		{`{"type":"host","payload":{"op":"lock"}}`, codeNotHost},
		{`{"type":"host","payload":{"credential":"AAAAAAAAAAAAAAAAAAAAAA","op":"lock"}}`, codeNotHost},
		{`{"type":"host","payload":{"credential":` + jsonString(forged(cred)) + `,"op":"remove","name":"alice"}}`, codeNotHost},
		{`{"type":"host","payload":"lock"}`, codeBadMessage},
	}
	for _, c := range cases {
		bob.sendRaw(c.frame)
		if code := bob.waitError(); code != c.code {
			t.Fatalf("%s: %s, want %s", c.frame, code, c.code)
		}
	}
	for _, c := range []struct {
		cmd  hostCommand
		code string
	}{
		{hostCommand{Credential: cred, Op: "explode"}, codeBadMessage},
		{hostCommand{Credential: cred, Op: opRemove, Name: "zed"}, codeNoSuchMember},
		{hostCommand{Credential: cred, Op: opRemove, Name: "alice"}, codeBadMessage},
		{hostCommand{Credential: cred, Op: opAdmit, Knock: 7}, codeNoSuchKnock},
		{hostCommand{Credential: cred, Op: opMove, To: []string{"bob"}, Sealed: "e1.AAAA"}, codeNotEncrypted},
	} {
		alice.host(c.cmd)
		if code := alice.waitError(); code != c.code {
			t.Fatalf("%+v: %s, want %s", c.cmd, code, c.code)
		}
	}
	// Bob heard nothing of alice's refusals, and the room did not change:
	// the next thing he hears is alice's message.
	alice.say("still here", "m1")
	if e := bob.next(); e.Type != typeChatMessage {
		t.Fatalf("bob got %s %s, want alice's message", e.Type, e.Payload)
	}
	// A named room has no host.
	named := ts.knockFrom(t, "lobby", "10.0.0.5", "username=dan")
	named.welcome()
	named.host(hostCommand{Credential: cred, Op: opLock})
	if code := named.waitError(); code != codeNotHost {
		t.Fatalf("host command in a named room: %s, want not_host", code)
	}
	// A flood of commands is refused, then closed.
	for range controlBurst + 1 {
		alice.host(hostCommand{Credential: cred, Op: opClaim})
	}
	if code := alice.waitError(); code != codeRateLimited {
		t.Fatalf("flood of host commands: %s, want rate_limited", code)
	}
	for range abuseBurst + 5 {
		alice.host(hostCommand{Credential: cred, Op: opClaim})
	}
	if code, _ := alice.closeStatus(); code != websocket.StatusPolicyViolation {
		t.Fatalf("flood closed with %d, want 1008", code)
	}
	if strings.Contains(ts.logs.String(), cred) {
		t.Fatal("the host credential reached the logs")
	}
}

// forged is cred with its last character changed.
func forged(cred string) string {
	last := "A"
	if strings.HasSuffix(cred, last) {
		last = "B"
	}
	return cred[:len(cred)-1] + last
}

// jsonString quotes s as a JSON string.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestMoveReachesOnlyTheNamedMembersStillPresent(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, hostEnv)
	room, cred, alice := hostedRoom(t, ts, `{"e2ee":true}`)
	bob := ts.knockFrom(t, room, "10.0.0.2", "username=bob")
	bob.welcome()
	carol := ts.knockFrom(t, room, "10.0.0.3", "username=carol")
	carol.welcome()
	dave := ts.knockFrom(t, room, "10.0.0.4", "username=dave")
	dave.welcome()
	alice.host(hostCommand{Credential: cred, Op: opRemove, Name: "carol"})
	carol.closeStatus()
	alice.host(hostCommand{Credential: cred, Op: opMove, To: []string{"carol"}, Sealed: "not sealed"})
	if code := alice.waitError(); code != codeNotEncrypted {
		t.Fatalf("unsealed move: %s, want not_encrypted", code)
	}
	alice.host(hostCommand{Credential: cred, Op: opMove, To: []string{"bob", "carol"}, Sealed: "e1.c2VhbGVk"})
	if p := skipUntil[moveRoomPayload](bob, typeMoveRoom); p.From != "alice" || p.Sealed != "e1.c2VhbGVk" {
		t.Fatalf("bob's move: %+v", p)
	}
	// Dave was not named: the next frame he gets is alice's message.
	alice.say("e1.bWVzc2FnZQ", "m1")
	for {
		e := dave.next()
		if e.Type == typeMoveRoom {
			t.Fatal("dave, not named, got the move")
		}
		if e.Type == typeChatMessage {
			break
		}
	}
	var b bytes.Buffer
	ts.srv.metrics.writeTo(&b)
	for _, want := range []string{`hallway_host_events_total{event="remove"} 1`, `hallway_host_events_total{event="move"} 1`} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("metrics lack %s:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), cred) || strings.Contains(b.String(), "carol") {
		t.Fatal("metrics name a credential or a person")
	}
}

func TestAnotherServerKnowsTheCreatorByTheCode(t *testing.T) {
	t.Parallel()
	made := setupTest(t, hostEnv)
	room, cred := createHosted(t, made, `{"e2ee":true}`)
	// The room's link reaches another server (a node behind a load
	// balancer, or the machine the room moved to): it holds no host state,
	// but the code vouches for the creator's credential and no other.
	other := setupTest(t, hostEnv)
	bob := other.knockFrom(t, room, "10.0.0.2", "username=bob")
	bob.welcome()
	bob.host(hostCommand{Credential: forged(cred), Op: opClaim})
	if code := bob.waitError(); code != codeNotHost {
		t.Fatalf("a forged claim on another server: %s, want not_host", code)
	}
	alice := other.knockFrom(t, room, "10.0.0.1", "username=alice")
	alice.welcome()
	alice.host(hostCommand{Credential: cred, Op: opLock})
	if p := alice.waitHostState(func(p hostStatePayload) bool { return p.Locked }); !p.Host || p.Hosts[0] != "alice" {
		t.Fatalf("the creator on another server: %+v", p)
	}
	if status, e := other.refusalFrom(t, room, "10.0.0.3", "username=carol"); status != http.StatusForbidden || e.Code != codeRoomLocked {
		t.Fatalf("newcomer after the creator locked on another server: %d %+v", status, e)
	}
}

func TestCredentialsReachNobodyElseAndAReloadedHostClaimsItsWayIn(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, hostEnv)
	room, cred, alice := hostedRoom(t, ts, "")
	bob := ts.knockFrom(t, room, "10.0.0.2", "username=bob")
	bob.welcome()
	alice.host(hostCommand{Credential: cred, Op: opPromote, Name: "bob"})
	bobCred := bob.waitHostState(func(p hostStatePayload) bool { return p.Credential != "" }).Credential
	carol := ts.knockFrom(t, room, "10.0.0.3", "username=carol")
	carol.welcome()
	alice.host(hostCommand{Credential: cred, Op: opKnockOn})
	alice.host(hostCommand{Credential: cred, Op: opLock})
	alice.host(hostCommand{Credential: cred, Op: opUnlock})
	alice.say("done", "m1")
	// Carol, no host, heard notices and the message, and never a credential.
	for {
		e := carol.next()
		if bytes.Contains(e.Payload, []byte(cred)) || bytes.Contains(e.Payload, []byte(bobCred)) || e.Type == typeHostState {
			t.Fatalf("carol got %s %s", e.Type, e.Payload)
		}
		if e.Type == typeChatMessage {
			break
		}
	}
	// Alice's page reloads: a new connection without its rejoin secret
	// knocks, and her claim lets her straight in as host. Her name is
	// free once the server has seen the old connection go.
	alice.conn.CloseNow()
	carol.waitForCount(2)
	back := ts.knockFrom(t, room, "10.0.0.1", "username=alice")
	expect[struct{}](back, typeKnocking)
	back.host(hostCommand{Credential: cred, Op: opClaim})
	if w, _ := back.welcome(); w.Username != "alice" {
		t.Fatalf("the reloaded host joined as %q", w.Username)
	}
	if p := back.waitHostState(func(hostStatePayload) bool { return true }); !p.Host || p.Credential != "" {
		t.Fatalf("the reloaded host got %+v", p)
	}
	if strings.Contains(ts.logs.String(), cred) || strings.Contains(ts.logs.String(), bobCred) {
		t.Fatal("a credential reached the logs")
	}
}
