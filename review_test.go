package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"
)

// These tests cover the smaller holes a review found: a rejoin secret
// presented many times at once, room existence told by the rate limiter,
// a client-chosen X-Forwarded-For entry, the page's policy, and names that
// mix look-alike scripts.

func TestOneRejoinSecretTakesOnePlace(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"JOIN_RATE": "0"})
	_, out := ts.createRoomBody(t, `{"capacity":2}`)
	code := out["room"].(string)
	alice := ts.dial(t, code, "Alice")
	w, _ := alice.welcome()
	ts.dial(t, code, "Bob").welcome()

	// Everyone who read Alice's secret dials at once.
	const dials = 24
	var wg sync.WaitGroup
	start := make(chan struct{})
	var mu sync.Mutex
	joined := 0
	for range dials {
		wg.Go(func() {
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			conn, _, err := websocket.Dial(ctx, ts.wsURL(code, "username=Alice&rejoin="+w.Rejoin), nil)
			if err == nil {
				t.Cleanup(func() { conn.CloseNow() })
				mu.Lock()
				joined++
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	ts.srv.mu.Lock()
	r := ts.srv.rooms[code]
	ts.srv.mu.Unlock()
	r.mu.Lock()
	members := len(r.members)
	r.mu.Unlock()
	if members > 2 || joined != 1 {
		t.Errorf("%d dials with one secret: %d joined, the room of 2 holds %d; want one to take Alice's place", dials, joined, members)
	}
}

func TestProbeDoesNotTellWhetherARoomExists(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"ROOM_CREATE_RATE": "1"})
	ts.dial(t, "exists", "Alice").welcome() // Spends the one new room a minute.
	status := func(room string) (int, string) {
		var e errorPayload
		resp := getJSON(t, httptestGet(ts, "/ws/"+room+"?username=Mallory"), &e)
		return resp.StatusCode, e.Code
	}
	gotS, gotC := status("exists")
	newS, newC := status("nothere")
	if gotS != newS || gotC != newC {
		t.Errorf("a plain GET answers %d %s for a room that exists and %d %s for one that does not", gotS, gotC, newS, newC)
	}
}

func TestForwardedForTakesTheProxysEntry(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"CLIENT_IP_HEADER": "X-Forwarded-For", "MAX_CONNS_PER_IP": "1"})
	// The proxy appends the address it saw; the client wrote the rest.
	dial := func(xff string) (*websocket.Conn, *http.Response, error) {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		return websocket.Dial(ctx, ts.wsURL("lobby", "username=Mallory"), &websocket.DialOptions{HTTPHeader: http.Header{"X-Forwarded-For": {xff}}})
	}
	first, _, err := dial("198.51.100.1, 203.0.113.9")
	if err != nil {
		t.Fatalf("first join: %v", err)
	}
	defer first.CloseNow()
	second, resp, err := dial("198.51.100.2, 203.0.113.9")
	if err == nil {
		second.CloseNow()
		t.Fatal("a second connection from 203.0.113.9 with another made-up first entry was let in past MAX_CONNS_PER_IP=1")
	}
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second join: %v %v, want 429", err, resp)
	}
	// Spaces and several header lines are read as one list.
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Add("X-Forwarded-For", "1.1.1.1, 2.2.2.2")
	req.Header.Add("X-Forwarded-For", " 203.0.113.9 ")
	if got := ts.srv.clientIP(req); got != "203.0.113.9" {
		t.Errorf("clientIP = %q, want the last entry 203.0.113.9", got)
	}
}

func TestPolicyTalksOnlyToThisServer(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	resp := getJSON(t, httptestGet(ts, "/"), nil)
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "connect-src 'self';") || strings.Contains(csp, "ws:") {
		t.Errorf("Content-Security-Policy %q, want connect-src 'self' alone", csp)
	}
	if h := resp.Header.Get("Strict-Transport-Security"); h != "" {
		t.Errorf("plain HTTP sent Strict-Transport-Security %q", h)
	}
	tls := httptest.NewTLSServer(ts.srv.handler())
	defer tls.Close()
	resp, err := tls.Client().Get(tls.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(h, "max-age=") {
		t.Errorf("over TLS, Strict-Transport-Security is %q, want max-age=…", h)
	}
}

func TestMixedScriptNamesRefused(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	for _, name := range []string{"\u0410lice", "Bo\u03bf", "\u0430dmin 2", "p\u0430ypal"} {
		status, e := ts.refusal(t, "lobby", "username="+url.QueryEscape(name), nil)
		if status != http.StatusBadRequest || e.Code != codeBadUsername {
			t.Errorf("name %q (mixed scripts): %d %+v, want 400 bad_username", name, status, e)
		}
	}
	for _, name := range []string{"Alice", "Jean-Luc", "Анна", "Αλέξανδρος", "Zoë 2", "李Alice", "Ана-Мария"} {
		c := ts.dial(t, "lobby", url.QueryEscape(name))
		if w, _ := c.welcome(); w.Username != name {
			t.Errorf("name %q joined as %q", name, w.Username)
		}
	}
}
