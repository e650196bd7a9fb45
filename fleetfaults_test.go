package main

import (
	"context"
	"errors"
	"fmt"
	"hallway/internal/chattest"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// These tests cover one machine's side of routing: the machine list, the
// answers it gives, and the faults the issue names, each with its log line
// and a room that keeps working.

func TestParseMachines(t *testing.T) {
	t.Parallel()
	// A long record arrives as several strings, cut anywhere.
	got, err := parseMachines([]string{"3d8d2e6b4c1f28 ams,17819", "54c0e4e18 ams , 3d8d2e6b4c1f28 ams"})
	if err != nil || !slices.Equal(got, []string{"1781954c0e4e18", "3d8d2e6b4c1f28"}) {
		t.Errorf("parseMachines = %q, %v; want both machines, sorted, once", got, err)
	}
	for _, bad := range [][]string{nil, {""}, {"  "}, {"abc"}, {"abc ams,"}, {"ABC ams"}, {"abc ams extra"}, {"a/b ams"}} {
		if ids, err := parseMachines(bad); err == nil {
			t.Errorf("parseMachines(%q) = %q, want an error", bad, ids)
		}
	}
}

func TestRendezvousMovesOnlyWhatItMust(t *testing.T) {
	t.Parallel()
	three := []string{"1781954c0e4e18", "3d8d2e6b4c1f28", "6e8259d1c99038"}
	four := append(slices.Clone(three), "91852e37a4b448")
	const rooms = 4000
	perMachine := make(map[string]int)
	moved := 0
	for i := range rooms {
		room := fmt.Sprintf("room-%d", i)
		before, after := rendezvous(three, room), rendezvous(four, room)
		perMachine[after]++
		if before != after {
			moved++
			if after != four[3] {
				t.Fatalf("room %s moved from %s to %s, not to the new machine", room, before, after)
			}
		}
		if without := rendezvous(slices.Delete(slices.Clone(four), 1, 2), room); after != four[1] && without != after {
			t.Fatalf("removing %s moved room %s from %s", four[1], room, after)
		}
	}
	// A quarter of the rooms should move; allow a wide margin.
	if moved < rooms/6 || moved > rooms/3 {
		t.Errorf("%d of %d rooms moved to a fourth machine, want about a quarter", moved, rooms)
	}
	for id, n := range perMachine {
		if n < rooms/6 || n > rooms/3 {
			t.Errorf("machine %s owns %d of %d rooms, want about a quarter", id, n, rooms)
		}
	}
}

// roomOwnedBy finds a room name that ids rank in exactly the given order
// for their first len(order) places.
func roomOwnedBy(t *testing.T, ids []string, order ...string) string {
	t.Helper()
	for i := range 100000 {
		room := fmt.Sprintf("room-%d", i)
		rest := slices.Clone(ids)
		ok := true
		for _, want := range order {
			got := rendezvous(rest, room)
			if got != want {
				ok = false
				break
			}
			rest = slices.DeleteFunc(rest, func(id string) bool { return id == got })
		}
		if ok {
			return room
		}
	}
	t.Fatalf("no room ranks %v first", order)
	return ""
}

// dialWith joins room on m with extra request headers.
func dialWith(t *testing.T, m *flyMachine, room string, h http.Header) (*testClient, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := "ws" + strings.TrimPrefix(m.ts.URL, "http") + "/ws/" + room + "?username=alice"
	conn, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { conn.CloseNow() })
	return &testClient{t: t, conn: conn}, resp, nil
}

// chatsAlone checks that c is welcomed into a working room: it hears its
// own message.
func chatsAlone(t *testing.T, c *testClient) {
	t.Helper()
	c.welcome()
	c.say("still working", "")
	if m := c.nextMessage(); m.Message != "still working" {
		t.Fatalf("got %+v, want the room to echo the message", m)
	}
}

// waitLog waits until m has logged line.
func waitLog(t *testing.T, m *flyMachine, line string) {
	t.Helper()
	chattest.WaitUntil(t, testTimeout, "log line "+line, func() string {
		if !strings.Contains(m.logs.String(), line) {
			return "not logged yet; logs:\n" + m.logs.String()
		}
		return ""
	})
}

