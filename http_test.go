package main

// Tests of the HTTP surface: origins and CORS, room creation, capacity
// refusals, and the headers every response carries.

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestOriginRules(t *testing.T) {
	t.Parallel()
	prod := setupTest(t, map[string]string{"ENVIRONMENT": "production", "ALLOWED_ORIGINS": "https://chat.example.com"})
	dev := setupTest(t, nil)
	origin := func(o string) http.Header { return http.Header{"Origin": {o}} }
	ok := func(ts *testServer, o string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		conn, _, err := websocket.Dial(ctx, ts.wsURL("origins", "username=a"), &websocket.DialOptions{HTTPHeader: origin(o)})
		if err != nil {
			t.Fatalf("origin %q refused: %v", o, err)
		}
		conn.CloseNow()
	}
	ok(prod, "https://chat.example.com")
	ok(prod, prod.URL) // same origin
	ok(dev, "http://localhost:5173")
	for _, o := range []string{"https://evil.example", "http://localhost:5173", "null"} {
		if status, e := prod.refusal(t, "origins", "username=a", origin(o)); status != http.StatusForbidden || e.Code != codeOriginNotAllowed {
			t.Errorf("production origin %q: %d %+v, want 403", o, status, e)
		}
	}
	if status, _ := dev.refusal(t, "origins", "username=a", origin("https://evil.example")); status != http.StatusForbidden {
		t.Errorf("development allowed evil.example: %d", status)
	}
}

