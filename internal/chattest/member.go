// Package chattest holds a chat member for tests that reach Hallway through
// a proxy or a load balancer: it speaks the wire protocol as any client
// does, rejoins like the page, and remembers what it heard. The fleet tests
// at the root and the load-balancer tests in test/ share it.
package chattest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// sayTimeout bounds one write of a message.
const sayTimeout = 10 * time.Second

// Member is one person in a room reached through a proxy or load
// balancer. Like the UI, it rejoins by itself whenever its connection ends
// or a handshake is refused, and it remembers every message it heard.
type Member struct {
	url  string // ws://…/ws/room?username=…
	room string
	N    int // the member's number, in its name m<N>

	mu      sync.Mutex
	conn    *websocket.Conn // nil until welcomed, and while rejoining
	heard   map[string]bool
	closes  map[websocket.StatusCode]int
	refused int
}

// StartMember joins room as member n through base and keeps it joined
// until ctx ends.
func StartMember(ctx context.Context, base, room string, n int) *Member {
	m := &Member{
		url:  "ws" + strings.TrimPrefix(base, "http") + "/ws/" + room + fmt.Sprintf("?username=m%d", n),
		room: room, N: n, heard: make(map[string]bool), closes: make(map[websocket.StatusCode]int),
	}
	go m.run(ctx)
	return m
}

// run joins, reads until the connection ends, and joins again.
func (m *Member) run(ctx context.Context) {
	for ctx.Err() == nil {
		conn, _, err := websocket.Dial(ctx, m.url, nil)
		if err != nil {
			m.mu.Lock()
			m.refused++
			m.mu.Unlock()
			sleepCtx(ctx, 50*time.Millisecond)
			continue
		}
		m.read(ctx, conn)
		conn.CloseNow()
		sleepCtx(ctx, 20*time.Millisecond)
	}
}

// read handles one connection's frames until it ends.
func (m *Member) read(ctx context.Context, conn *websocket.Conn) {
	defer func() {
		m.mu.Lock()
		m.conn = nil
		m.mu.Unlock()
	}()
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			m.mu.Lock()
			m.closes[websocket.CloseStatus(err)]++
			m.mu.Unlock()
			return
		}
		var e struct {
			Type    string `json:"type"`
			Payload struct {
				Message string `json:"message"`
			} `json:"payload"`
		}
		if json.Unmarshal(data, &e) != nil {
			continue
		}
		m.mu.Lock()
		switch e.Type {
		case "welcome":
			m.conn = conn
		case "chatMessage":
			m.heard[e.Payload.Message] = true
		}
		m.mu.Unlock()
	}
}

// Joined reports whether the member is in its room right now.
func (m *Member) Joined() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.conn != nil
}

// Say sends text on the current connection.
func (m *Member) Say(text string) error {
	m.mu.Lock()
	conn := m.conn
	m.mu.Unlock()
	if conn == nil {
		return fmt.Errorf("member %d of %s is not joined", m.N, m.room)
	}
	b, _ := json.Marshal(map[string]any{"type": "chatMessage", "payload": map[string]string{"message": text}})
	ctx, cancel := context.WithTimeout(context.Background(), sayTimeout)
	defer cancel()
	return conn.Write(ctx, websocket.MessageText, b)
}

// HasHeard reports whether the member heard text.
func (m *Member) HasHeard(text string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.heard[text]
}

// ClosedWith counts the connections that ended with code.
func (m *Member) ClosedWith(code websocket.StatusCode) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closes[code]
}

// sleepCtx waits for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// WaitUntil polls cond every 20ms until it returns "" and fails the test
// with its last answer after timeout.
func WaitUntil(t testing.TB, timeout time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not so after %v: %s", what, timeout, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// EveryoneHearsEveryone has each member say a line tagged with round, and
// waits, up to timeout for each step, until every member heard every other
// member of its room.
func EveryoneHearsEveryone(t testing.TB, rooms map[string][]*Member, round string, timeout time.Duration) {
	t.Helper()
	WaitUntil(t, timeout, "every member joined", func() string {
		for room, ms := range rooms {
			for _, m := range ms {
				if !m.Joined() {
					return fmt.Sprintf("member %d of %s is not joined", m.N, room)
				}
			}
		}
		return ""
	})
	for _, ms := range rooms {
		for _, m := range ms {
			if err := m.Say(fmt.Sprintf("%s from %d", round, m.N)); err != nil {
				t.Fatalf("round %s: %v", round, err)
			}
		}
	}
	WaitUntil(t, timeout, "round "+round+": every member hears every other", func() string {
		for room, ms := range rooms {
			for _, m := range ms {
				for _, other := range ms {
					if text := fmt.Sprintf("%s from %d", round, other.N); !m.HasHeard(text) {
						return fmt.Sprintf("in room %s member %d did not hear %q (a split room?)", room, m.N, text)
					}
				}
			}
		}
		return ""
	})
}