func TestMachineListFaults(t *testing.T) {
	t.Parallel()
	self, other := "1781954c0e4e18", "3d8d2e6b4c1f28"
	theirs := roomOwnedBy(t, []string{self, other}, other)
	mine := roomOwnedBy(t, []string{self, other}, self)

	// No list yet: every room is served here.
	dns := &fakeDNS{err: errors.New("no such host")}
	m := startFlyMachine(t, self, dns, nil)
	waitLog(t, m, "machine list lookup failed; serving every room here until one is read")
	c, _, err := dialWith(t, m, theirs, nil)
	if err != nil {
		t.Fatalf("with no machine list, a join failed: %v", err)
	}
	chatsAlone(t, c)
	dns.mu.Lock()
	dns.err = nil
	dns.mu.Unlock()
	dns.set(self, other)
	waitLog(t, m, "machine list is usable again")

	// Each bad read is logged once and ignored: the last good list stays.
	for _, fault := range []struct {
		entries []string
		err     error
		line    string
	}{
		{[]string{"not a machine list"}, nil, "machine list is malformed; keeping the last good one"},
		{nil, nil, `error="empty machine list"`},
		{nil, errors.New("timeout"), "machine list lookup failed; keeping the last good one"},
	} {
		dns := &fakeDNS{}
		dns.set(self, other)
		m := startFlyMachine(t, self, dns, nil)
		if got := replayTarget(t, m, theirs); got != other {
			t.Fatalf("fly-replay names %q, want %s", got, other)
		}
		dns.mu.Lock()
		dns.entries, dns.err = fault.entries, fault.err
		dns.mu.Unlock()
		waitLog(t, m, fault.line)
		time.Sleep(200 * time.Millisecond) // a few more rounds of FLEET_REFRESH
		if n := strings.Count(m.logs.String(), "keeping the last good one"); n != 1 {
			t.Errorf("%q: logged %d times, want once for the outage", fault.line, n)
		}
		if got := replayTarget(t, m, theirs); got != other {
			t.Errorf("after %q, fly-replay names %q, want %s still", fault.line, got, other)
		}
		c, _, err := dialWith(t, m, mine, nil)
		if err != nil {
			t.Fatalf("after %q, a join to a room of this machine failed: %v", fault.line, err)
		}
		chatsAlone(t, c)
		if strings.Contains(m.logs.String(), theirs) || strings.Contains(m.logs.String(), mine) {
			t.Error("a room name was logged")
		}
	}
}

// replayTarget asks m for room with a plain GET and returns the instance
// its fly-replay names ("" for none).
func replayTarget(t *testing.T, m *flyMachine, room string) string {
	t.Helper()
	resp := getJSON(t, httptestGet(&testServer{Server: m.ts}, "/ws/"+room), nil)
	v := resp.Header.Get("Fly-Replay")
	if v == "" {
		return ""
	}
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("a replay answered %d, want 409", resp.StatusCode)
	}
	return parseFlyReplay(v)["instance"]
}

func TestReplayIsNeverReplayedAgain(t *testing.T) {
	t.Parallel()
	self, other := "1781954c0e4e18", "3d8d2e6b4c1f28"
	dns := &fakeDNS{}
	dns.set(self, other)
	m := startFlyMachine(t, self, dns, nil)
	theirs := roomOwnedBy(t, []string{self, other}, other)
	chattest.WaitUntil(t, testTimeout, "the list to be read", func() string {
		if replayTarget(t, m, theirs) != other {
			return "no replay yet"
		}
		return ""
	})
	// The page of a room is routed like its WebSocket.
	if resp := getJSON(t, httptestGet(&testServer{Server: m.ts}, "/r/"+theirs), nil); resp.Header.Get("Fly-Replay") == "" {
		t.Errorf("GET /r/{room} of another machine's room = %d without fly-replay", resp.StatusCode)
	}
	// Already a replay: never replayed again. While its owner answers, the
	// client is asked to come back in a moment rather than split the room.
	src := http.Header{"Fly-Replay-Src": {"instance=" + other + ";region=ams;t=1"}}
	m.reach.set(other, true)
	_, resp, err := dialWith(t, m, theirs, src)
	refusedToRetry(t, "a replayed request for a room of a live machine", err, resp)
	waitLog(t, m, "a replayed request reached a machine that does not own its room; asking the client to retry")
}

