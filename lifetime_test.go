package main

// Tests of a room's and a connection's lifetime: empty rooms expire,
// dead peers are dropped, and shutdown closes every connection with 1001.

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestEmptyRoomExpires(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"ROOM_IDLE_TIMEOUT": "50ms"})
	alice := ts.dial(t, "brief", "alice")
	alice.welcome()
	alice.say("soon forgotten", "")
	alice.nextMessage()
	alice.conn.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(testTimeout)
	for {
		var h map[string]any
		getJSON(t, httptestGet(ts, "/healthz"), &h)
		if h["rooms"] == 0.0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("room never expired: %v", h)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, history := ts.dial(t, "brief", "bob").welcome(); len(history) != 0 {
		t.Fatalf("expired room replayed %v", history)
	}
}

func TestRoomWithMembersOutlivesIdleTimeout(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"ROOM_IDLE_TIMEOUT": "20ms"})
	alice := ts.dial(t, "busy", "alice")
	alice.welcome()
	alice.say("still here", "")
	alice.nextMessage()
	time.Sleep(200 * time.Millisecond) // ten idle timeouts, with a member present
	if _, history := ts.dial(t, "busy", "bob").welcome(); len(history) != 1 {
		t.Fatalf("room with a member lost its history: %v", history)
	}
}

func TestReloadKeepsHistory(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil) // default 5m idle timeout
	alice := ts.dial(t, "reload", "alice")
	alice.welcome()
	alice.say("before reload", "")
	alice.nextMessage()
	alice.conn.Close(websocket.StatusNormalClosure, "")
	// The room must survive empty: wait until the server has seen the leave,
	// or the reload could join beside the old connection as alice_2.
	waitFor(t, "the room to stand empty", func() bool {
		var health struct{ Rooms, Clients int }
		getJSON(t, httptestGet(ts, "/healthz"), &health)
		return health.Rooms == 1 && health.Clients == 0
	})
	w, history := ts.dial(t, "reload", "alice").welcome()
	if w.Username != "alice" || len(history) != 1 || history[0].Message != "before reload" {
		t.Fatalf("after reload joined as %q with history %v, want alice with the message", w.Username, history)
	}
}

func TestShutdownClosesWith1001AfterFlushing(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	alice := ts.dial(t, "bye", "alice")
	alice.welcome()
	bob := ts.dial(t, "bye", "bob")
	bob.welcome()
	alice.say("last words", "")
	alice.nextMessage()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	go ts.srv.shutdown(ctx)
	if m := bob.nextMessage(); m.Message != "last words" {
		t.Fatalf("bob got %+v before the close", m)
	}
	for _, c := range []*testClient{alice, bob} {
		if code, reason := c.closeStatus(); code != websocket.StatusGoingAway || reason != reasonRestarting {
			t.Fatalf("closed with %d %q, want 1001 %q", code, reason, reasonRestarting)
		}
	}
	if status, e := ts.refusal(t, "bye", "username=carol", nil); status != http.StatusServiceUnavailable || e.Code != codeShuttingDown {
		t.Fatalf("join during shutdown: %d %+v, want 503 shutting_down", status, e)
	}
}

func TestServeStopsCleanlyOnSignal(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, map[string]string{"SHUTDOWN_TIMEOUT": "5s"})
	l, err := listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, l, cfg, slog.New(slog.DiscardHandler)) }()
	ts := &testServer{Server: &httptest.Server{URL: "http://" + l.Addr().String()}}
	c := ts.dial(t, "lifetime", "alice")
	c.welcome()
	stop() // what SIGINT or SIGTERM does through shutdownContext
	if code, _ := c.closeStatus(); code != websocket.StatusGoingAway {
		t.Fatalf("closed with %d, want 1001", code)
	}
	if err := <-done; err != nil {
		t.Fatalf("serve returned %v, want nil", err)
	}
}

func TestDeadPeerIsDropped(t *testing.T) {
	t.Parallel()
	// Long enough that the watcher, which reads, always answers in time on
	// a busy machine (300 ms was not, under -race with the suite running);
	// the silent one never does.
	ts := setupTest(t, map[string]string{"PING_INTERVAL": "2s"})
	watcher := ts.dial(t, "ping", "watcher")
	watcher.welcome()
	// A coder/websocket client answers pings only while it reads; this one
	// stops reading after its welcome, like a frozen tab.
	silent := ts.dial(t, "ping", "silent")
	silent.welcome()
	for {
		if got := skipUntil[systemPayload](watcher, typeSystem); got.Text == "silent left" {
			break
		}
	}
}
