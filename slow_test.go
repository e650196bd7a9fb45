package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// These tests tell a slow member from a busy machine: a member whose
// writer has not run yet is kept past SEND_BUFFER and the grace, and a
// member that never reads is cut off once its queue passes
// SEND_BUFFER_BYTES, also when the room goes quiet after the burst.

// A member whose writer the scheduler has not run yet is not slow: the
// room keeps queuing for it past SEND_BUFFER, even for longer than the
// grace, and it gets everything once its writer runs.
func TestHeldWriterIsNotMistakenForSlow(t *testing.T) {
	t.Parallel()
	const budget, sent, burst = 8, 3 * 8, 4
	ts := setupTest(t, map[string]string{"MESSAGE_RATE": "0", "SEND_BUFFER": fmt.Sprint(budget), "HISTORY_SIZE": "0"})
	hold := holdWriterOf(ts, "sender")
	sender := ts.dial(t, "held", "sender")
	sender.welcome()
	reader := ts.dial(t, "held", "reader")
	reader.welcome()
	skipUntil[userCountPayload](sender, typeUserCount)

	// The sender's next writer turn waits until the test releases it; its
	// echoes pile up meanwhile. Messages go in bursts, which the room queues
	// rather than writing each directly, so a turn starts; however slow the
	// machine, it is held before sent more are said, and each of those
	// waits in the queue behind it.
	hold.armed.Store(true)
	said := 0
	post := func() {
		for i := range burst {
			sender.say(fmt.Sprint(said+i), "")
		}
		for range burst {
			if got := reader.nextMessage(); got.Message != fmt.Sprint(said) {
				t.Fatalf("reader got %q, want %q", got.Message, fmt.Sprint(said))
			}
			said++
		}
	}
	for hold.held.Load() == nil {
		if said >= 100*burst {
			t.Fatalf("the sender's writer never started a turn to be held in %d messages", said)
		}
		post()
	}
	for range sent / burst {
		post()
	}
	c := hold.held.Load()
	c.mu.Lock()
	queued := len(c.queue)
	c.mu.Unlock()
	if queued <= budget {
		t.Fatalf("%d frames queued for the held sender, want more than SEND_BUFFER=%d", queued, budget)
	}
	// Past the grace with nothing written is still no evidence.
	time.Sleep(2 * slowGrace)
	sender.say("last", "")
	if got := reader.nextMessage(); got.Message != "last" {
		t.Fatalf("reader got %q, want last", got.Message)
	}
	close(hold.release)
	for i := range said {
		if got := sender.nextMessage(); got.Message != fmt.Sprint(i) {
			t.Fatalf("sender's echo %d is %q", i, got.Message)
		}
	}
	if got := sender.nextMessage(); got.Message != "last" {
		t.Fatalf("sender's last echo is %q", got.Message)
	}
}

// A member that never reads is cut off once the bytes queued for it pass
// SEND_BUFFER_BYTES, long before its frames near SEND_BUFFER; the others get
// every message in order.
func TestNonReaderIsCutOffAtByteBudget(t *testing.T) {
	t.Parallel()
	const frames, n, window = 10000, 6000, 4
	ts := setupTest(t, map[string]string{
		"MESSAGE_RATE": "0", "HISTORY_SIZE": "0",
		"SEND_BUFFER": fmt.Sprint(frames), "SEND_BUFFER_BYTES": fmt.Sprint(64 << 10),
	})
	sender := ts.dial(t, "bytes", "sender")
	sender.welcome()
	reader := ts.dial(t, "bytes", "reader")
	reader.welcome()
	sleepy := ts.dial(t, "bytes", "sleepy") // reads nothing until it is cut off
	skipUntil[userCountPayload](reader, typeUserCount)
	sleepyMember := ts.member(t, "bytes", "sleepy")
	go sender.discardAll()
	received := make(chan struct{}, n)
	payload := strings.Repeat("b", 4000)
	go sender.sendNumbered(n, window, payload, received)
	leftAt := -1
	overFrames, overBytes := -1, -1 // sleepy's queue when first seen over its budget
	for i := range n {
		if reader.nextNumbered(i, "sleepy") {
			leftAt = i
		}
		if overFrames < 0 {
			overFrames, overBytes = sleepyMember.queueIfOver()
		}
		received <- struct{}{}
		if leftAt >= 0 {
			break
		}
	}
	if leftAt < 0 {
		t.Fatalf("sleepy was not cut off after %d messages of 4 KB", n)
	}
	// The bytes put it over: a few messages past SEND_BUFFER_BYTES (the
	// window lets the room run ahead of this check), nowhere near SEND_BUFFER.
	if overFrames < 0 || overBytes > 2*(64<<10) || overFrames > frames/10 {
		t.Fatalf("sleepy's queue was first seen over its budget with %d frames and %d bytes, want about SEND_BUFFER_BYTES=%d and far below SEND_BUFFER=%d",
			overFrames, overBytes, 64<<10, frames)
	}
	if code, reason := sleepy.closeStatus(); code != websocket.StatusPolicyViolation || reason != reasonTooSlow {
		t.Fatalf("sleepy closed with %d %q, want 1008 %q", code, reason, reasonTooSlow)
	}
}