func TestOwnerVanished(t *testing.T) {
	t.Parallel()
	self, gone, next := "1781954c0e4e18", "3d8d2e6b4c1f28", "6e8259d1c99038"
	ids := []string{self, gone, next}
	dns := &fakeDNS{}
	dns.set(ids...)
	m := startFlyMachine(t, self, dns, nil)
	failed := http.Header{"Fly-Replay-Failed": {"reason=unreachable"}}

	there := roomOwnedBy(t, ids, gone, next)
	chattest.WaitUntil(t, testTimeout, "the list to be read", func() string {
		if replayTarget(t, m, there) != gone {
			return "no replay yet"
		}
		return ""
	})
	// Fly hands the failed replay back. Next in line is another machine, and
	// a fallback cannot be replayed again: come back in a second.
	_, resp, err := dialWith(t, m, there, failed)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("fallback for a room whose next in line is another machine: %v, %v; want 503 with Retry-After: 1", err, resp)
	}
	waitLog(t, m, "replay to a room's owner failed; its rooms go to the next machine for a while")
	if got := replayTarget(t, m, there); got != next {
		t.Errorf("a room of the vanished machine is replayed to %q, want %s, next in line", got, next)
	}
	// Its rooms whose next in line is this machine are served here.
	c, _, err := dialWith(t, m, roomOwnedBy(t, ids, gone, self), failed)
	if err != nil {
		t.Fatalf("a fallback was refused: %v", err)
	}
	chatsAlone(t, c)
}

func TestFlyHeadersIgnoredOffFly(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	h := http.Header{"Fly-Replay-Src": {"instance=abc;region=ams;t=1"}, "Fly-Replay-Failed": {"reason=unreachable"}}
	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		conn, _, err := websocket.Dial(ctx, ts.wsURL("lobby", "username=alice"), &websocket.DialOptions{HTTPHeader: h})
		cancel()
		if err != nil {
			t.Fatalf("a join with Fly headers off Fly.io failed: %v", err)
		}
		chatsAlone(t, &testClient{t: t, conn: conn})
		conn.CloseNow()
	}
	if n := strings.Count(ts.logs.String(), "Fly.io replay headers arrived but FLY_MACHINE_ID or FLY_APP_NAME is not set; ignoring them"); n != 1 {
		t.Errorf("the stray headers were logged %d times, want once", n)
	}
}

func TestCreatedRoomNamesItsMachine(t *testing.T) {
	t.Parallel()
	self, other := "1781954c0e4e18", "3d8d2e6b4c1f28"
	dns := &fakeDNS{}
	dns.set(self, other)
	m := startFlyMachine(t, self, dns, nil)
	var res struct{ Room string }
	req, _ := http.NewRequest(http.MethodPost, m.ts.URL+"/api/rooms", nil)
	getJSON(t, req, &res)
	if !strings.HasSuffix(res.Room, "-"+self) {
		t.Fatalf("created room %q does not name machine %s", res.Room, self)
	}
	if _, ok := normalizeRoom(res.Room); !ok {
		t.Fatalf("created room %q is not a valid room name", res.Room)
	}
	if got := replayTarget(t, m, res.Room); got != "" {
		t.Errorf("this machine's own created room is replayed to %s", got)
	}
	// Off Fly.io codes are as before.
	ts := setupTest(t, nil)
	getJSON(t, func() *http.Request { r, _ := http.NewRequest(http.MethodPost, ts.URL+"/api/rooms", nil); return r }(), &res)
	if strings.Contains(res.Room, "-") || len(res.Room) != 16 {
		t.Errorf("off Fly.io, created room code %q, want 16 plain characters", res.Room)
	}
}

func TestIdleExit(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	cfg := testConfig(t, map[string]string{"IDLE_EXIT": "300ms", "ROOM_IDLE_TIMEOUT": "100ms"})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- serve(context.Background(), l, cfg, slog.New(slog.NewTextHandler(logs, nil))) }()
	// A member keeps the server up well past IDLE_EXIT.
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws://"+l.Addr().String()+"/ws/lobby?username=alice", nil)
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	c := &testClient{t: t, conn: conn}
	chatsAlone(t, c)
	time.Sleep(time.Second)
	c.say("still here", "")
	if m := c.nextMessage(); m.Message != "still here" {
		t.Fatalf("got %+v", m)
	}
	select {
	case err := <-done:
		t.Fatalf("the server exited (%v) while a member was in a room", err)
	default:
	}
	// Alone no more: the room expires, then the server exits cleanly.
	conn.Close(websocket.StatusNormalClosure, "")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v after idling, want nil (a clean exit)", err)
		}
	case <-time.After(testTimeout):
		t.Fatalf("the server did not exit after IDLE_EXIT with no rooms; logs:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "no rooms or connections for IDLE_EXIT; exiting") {
		t.Errorf("no log line for the idle exit:\n%s", logs)
	}
}

// warnings counts the warning lines m has logged.
func warnings(m *flyMachine) int { return strings.Count(m.logs.String(), "level=WARN") }