func TestCORSForAPI(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"ALLOWED_ORIGINS": "https://ui.example.com", "ENVIRONMENT": "production"})
	preflight := func(o string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, ts.URL+"/api/rooms", nil)
		req.Header.Set("Origin", o)
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := preflight("https://ui.example.com")
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "https://ui.example.com" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") || resp.Header.Get("Vary") != "Origin" {
		t.Fatalf("allowed preflight: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := preflight("https://evil.example"); resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("evil preflight granted: %v", resp.Header)
	}
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/api/rooms", nil)
	req.Header.Set("Origin", "https://ui.example.com")
	var created map[string]any
	if resp := getJSON(t, req, &created); resp.StatusCode != http.StatusCreated || resp.Header.Get("Access-Control-Allow-Origin") != "https://ui.example.com" {
		t.Fatalf("cross-origin create: %d %v", resp.StatusCode, resp.Header)
	}
	req, _ = http.NewRequest(http.MethodPost, ts.URL+"/api/rooms", nil)
	req.Header.Set("Origin", "https://evil.example")
	if resp := getJSON(t, req, nil); resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("evil create: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestCreateRoom(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"ROOM_CREATE_RATE": "3"})
	create := func(body string) (*http.Response, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/api/rooms", strings.NewReader(body))
		var out map[string]any
		return getJSON(t, req, &out), out
	}
	resp, a := create("")
	_, b := create(`{"capacity":2}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %v", resp.StatusCode, a)
	}
	if !regexp.MustCompile(`^[a-z2-7]{16}$`).MatchString(a["room"].(string)) ||
		!regexp.MustCompile(`^[a-z2-7]{16}_2$`).MatchString(b["room"].(string)) {
		t.Fatalf("codes %v and %v, want 16 base32 characters (80 bits), the second with its capacity", a["room"], b["room"])
	}

	// The two-person room admits two and refuses a third with 409.
	private := b["room"].(string)
	ts.dial(t, private, "alice").welcome()
	ts.dial(t, private, "bob").welcome()
	if status, e := ts.refusal(t, private, "username=carol", nil); status != http.StatusConflict || e.Code != codeRoomFull {
		t.Fatalf("third in a private room: %d %+v, want 409 room_full", status, e)
	}

	if resp, out := create(`{"capacity":1}`); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("capacity 1: %d %v, want 400", resp.StatusCode, out)
	}
	if resp, out := create(`{"capacity":`); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("broken body: %d %v, want 400", resp.StatusCode, out)
	}
	// The bucket holds 3; two bad requests did not spend any.
	create("")
	resp, out := create("")
	if resp.StatusCode != http.StatusTooManyRequests || out["code"] != codeRateLimited || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("fourth create: %d %v %v, want 429 rate_limited with Retry-After", resp.StatusCode, out, resp.Header)
	}
}

func TestCapacityLimits(t *testing.T) {
	t.Parallel()
	t.Run("room", func(t *testing.T) {
		t.Parallel()
		ts := setupTest(t, map[string]string{"MAX_ROOM_CLIENTS": "2"})
		ts.dial(t, "small", "a").welcome()
		ts.dial(t, "small", "b").welcome()
		if status, e := ts.refusal(t, "small", "username=c", nil); status != http.StatusConflict || e.Code != codeRoomFull {
			t.Fatalf("%d %+v, want 409 room_full", status, e)
		}
		// A plain GET tells a browser why its handshake failed.
		var e errorPayload
		if resp := getJSON(t, httptestGet(ts, "/ws/small?username=c"), &e); resp.StatusCode != http.StatusConflict || e.Code != codeRoomFull {
			t.Fatalf("probe: %d %+v, want 409", resp.StatusCode, e)
		}
		if resp := getJSON(t, httptestGet(ts, "/ws/other?username=c"), &e); resp.StatusCode != http.StatusUpgradeRequired {
			t.Fatalf("probe of a free room: %d %+v, want 426", resp.StatusCode, e)
		}
	})
	t.Run("server", func(t *testing.T) {
		t.Parallel()
		ts := setupTest(t, map[string]string{"MAX_CLIENTS": "1"})
		ts.dial(t, "one", "a").welcome()
		if status, e := ts.refusal(t, "two", "username=b", nil); status != http.StatusServiceUnavailable || e.Code != codeServerFull {
			t.Fatalf("%d %+v, want 503 server_full", status, e)
		}
	})
	t.Run("rooms", func(t *testing.T) {
		t.Parallel()
		ts := setupTest(t, map[string]string{"MAX_ROOMS": "1"})
		ts.dial(t, "one", "a").welcome()
		if status, e := ts.refusal(t, "two", "username=b", nil); status != http.StatusServiceUnavailable || e.Code != codeServerFull {
			t.Fatalf("%d %+v, want 503 server_full", status, e)
		}
		ts.dial(t, "one", "b").welcome() // an existing room still admits
	})
}

// httptestGet builds a GET for a path on ts.
func httptestGet(ts *testServer, path string) *http.Request {
	req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
	return req
}

func TestHTTPSurface(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	for _, path := range []string{"/", "/r/some-room"} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !bytes.Contains(body, []byte("<html")) {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, h.Get("Content-Type"))
		}
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "connect-src 'self';") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: headers %v", path, h)
		}
		if h.Get("Cache-Control") != "no-cache" || h.Get("ETag") == "" {
			t.Errorf("%s: caching headers %v", path, h)
		}
		req := httptestGet(ts, path)
		req.Header.Set("If-None-Match", h.Get("ETag"))
		if resp := getJSON(t, req, nil); resp.StatusCode != http.StatusNotModified {
			t.Errorf("%s revalidation: %d, want 304", path, resp.StatusCode)
		}
	}
	var health map[string]any
	if resp := getJSON(t, httptestGet(ts, "/healthz"), &health); resp.StatusCode != http.StatusOK || health["status"] != "ok" {
		t.Fatalf("healthz: %d %v", resp.StatusCode, health)
	}
	if resp := getJSON(t, httptestGet(ts, "/nope.js"), nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("missing file: %d", resp.StatusCode)
	}
}

func TestRoomSettingsFromTheCode(t *testing.T) {
	t.Parallel()
	const random = "k3v7q2mxa6c4tdzp"
	for _, tc := range []struct {
		name     string
		capacity int
		e2ee     bool
	}{
		{random, 50, false},
		{random + "_2", 2, false},
		{random + "_2e", 2, true},
		{random + "_e", 50, true},
		{random + "_2e-148e123f456789", 2, true}, // on Fly.io, the machine follows
		{random + "_900", 50, false},             // at most this server's MAX_ROOM_CLIENTS
		{random + "_", 50, false},
		{random + "_1", 50, false}, // not a code this server makes: an ordinary room
		{random + "_ee", 50, false},
		{random + "_x", 50, false},
		{"team_2", 50, false},
		{"lobby_e", 50, false},
		{"k3v7q2mxa9c4tdzp_2", 50, false}, // 9 is not base32
	} {
		capacity, e2ee := roomSettings(tc.name, 50)
		if capacity != tc.capacity || e2ee != tc.e2ee {
			t.Errorf("roomSettings(%q) = %d, %v; want %d, %v", tc.name, capacity, e2ee, tc.capacity, tc.e2ee)
		}
	}
}

// A created room is the same room on any server that meets its code: another
// node behind a load balancer, or this one after the room expired.
func TestCreatedRoomKeepsItsSettingsAnywhere(t *testing.T) {
	t.Parallel()
	maker := setupTest(t, map[string]string{"ROOM_IDLE_TIMEOUT": "10ms"})
	status, out := maker.createRoomBody(t, `{"capacity":2,"e2ee":true,"keyCheck":"q83vEjRWeJCrze8SNFZ4kA"}`)
	code, _ := out["room"].(string)
	if status != http.StatusCreated || !regexp.MustCompile(`^[a-z2-7]{16}_2e$`).MatchString(code) {
		t.Fatalf("create: %d %v, want 201 and a code ending in _2e", status, out)
	}
	for deadline := time.Now().Add(testTimeout); ; time.Sleep(10 * time.Millisecond) {
		if rooms, _ := maker.srv.stats(); rooms == 0 {
			break
		} else if time.Now().After(deadline) {
			t.Fatal("the unjoined room never expired")
		}
	}
	other := setupTest(t, nil)
	for name, ts := range map[string]*testServer{"after it expired": maker, "on another server": other} {
		alice := ts.dial(t, code, "alice")
		w, _ := alice.welcome()
		if !w.E2EE || w.KeyCheck != "" {
			t.Errorf("%s: welcome %+v, want e2ee (the key check stays with the room that was made)", name, w)
		}
		ts.dial(t, code, "bob").welcome()
		if status, e := ts.refusal(t, code, "username=carol", nil); status != http.StatusConflict || e.Code != codeRoomFull {
			t.Errorf("%s: a third person got %d %+v, want 409 room_full", name, status, e)
		}
		alice.say("in the clear", "")
		if e := skipUntil[errorPayload](alice, typeError); e.Code != codeNotEncrypted {
			t.Errorf("%s: plaintext got %+v, want not_encrypted", name, e)
		}
	}
}