// sendNumbered sends n messages "i payload", staying at most window ahead of
// the receipts counted on received. It stops when a write fails.
func (c *testClient) sendNumbered(n, window int, payload string, received <-chan struct{}) {
	c.sendNumberedUntil(n, window, payload, received, nil)
}

// sendNumberedUntil is sendNumbered that also stops once stop is closed.
func (c *testClient) sendNumberedUntil(n, window int, payload string, received <-chan struct{}, stop <-chan struct{}) {
	for i := range n {
		if i >= window {
			select {
			case <-received:
			case <-stop:
				return
			}
		}
		b, _ := json.Marshal(outEnvelope{Type: typeChatMessage, Payload: inboundMessage{Message: fmt.Sprintf("%d %s", i, payload)}})
		if c.conn.Write(context.Background(), websocket.MessageText, b) != nil {
			return
		}
	}
}

// nextNumbered reads to the next chat message, which must be number i from
// sendNumbered, and reports whether the room heard before it that who left.
func (c *testClient) nextNumbered(i int, who string) (left bool) {
	c.t.Helper()
	e := c.next()
	for e.Type != typeChatMessage {
		left = left || e.Type == typeSystem && strings.Contains(string(e.Payload), who+" left")
		e = c.next()
	}
	var m chatMessagePayload
	json.Unmarshal(e.Payload, &m)
	if !strings.HasPrefix(m.Message, fmt.Sprintf("%d ", i)) {
		c.t.Fatalf("got message %.10q at position %d", m.Message, i)
	}
	return left
}

// writerHold holds back one writer turn of a member, as a busy scheduler
// might: once armed, the member's next turn waits until release is closed.
type writerHold struct {
	armed   atomic.Bool
	held    atomic.Pointer[client] // the member, once its turn is held
	release chan struct{}
}

// holdWriterOf installs a writerHold for the member called name; call it
// before anyone joins.
func holdWriterOf(ts *testServer, name string) *writerHold {
	h := &writerHold{release: make(chan struct{})}
	ts.srv.beforeWriterTurn = func(c *client) {
		if c.name == name && h.armed.CompareAndSwap(true, false) {
			h.held.Store(c)
			<-h.release
		}
	}
	return h
}

// A member that stopped reading is cut off even when the room goes quiet
// once its queue is over budget: nothing more is queued for it, so the
// write watchdog must find it.
func TestNonReaderIsCutOffWhenTheRoomGoesQuiet(t *testing.T) {
	t.Parallel()
	const n, window = 8000, 4
	ts := setupTest(t, map[string]string{
		"MESSAGE_RATE": "0", "HISTORY_SIZE": "0",
		"SEND_BUFFER": "10000", "SEND_BUFFER_BYTES": fmt.Sprint(64 << 10),
		"WRITE_TIMEOUT": "1m", // so that only the slow rule can end sleepy in time
	})
	sender := ts.dial(t, "quiet", "sender")
	sender.welcome()
	reader := ts.dial(t, "quiet", "reader")
	reader.welcome()
	sleepyConn := ts.dial(t, "quiet", "sleepy") // reads nothing until it is cut off
	reader.waitForCount(3)
	sleepy := ts.member(t, "quiet", "sleepy")
	go sender.discardAll()
	// Send until sleepy's queue is over budget behind a blocked write, then
	// say nothing more.
	received := make(chan struct{}, n)
	payload := strings.Repeat("q", 4000)
	stop := make(chan struct{})
	go sender.sendNumberedUntil(n, window, payload, received, stop)
	sent := 0
	for ; sent < n && !sleepy.stillOverBudget(); sent++ {
		if reader.nextNumbered(sent, "sleepy") {
			t.Fatalf("sleepy was cut off while the room was busy; this test is about a quiet room")
		}
		received <- struct{}{}
	}
	close(stop)
	if sent == n {
		t.Fatalf("sleepy's queue never went over budget behind a blocked write after %d messages", n)
	}
	for {
		e := reader.next()
		if e.Type == typeSystem && strings.Contains(string(e.Payload), "sleepy left") {
			break
		}
	}
	if code, reason := sleepyConn.closeStatus(); code != websocket.StatusPolicyViolation || reason != reasonTooSlow {
		t.Fatalf("sleepy closed with %d %q, want 1008 %q", code, reason, reasonTooSlow)
	}
}

// member finds the server's client for the member of room called name.
func (ts *testServer) member(t *testing.T, room, name string) *client {
	t.Helper()
	ts.srv.mu.Lock()
	r := ts.srv.rooms[room]
	ts.srv.mu.Unlock()
	if r == nil {
		t.Fatalf("no room %q", room)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.members {
		if m.name == name {
			return m
		}
	}
	t.Fatalf("no member %q in %q", name, room)
	return nil
}

// stillOverBudget reports whether c's queue is over budget while a write
// to it is under way.
func (c *client) stillOverBudget() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.overSince.IsZero() && c.writingSince.Load() != 0
}

// queueIfOver returns how many frames and bytes are queued for c while
// its queue is over budget, or -1, -1 while it is within.
func (c *client) queueIfOver() (frames, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.overSince.IsZero() {
		return -1, -1
	}
	return len(c.queue), c.queuedBytes
}

// discardAll reads and drops everything until the connection ends.
func (c *testClient) discardAll() {
	for {
		if _, _, err := c.conn.Read(context.Background()); err != nil {
			return
		}
	}
}