// refusedToRetry checks that a join was answered 503 room_moving with
// Retry-After: 1, before any upgrade.
func refusedToRetry(t *testing.T, what string, err error, resp *http.Response) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: joined, want a 503 asking to retry", what)
	}
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("%s: %v, %v; want 503 with Retry-After: 1", what, err, resp)
	}
}

func TestForgedReplayFailedIsConfirmedFirst(t *testing.T) {
	t.Parallel()
	self, other := "1781954c0e4e18", "3d8d2e6b4c1f28"
	ids := []string{self, other}
	dns := &fakeDNS{}
	dns.set(ids...)
	m := startFlyMachine(t, self, dns, nil)
	m.reach.set(other, true) // The owner is up and answers.
	theirs := roomOwnedBy(t, ids, other, self)
	chattest.WaitUntil(t, testTimeout, "the list to be read", func() string {
		if replayTarget(t, m, theirs) != other {
			return "no replay yet"
		}
		return ""
	})
	before := warnings(m)
	began := time.Now()
	// A plain request puts a replay on record; then the forged fallback.
	for i := range 10 {
		replayTarget(t, m, theirs)
		_, resp, err := dialWith(t, m, theirs, http.Header{"Fly-Replay-Failed": {"reason=unreachable"}})
		refusedToRetry(t, fmt.Sprintf("forged fallback %d", i), err, resp)
	}
	if got := replayTarget(t, m, theirs); got != other {
		t.Errorf("after forged fallbacks the room is replayed to %q, want its live owner %s", got, other)
	}
	if rooms, _ := m.health(t); rooms != 0 {
		t.Errorf("this machine holds %d rooms; a forged fallback split a room off its owner", rooms)
	}
	// One dial, and another per reachRecheck a slow machine took.
	if n, most := m.reach.count(), 1+int(time.Since(began)/reachRecheck); n < 1 || n > most {
		t.Errorf("%d dials to confirm 10 fallbacks, want at most %d (a recent answer is reused)", n, most)
	}
	if n := warnings(m) - before; n > 1 {
		t.Errorf("10 forged fallbacks logged %d warnings, want at most one", n)
	}
}

func TestForgedReplaySrcNeverSplitsARoom(t *testing.T) {
	t.Parallel()
	self, other := "1781954c0e4e18", "3d8d2e6b4c1f28"
	ids := []string{self, other}
	theirs := roomOwnedBy(t, ids, other, self)
	forged := http.Header{"Fly-Replay-Src": {"instance=" + other + ";region=ams;t=1"}}

	// The owner is up: a request that claims to be a replay is not served
	// here, since the room lives there; it cannot be replayed again either.
	dns := &fakeDNS{}
	dns.set(ids...)
	m := startFlyMachine(t, self, dns, nil)
	m.reach.set(other, true)
	chattest.WaitUntil(t, testTimeout, "the list to be read", func() string {
		if replayTarget(t, m, theirs) != other {
			return "no replay yet"
		}
		return ""
	})
	before := warnings(m)
	for i := range 10 {
		_, resp, err := dialWith(t, m, theirs, forged)
		refusedToRetry(t, fmt.Sprintf("forged replay %d", i), err, resp)
	}
	if rooms, _ := m.health(t); rooms != 0 {
		t.Errorf("this machine holds %d rooms; a forged Fly-Replay-Src split a room off its owner", rooms)
	}
	if n := warnings(m) - before; n > 1 {
		t.Errorf("10 forged replays logged %d warnings, want at most one", n)
	}

	// The owner is down and marked so: a forged replay naming it does not
	// clear the mark.
	m2 := startFlyMachine(t, self, dns, nil)
	chattest.WaitUntil(t, testTimeout, "the list to be read", func() string {
		if replayTarget(t, m2, theirs) != other {
			return "no replay yet"
		}
		return ""
	})
	if _, resp, err := dialWith(t, m2, theirs, http.Header{"Fly-Replay-Failed": {"reason=unreachable"}}); err != nil {
		t.Fatalf("a fallback for a room whose next in line is this machine was refused: %v %v", err, resp)
	}
	if got := replayTarget(t, m2, theirs); got != "" {
		t.Fatalf("after a confirmed failure the room is replayed to %q, want it served here", got)
	}
	c, _, err := dialWith(t, m2, roomOwnedBy(t, ids, other, self), forged)
	if err != nil {
		t.Fatalf("a replayed request for a room this machine now serves was refused: %v", err)
	}
	chatsAlone(t, c)
	if got := replayTarget(t, m2, theirs); got != "" {
		t.Errorf("a forged Fly-Replay-Src cleared the mark of a machine that is down: the room is replayed to %q", got)
	}
}
