package main

import (
	"context"
	"errors"
	"fmt"
	"hallway/internal/chattest"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// These tests check that what a request leaves behind in memory is sized by
// what the server keeps (a room name, a username, an address), not by the
// request that brought it: junk in a request line or a header must be
// freed with the request.

// retainedRooms is how many rooms each run of TestPaddedRequestsPinNothing
// joins: enough that a few kilobytes pinned per room stand out of the noise.
const retainedRooms = 60

// retainPadding is the junk each padded request carries, in its query and
// in its X-Forwarded-For header.
const retainPadding = 32 << 10

// heapInUse returns the live heap after collecting garbage twice, so
// finalizers and sweeping settle.
func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// retainedPerRoom joins retainedRooms new rooms on ts, one member each from
// its own address, each request padded with pad bytes of junk, and returns
// the heap the rooms and members hold, per room.
func retainedPerRoom(t *testing.T, ts *testServer, prefix string, pad int) float64 {
	t.Helper()
	junk := ""
	xffJunk := ""
	if pad > 0 {
		junk = "&pad=" + strings.Repeat("x", pad)
		xffJunk = strings.Repeat("192.0.2.1, ", pad/11) // entries a client may add in front
	}
	before := heapInUse()
	conns := make([]*websocket.Conn, 0, retainedRooms)
	for i := range retainedRooms {
		ip := fmt.Sprintf("10.9.%d.%d", i/250, i%250+1)
		h := http.Header{"X-Forwarded-For": {ip + ", " + xffJunk + ip}}
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		url := ts.wsURL(fmt.Sprintf("%s-%d", prefix, i), fmt.Sprintf("username=member%d%s", i, junk))
		conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
		cancel()
		if err != nil {
			t.Fatalf("join %d: %v", i, err)
		}
		c := &testClient{t: t, conn: conn}
		c.welcome()
		conns = append(conns, conn)
	}
	after := heapInUse()
	if rooms, clients := ts.srv.stats(); clients != retainedRooms {
		t.Fatalf("%d rooms, %d clients; want %d members joined", rooms, clients, retainedRooms)
	}
	for _, c := range conns {
		c.CloseNow()
	}
	return (float64(after) - float64(before)) / retainedRooms
}

// retainRounds is how many times each kind of join is measured; the
// median stands, so memory that goroutines of earlier tests free or take
// during one round does not decide the result.
const retainRounds = 3

func TestPaddedRequestsPinNothing(t *testing.T) {
	// Not parallel: it reads the heap of the whole test process.
	env := map[string]string{"JOIN_RATE": "0", "ROOM_CREATE_RATE": "0", "CLIENT_IP_HEADER": "X-Forwarded-For"}
	var plains, paddeds []float64
	for range retainRounds {
		plains = append(plains, retainedPerRoom(t, setupTest(t, env), "plain", 0))
		paddeds = append(paddeds, retainedPerRoom(t, setupTest(t, env), "padded", retainPadding))
	}
	slices.Sort(plains)
	slices.Sort(paddeds)
	plain, padded := plains[retainRounds/2], paddeds[retainRounds/2]
	t.Logf("heap held per room with one member, median of %d: %.0f bytes plain %.0f, %.0f bytes with %d bytes of junk per request %.0f", retainRounds, plain, plains, padded, retainPadding, paddeds)
	// Generous: the junk is eight times the allowed excess, so a single
	// pinned copy of it fails.
	if padded > 1.5*plain+float64(retainPadding)/8 {
		t.Errorf("a padded join holds %.0f bytes per room, a plain one %.0f: the request's junk outlives the request", padded, plain)
	}
}

func TestReplayTableIsBounded(t *testing.T) {
	t.Parallel()
	self, other := "1781954c0e4e18", "3d8d2e6b4c1f28"
	dns := &fakeDNS{}
	dns.set(self, other)
	m := startFlyMachine(t, self, dns, nil)
	chattest.WaitUntil(t, testTimeout, "the list to be read", func() string {
		m.srv.fleet.mu.Lock()
		defer m.srv.fleet.mu.Unlock()
		if m.srv.fleet.machines == nil {
			return "no list yet"
		}
		return ""
	})
	// The list lookup fails from now on, so nothing prunes on a refresh.
	dns.mu.Lock()
	dns.err = errors.New("no such host")
	dns.mu.Unlock()
	waitLog(t, m, "machine list lookup failed; keeping the last good one")
	f := m.srv.fleet
	f.noteReplayAt("expired", other, time.Now().Add(-2*replayMemory))

	// Plain page loads of new names, each with junk, from outsiders.
	var replayed atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{}}
			defer client.CloseIdleConnections()
			for i := w; i < maxReplays+maxReplays/2; i += 4 {
				resp, err := client.Get(fmt.Sprintf("%s/r/probe-%d?junk=%s", m.ts.URL, i, strings.Repeat("j", 512)))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.Header.Get("Fly-Replay") != "" {
					replayed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	f.mu.Lock()
	n := len(f.replayed)
	_, expiredKept := f.replayed["expired"]
	f.mu.Unlock()
	if n > maxReplays {
		t.Errorf("after %d replays the table holds %d, want at most %d", replayed.Load(), n, maxReplays)
	}
	if expiredKept {
		t.Error("an expired replay is still held after the table grew")
	}
}
