package main

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Tests of the memory budgets and per-IP limits that keep one visitor from
// exhausting the server.

// dialFrom joins room as username, appearing to come from ip through the
// trusted header the server was configured with (CLIENT_IP_HEADER=X-Test-IP).
func (ts *testServer) dialFrom(t *testing.T, room, username, ip string) *testClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	h := http.Header{"X-Test-IP": {ip}}
	conn, resp, err := websocket.Dial(ctx, ts.wsURL(room, "username="+username), &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatalf("dial %s as %s from %s: %v (response %v)", room, username, ip, err, resp)
	}
	conn.SetReadLimit(1 << 24)
	t.Cleanup(func() { conn.CloseNow() })
	return &testClient{t: t, conn: conn}
}

// fromIP is the header that makes a request come from ip.
func fromIP(ip string) http.Header { return http.Header{"X-Test-IP": {ip}} }

func TestFramesAreNotHTMLEscaped(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	c := ts.dial(t, "escapes", "a")
	c.welcome()
	text := `<b>&amp; "quoted" </b>` + strings.Repeat("<", 100)
	c.say(text, "x1")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_, raw, err := c.conn.Read(ctx)
	if err != nil {
		t.Fatalf("read the echo: %v", err)
	}
	if !bytes.Contains(raw, []byte(`<b>&amp; \"quoted\" </b><<<`)) || bytes.Contains(raw, []byte(`\u003c`)) {
		t.Fatalf("frame %s: want < > & written as themselves, one byte each", raw)
	}
	if want := len(text) + 2; len(raw) > len(text)+2+200 {
		t.Fatalf("frame is %d bytes for %d bytes of text; want about %d plus the envelope", len(raw), len(text), want)
	}
}

func TestControlCharactersRefused(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	c := ts.dial(t, "controls", "a")
	c.welcome()
	for _, bad := range []string{"bell\a", "nul\x00here", "esc\x1b[31m"} {
		c.say(bad, "bad1")
		if e := expect[errorPayload](c, typeError); e.Code != codeBadMessage || e.ClientID != "bad1" {
			t.Fatalf("%q: got %+v, want bad_message for bad1", bad, e)
		}
	}
	ok := "line one\nline two\r\n\ttabbed \u2028 separated"
	c.say(ok, "ok1")
	if m := c.nextMessage(); m.Message != ok {
		t.Fatalf("got %q, want %q: tab and line breaks are allowed", m.Message, ok)
	}
}

func TestHistoryBoundedInBytesPerRoom(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"MAX_MESSAGE_BYTES": "100", "HISTORY_BYTES": "1KiB", "MESSAGE_RATE": "0"})
	a := ts.dial(t, "bytes", "a")
	a.welcome()
	var sent []string
	for i := range 20 {
		text := strconv.Itoa(i) + strings.Repeat("<", 90)
		a.say(text, "")
		a.nextMessage()
		sent = append(sent, text)
	}
	_, history := ts.dial(t, "bytes", "b").welcome()
	if len(history) == 0 || len(history) >= len(sent) {
		t.Fatalf("replayed %d of %d messages; want the newest that fit in 1KiB", len(history), len(sent))
	}
	total := 0
	for i, m := range history {
		if want := sent[len(sent)-len(history)+i]; m.Message != want {
			t.Fatalf("replay[%d] = %q, want %q: the newest, oldest first", i, m.Message, want)
		}
		total += len(encodeFrame(typeChatMessage, m))
	}
	older := len(encodeFrame(typeChatMessage, chatMessagePayload{ID: 1, Username: "a", Message: sent[0], TS: nowMillis()}))
	if total > 1024 || total+older <= 1024 {
		t.Fatalf("replay holds %d bytes; want as many messages as fit in 1024", total)
	}
}

func TestHistoryTotalTrimsLeastRecentRoomsFirst(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{
		"MAX_MESSAGE_BYTES": "100", "HISTORY_BYTES": "1KiB", "HISTORY_TOTAL_BYTES": "3KiB", "MESSAGE_RATE": "0",
	})
	fill := func(room string) {
		c := ts.dial(t, room, "a")
		c.welcome()
		for i := range 8 {
			c.say(room+strconv.Itoa(i)+strings.Repeat("x", 90), "")
			c.nextMessage()
		}
	}
	replayed := func(room string) int {
		_, h := ts.dial(t, room, "reader").welcome()
		return len(h)
	}
	fill("r1")
	fill("r2")
	full := replayed("r2")
	fill("r3")
	fill("r4") // Past 3KiB: the least recently active rooms give way.
	if got := ts.srv.history.bytes.Load(); got > 3<<10 {
		t.Fatalf("history holds %d bytes, over HISTORY_TOTAL_BYTES", got)
	}
	if n := replayed("r1"); n >= full {
		t.Fatalf("the least recently active room still replays %d messages; want it trimmed below %d", n, full)
	}
	if n := replayed("r4"); n != full {
		t.Fatalf("the most recently active room replays %d messages; want all %d it holds", n, full)
	}
	// Live chat in a trimmed room goes on.
	a, b := ts.dial(t, "r1", "live1"), ts.dial(t, "r1", "live2")
	a.welcome()
	b.welcome()
	a.say("still here", "")
	if m := b.nextMessage(); m.Message != "still here" {
		t.Fatalf("got %q in a trimmed room", m.Message)
	}
}

func TestConnectionsCappedPerIP(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"MAX_CONNS_PER_IP": "3", "CLIENT_IP_HEADER": "X-Test-IP"})
	var conns []*testClient
	for i := range 3 {
		c := ts.dialFrom(t, "office", "p"+strconv.Itoa(i), "192.0.2.1")
		c.welcome()
		conns = append(conns, c)
	}
	status, e := ts.refusal(t, "office", "username=p4", fromIP("192.0.2.1"))
	if status != http.StatusTooManyRequests || e.Code != codeTooManyConns {
		t.Fatalf("4th connection from one IP: %d %+v, want 429 too_many_connections", status, e)
	}
	req := httptestGet(ts, "/ws/office?username=p4")
	req.Header = fromIP("192.0.2.1")
	if resp := getJSON(t, req, &e); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("probe: %d %+v (Retry-After %q), want 429 with Retry-After", resp.StatusCode, e, resp.Header.Get("Retry-After"))
	}
	ts.dialFrom(t, "office", "other", "192.0.2.2").welcome() // Another address is not affected.
	conns[0].conn.Close(websocket.StatusNormalClosure, "")
	waitFor(t, "the closed connection to be released", func() bool {
		ts.srv.mu.Lock()
		defer ts.srv.mu.Unlock()
		return ts.srv.perIP["192.0.2.1"] == 2
	})
	ts.dialFrom(t, "office", "p4", "192.0.2.1").welcome()
}

func TestNamedJoinsCountAsNewRooms(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"ROOM_CREATE_RATE": "2", "CLIENT_IP_HEADER": "X-Test-IP"})
	ts.dialFrom(t, "first", "a", "192.0.2.1").welcome()
	ts.dialFrom(t, "second", "a", "192.0.2.1").welcome()
	status, e := ts.refusal(t, "third", "username=a", fromIP("192.0.2.1"))
	if status != http.StatusTooManyRequests || e.Code != codeRateLimited {
		t.Fatalf("3rd new room from one IP: %d %+v, want 429 rate_limited", status, e)
	}
	// Joining a room that exists is not a new room; POST /api/rooms shares
	// the same budget; another address has its own.
	ts.dialFrom(t, "first", "b", "192.0.2.1").welcome()
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/api/rooms", nil)
	req.Header = fromIP("192.0.2.1")
	if resp := getJSON(t, req, &e); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("POST /api/rooms after two named rooms: %d %+v, want 429 with Retry-After", resp.StatusCode, e)
	}
	ts.dialFrom(t, "third", "a", "192.0.2.2").welcome()
	ts.srv.mu.Lock()
	_, made := ts.srv.rooms["third"]
	ts.srv.mu.Unlock()
	if !made {
		t.Fatal("the other address's room does not exist")
	}
}

func TestJoinsRateLimitedPerIP(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"JOIN_RATE": "3", "CLIENT_IP_HEADER": "X-Test-IP"})
	for i := range 3 {
		c := ts.dialFrom(t, "lobby", "j"+strconv.Itoa(i), "192.0.2.1")
		c.welcome()
		c.conn.Close(websocket.StatusNormalClosure, "")
	}
	// The probe only looks: it must not spend the budget of another address.
	req := httptestGet(ts, "/ws/lobby?username=x")
	req.Header = fromIP("192.0.2.2")
	for range 5 {
		getJSON(t, req, nil)
	}
	status, e := ts.refusal(t, "lobby", "username=j4", fromIP("192.0.2.1"))
	if status != http.StatusTooManyRequests || e.Code != codeRateLimited {
		t.Fatalf("4th join in a minute from one IP: %d %+v, want 429 rate_limited", status, e)
	}
	ts.dialFrom(t, "lobby", "k", "192.0.2.2").welcome()
}

func TestMemorySettings(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]byteSize{
		"1048576": 1 << 20, "256KiB": 256 << 10, "64MiB": 64 << 20, "1GiB": 1 << 30, "200MB": 200e6, "1.5MiB": 3 << 19, " 8 KiB ": 8 << 10,
	} {
		var b byteSize
		if err := b.UnmarshalText([]byte(in)); err != nil || b != want {
			t.Errorf("%q = %d, %v; want %d", in, b, err, want)
		}
	}
	var c config
	c.resolveMemory(0, 256<<20)
	if c.MemoryLimit != 256<<20/10*9 || c.HistoryTotalBytes != c.MemoryLimit/4 {
		t.Errorf("under a 256MiB cgroup: limit %v, history %v; want 90%% and a quarter of that", c.MemoryLimit, c.HistoryTotalBytes)
	}
	c = config{MemoryLimit: 1 << 30}
	c.resolveMemory(100<<20, 256<<20)
	if c.MemoryLimit != 1<<30 || c.HistoryTotalBytes != defaultHistoryTotal {
		t.Errorf("MEMORY_LIMIT=1GiB: limit %v, history %v; want 1GiB and 64MiB", c.MemoryLimit, c.HistoryTotalBytes)
	}
	c = config{}
	c.resolveMemory(0, 0)
	if c.MemoryLimit != 0 || c.HistoryTotalBytes != defaultHistoryTotal {
		t.Errorf("no limit anywhere: limit %v, history %v; want none and 64MiB", c.MemoryLimit, c.HistoryTotalBytes)
	}
	c = config{}
	c.resolveMemory(100<<20, 256<<20)
	if c.MemoryLimit != 100<<20 {
		t.Errorf("GOMEMLIMIT=100MiB: limit %v; want GOMEMLIMIT's", c.MemoryLimit)
	}
}

// waitFor polls cond until it holds, failing after testTimeout with what
// was awaited.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
