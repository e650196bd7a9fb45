package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// These tests run the real handler on a loopback listener with real
// WebSocket clients: welcome and history, names, room isolation, one order
// for every member, slow and stuck clients cut off, bad frames, flood
// control and logs free of user data. They also hold the test server and
// client that the other tests of this package use.

// testTimeout bounds every wait in these tests so a bug fails instead of
// hanging; it is never an assertion about speed.
const testTimeout = 15 * time.Second

// testServer is the real handler on a real loopback listener.
type testServer struct {
	*httptest.Server
	srv  *server
	logs *syncBuffer
}

// syncBuffer collects log output from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testConfig is the default configuration with environ applied.
func testConfig(t *testing.T, environ map[string]string) config {
	t.Helper()
	if environ == nil {
		environ = map[string]string{}
	}
	cfg, err := loadConfig(environ)
	if err != nil {
		t.Fatalf("loadConfig(%v): %v", environ, err)
	}
	return cfg
}

// setupTest starts a server configured by environ and logging at debug level.
func setupTest(t *testing.T, environ map[string]string) *testServer {
	t.Helper()
	return setupTestListener(t, environ, nil)
}

// setupTestListener is setupTest with the listener wrapped by wrap, when
// it is not nil.
func setupTestListener(t *testing.T, environ map[string]string, wrap func(net.Listener) net.Listener) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := newServer(testConfig(t, environ), logger)
	hs := httptest.NewUnstartedServer(srv.handler())
	if wrap != nil {
		hs.Listener = wrap(hs.Listener)
	}
	hs.Start()
	ts := &testServer{Server: hs, srv: srv, logs: logs}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		srv.shutdown(ctx)
		ts.Close()
	})
	return ts
}

// wsURL is the WebSocket address of room with the given query.
func (ts *testServer) wsURL(room, query string) string {
	return "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws/" + room + "?" + query
}

// testClient is one user's WebSocket.
type testClient struct {
	t    *testing.T
	conn *websocket.Conn
	// pending holds envelopes already read from a batched message.
	pending []envelope
}

// dial joins room as username and fails the test if it cannot.
func (ts *testServer) dial(t *testing.T, room, username string) *testClient {
	t.Helper()
	return ts.dialQuery(t, room, "username="+username)
}

// dialQuery joins with a raw query string.
func (ts *testServer) dialQuery(t *testing.T, room, query string) *testClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, ts.wsURL(room, query), nil)
	if err != nil {
		t.Fatalf("dial %s?%s: %v (response %v)", room, query, err, resp)
	}
	conn.SetReadLimit(1 << 24)
	t.Cleanup(func() { conn.CloseNow() })
	return &testClient{t: t, conn: conn}
}

// next reads the next envelope.
func (c *testClient) next() envelope {
	c.t.Helper()
	if len(c.pending) > 0 {
		e := c.pending[0]
		c.pending = c.pending[1:]
		return e
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	typ, data, err := c.conn.Read(ctx)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	if typ != websocket.MessageText {
		c.t.Fatalf("got a %v frame, want text", typ)
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		var e envelope
		if err := json.Unmarshal(line, &e); err != nil {
			c.t.Fatalf("frame %q is not an envelope: %v", line, err)
		}
		c.pending = append(c.pending, e)
	}
	return c.next()
}

// expect reads the next envelope, requires its type, and decodes its payload.
func expect[T any](c *testClient, typ string) T {
	c.t.Helper()
	e := c.next()
	if e.Type != typ {
		c.t.Fatalf("got %s frame %s, want %s", e.Type, e.Payload, typ)
	}
	var p T
	if err := json.Unmarshal(e.Payload, &p); err != nil {
		c.t.Fatalf("decode %s payload %s: %v", typ, e.Payload, err)
	}
	return p
}

// skipUntil reads past other frames to the next one of type typ.
func skipUntil[T any](c *testClient, typ string) T {
	c.t.Helper()
	for {
		e := c.next()
		if e.Type != typ {
			continue
		}
		var p T
		if err := json.Unmarshal(e.Payload, &p); err != nil {
			c.t.Fatalf("decode %s payload %s: %v", typ, e.Payload, err)
		}
		return p
	}
}

// welcome reads the welcome frame and the arrival notices after any replay,
// returning the welcome and the replayed messages.
func (c *testClient) welcome() (welcomePayload, []chatMessagePayload) {
	c.t.Helper()
	w := expect[welcomePayload](c, typeWelcome)
	var history []chatMessagePayload
	for {
		e := c.next()
		switch e.Type {
		case typeChatMessage:
			var m chatMessagePayload
			json.Unmarshal(e.Payload, &m)
			history = append(history, m)
		case typeSystem:
			expect[userCountPayload](c, typeUserCount)
			return w, history
		case typeUserCount: // A large room announces arrivals by the count alone.
			return w, history
		default:
			c.t.Fatalf("after welcome got %s %s, want history then system", e.Type, e.Payload)
		}
	}
}

// sendRaw writes one text frame.
func (c *testClient) sendRaw(data string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, []byte(data)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// say sends a chat message tagged with clientID.
func (c *testClient) say(message, clientID string) {
	c.t.Helper()
	b, _ := json.Marshal(outEnvelope{Type: typeChatMessage, Payload: inboundMessage{Message: message, ClientID: clientID}})
	c.sendRaw(string(b))
}

// waitForCount reads past other frames to a userCount of n members.
func (c *testClient) waitForCount(n int) {
	c.t.Helper()
	for skipUntil[userCountPayload](c, typeUserCount).Count != n {
	}
}

// nextMessage skips notices and returns the next chat message.
func (c *testClient) nextMessage() chatMessagePayload {
	c.t.Helper()
	return skipUntil[chatMessagePayload](c, typeChatMessage)
}

// closeStatus reads until the connection ends and returns its close status.
func (c *testClient) closeStatus() (websocket.StatusCode, string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for {
		_, _, err := c.conn.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if !asCloseError(err, &ce) {
				c.t.Fatalf("connection ended with %v, want a close frame", err)
			}
			return ce.Code, ce.Reason
		}
	}
}

// asCloseError unwraps a close frame from err.
func asCloseError(err error, ce *websocket.CloseError) bool {
	if websocket.CloseStatus(err) == -1 {
		return false
	}
	for e := err; e != nil; {
		if c, ok := e.(websocket.CloseError); ok {
			*ce = c
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	*ce = websocket.CloseError{Code: websocket.CloseStatus(err)}
	return true
}

// getJSON performs a request and decodes a JSON body.
func getJSON(t *testing.T, req *http.Request, into any) *http.Response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if into != nil {
		if err := json.Unmarshal(body, into); err != nil {
			t.Fatalf("%s %s: body %q is not JSON: %v", req.Method, req.URL, body, err)
		}
	}
	return resp
}

// refusal attempts a WebSocket handshake that must be refused before the
// upgrade, and returns the status and JSON error.
func (ts *testServer) refusal(t *testing.T, room, query string, header http.Header) (int, errorPayload) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, ts.wsURL(room, query), &websocket.DialOptions{HTTPHeader: header})
	if err == nil {
		conn.CloseNow()
		t.Fatalf("dial %s?%s succeeded, want a refusal", room, query)
	}
	if resp == nil {
		t.Fatalf("dial %s?%s: %v, want an HTTP refusal", room, query, err)
	}
	var e errorPayload
	body, _ := io.ReadAll(resp.Body)
	if jerr := json.Unmarshal(body, &e); jerr != nil {
		t.Fatalf("refusal body %q is not JSON: %v", body, jerr)
	}
	return resp.StatusCode, e
}

func TestWelcomeFirstThenHistoryInOrder(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	alice := ts.dial(t, "lobby", "alice")
	w, history := alice.welcome()
	if w.Username != "alice" || w.Room != "lobby" || w.MaxMessageBytes != 4096 || len(history) != 0 {
		t.Fatalf("welcome %+v with history %v, want alice in an empty lobby", w, history)
	}
	for i := 1; i <= 3; i++ {
		alice.say(fmt.Sprintf("message %d", i), "")
		alice.nextMessage()
	}

	bob := ts.dial(t, "lobby", "bob")
	w, history = bob.welcome()
	if w.Username != "bob" {
		t.Fatalf("bob welcomed as %q", w.Username)
	}
	if len(history) != 3 {
		t.Fatalf("bob got %d history messages, want 3", len(history))
	}
	for i, m := range history {
		want := fmt.Sprintf("message %d", i+1)
		if m.Message != want || m.Username != "alice" || m.ID != uint64(i+1) || m.TS == 0 {
			t.Errorf("history[%d] = %+v, want %q from alice with id %d", i, m, want, i+1)
		}
	}
	if got := skipUntil[systemPayload](alice, typeSystem); got.Text != "bob joined" {
		t.Errorf("alice saw %q, want bob joined", got.Text)
	}
	if got := expect[userCountPayload](alice, typeUserCount); got.Count != 2 || strings.Join(got.Users, ",") != "alice,bob" {
		t.Errorf("alice saw userCount %+v, want 2: alice,bob", got)
	}
}

func TestHistoryKeepsOnlyTheNewest(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"HISTORY_SIZE": "5"})
	alice := ts.dial(t, "capped", "alice")
	alice.welcome()
	for i := 1; i <= 8; i++ {
		alice.say(fmt.Sprintf("m%d", i), "")
		alice.nextMessage()
	}
	_, history := ts.dial(t, "capped", "bob").welcome()
	var got []string
	for _, m := range history {
		got = append(got, m.Message)
	}
	if strings.Join(got, ",") != "m4,m5,m6,m7,m8" {
		t.Fatalf("replay = %v, want the newest five oldest first", got)
	}
}

func TestHistoryDisabled(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"HISTORY_SIZE": "0"})
	alice := ts.dial(t, "nohistory", "alice")
	alice.welcome()
	alice.say("gone with the wind", "")
	alice.nextMessage()
	if _, history := ts.dial(t, "nohistory", "bob").welcome(); len(history) != 0 {
		t.Fatalf("replay = %v, want none with HISTORY_SIZE=0", history)
	}
}

func TestAnonymousName(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	c := ts.dialQuery(t, "anon", "username=%20%20")
	w, _ := c.welcome()
	if !regexp.MustCompile(`^Anon_\d{6}$`).MatchString(w.Username) {
		t.Fatalf("blank username became %q, want Anon_HHmmss", w.Username)
	}
	c.say("who am I", "")
	if m := c.nextMessage(); m.Username != w.Username {
		t.Fatalf("message stamped %q, want %q", m.Username, w.Username)
	}
	// No username parameter at all is blank too.
	if w2, _ := ts.dialQuery(t, "anon", "").welcome(); !strings.HasPrefix(w2.Username, "Anon_") {
		t.Fatalf("missing username became %q", w2.Username)
	}
}

func TestSpoofedUsernameIgnored(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	mallory := ts.dial(t, "spoof", "mallory")
	mallory.welcome()
	alice := ts.dial(t, "spoof", "alice")
	alice.welcome()
	mallory.sendRaw(`{"type":"chatMessage","payload":{"message":"I am alice","username":"alice"}}`)
	for _, c := range []*testClient{alice, mallory} {
		if m := c.nextMessage(); m.Username != "mallory" || m.Message != "I am alice" {
			t.Fatalf("message = %+v, want it stamped mallory", m)
		}
	}
}

func TestDuplicateNamesGetSuffix(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	ts.dial(t, "dupes", "alice").welcome()
	w2, _ := ts.dial(t, "dupes", "ALICE").welcome()
	w3, _ := ts.dial(t, "dupes", "Alice").welcome()
	if w2.Username != "ALICE_2" || w3.Username != "Alice_3" {
		t.Fatalf("duplicates named %q and %q, want ALICE_2 and Alice_3", w2.Username, w3.Username)
	}
	long := strings.Repeat("x", 32)
	ts.dial(t, "dupes", long).welcome()
	w4, _ := ts.dial(t, "dupes", long).welcome()
	if w4.Username != strings.Repeat("x", 30)+"_2" {
		t.Fatalf("long duplicate named %q, want it cut to 32 characters with _2", w4.Username)
	}
}

func TestBadUsernameRefused(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	for _, name := range []string{
		"a%00b",                 // control character
		"%ff%fe",                // invalid UTF-8
		strings.Repeat("a", 33), // too long
		"bob%3Cscript%3E",       // <script>
		"tab%09name",
	} {
		status, e := ts.refusal(t, "room", "username="+name, nil)
		if status != http.StatusBadRequest || e.Code != codeBadUsername || !strings.Contains(e.Text, "letters, digits") {
			t.Errorf("username %q: %d %+v, want 400 bad_username saying what is allowed", name, status, e)
		}
	}
	// Unicode letters, digits, spaces and _-. are fine, and names are trimmed.
	if w, _ := ts.dialQuery(t, "room", "username=%20Jos%C3%A9%20M._2-b%20").welcome(); w.Username != "José M._2-b" {
		t.Fatalf("got %q, want the trimmed name", w.Username)
	}
}

func TestBadRoomRefused(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	for _, room := range []string{strings.Repeat("r", 65), "has.dot", "sp%20ace", "%C3%A9t%C3%A9"} {
		status, e := ts.refusal(t, room, "username=a", nil)
		if status != http.StatusBadRequest || e.Code != codeBadRoom {
			t.Errorf("room %q: %d %+v, want 400 bad_room", room, status, e)
		}
	}
}

func TestRoomsAreIsolatedAndCaseFolded(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	upper := ts.dial(t, "Team-Blue_1", "alice")
	if w, _ := upper.welcome(); w.Room != "team-blue_1" {
		t.Fatalf("room folded to %q, want team-blue_1", w.Room)
	}
	lower := ts.dial(t, "team-blue_1", "bob")
	lower.welcome()
	other := ts.dial(t, "team-red", "carol")
	other.welcome()

	upper.say("blue only", "")
	if m := lower.nextMessage(); m.Message != "blue only" {
		t.Fatalf("bob got %+v", m)
	}
	other.say("red only", "")
	if m := other.nextMessage(); m.Message != "red only" {
		t.Fatalf("carol got %+v", m)
	}
	// Had blue leaked into red, carol would have seen it before her own.
	upper.say("still blue", "")
	if m := lower.nextMessage(); m.Message != "still blue" {
		t.Fatalf("bob got %+v, want still blue: red leaked into blue", m)
	}
}

func TestEveryoneSeesOneOrder(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"MESSAGE_RATE": "0"})
	const senders, each = 4, 50
	var clients []*testClient
	for i := range senders {
		c := ts.dial(t, "order", fmt.Sprintf("user%d", i))
		c.welcome()
		clients = append(clients, c)
	}
	// Drain arrival notices so that only chat messages remain. A count
	// still waiting to be sent is replaced by a newer one, so a member may
	// get fewer counts than arrivals, but always the last. The last to
	// arrive read it with its welcome.
	for _, c := range clients[:senders-1] {
		c.waitForCount(senders)
	}
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			for j := range each {
				b, _ := json.Marshal(outEnvelope{Type: typeChatMessage, Payload: inboundMessage{Message: fmt.Sprintf("%d-%d", i, j)}})
				c.conn.Write(context.Background(), websocket.MessageText, b)
			}
		})
	}
	wg.Wait()
	var reference []string
	for i, c := range clients {
		var seen []string
		var lastID uint64
		for range senders * each {
			m := c.nextMessage()
			if m.ID <= lastID {
				t.Fatalf("client %d: id %d after %d, want strictly increasing", i, m.ID, lastID)
			}
			lastID = m.ID
			seen = append(seen, fmt.Sprintf("%d:%s:%s", m.ID, m.Username, m.Message))
		}
		if i == 0 {
			reference = seen
		} else if strings.Join(seen, "|") != strings.Join(reference, "|") {
			t.Fatalf("client %d saw a different order than client 0", i)
		}
	}
}

func TestSlowClientIsCutOffOthersGetEverything(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"MESSAGE_RATE": "0", "SEND_BUFFER": "16", "HISTORY_SIZE": "0"})
	sender := ts.dial(t, "slow", "sender")
	sender.welcome()
	reader := ts.dial(t, "slow", "reader")
	reader.welcome()
	sleepy := ts.dial(t, "slow", "sleepy") // never reads until the end
	// A count still waiting is replaced by a newer one, so each waits for
	// the count of three rather than for a number of counts.
	sender.waitForCount(3)
	reader.waitForCount(3)

	// Enough bytes to fill the sleepy client's socket buffers and its queue.
	// The sender stays a few messages ahead of the reader, which keeps up
	// as a healthy client does; the sender drains its own echoes.
	const n, window = 5000, 4
	payload := strings.Repeat("z", 4000)
	received := make(chan struct{}, n)
	// A sender who keeps up must never be cut off. Should its connection end
	// anyway, the test fails at once and says how it ended.
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		for {
			_, _, err := sender.conn.Read(context.Background())
			if err == nil {
				continue
			}
			select {
			case <-finished:
			default:
				t.Errorf("the sender, who reads everything, was disconnected: %v", err)
				reader.conn.CloseNow()
			}
			return
		}
	}()
	go sender.sendNumbered(n, window, payload, received)
	// Once the room hears that sleepy left, sleepy wakes up and reads what
	// its socket holds: the last thing there is the 1008 close frame.
	woke := make(chan struct{})
	closed := make(chan error, 1)
	go func() {
		<-woke
		for {
			if _, _, err := sleepy.conn.Read(context.Background()); err != nil {
				closed <- err
				return
			}
		}
	}()
	sawLeave := false
	for i := range n {
		if reader.nextNumbered(i, "sleepy") {
			sawLeave = true
			close(woke)
		}
		received <- struct{}{}
	}
	if !sawLeave {
		t.Fatalf("the room was not told that the slow client left")
	}
	var ce websocket.CloseError
	if err := <-closed; !asCloseError(err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != reasonTooSlow {
		t.Fatalf("slow client ended with %v, want 1008 %q", err, reasonTooSlow)
	}
}

func TestStuckWriteIsCut(t *testing.T) {
	t.Parallel()
	// The queue is large enough never to fill here, so what cuts the
	// member who stops reading is its write outlasting WRITE_TIMEOUT once
	// the socket buffers are full. The timeout is long enough that the
	// sender, who reads, is never cut on a busy machine.
	ts := setupTest(t, map[string]string{"MESSAGE_RATE": "0", "HISTORY_SIZE": "0", "SEND_BUFFER": "5000", "SEND_BUFFER_BYTES": "64MiB", "WRITE_TIMEOUT": "1s"})
	sender := ts.dial(t, "stuck", "sender")
	sender.welcome()
	stuck := ts.dial(t, "stuck", "stuck")
	stuck.welcome()
	skipUntil[userCountPayload](sender, typeUserCount)
	payload := strings.Repeat("s", 4000)
	for i := range 4000 {
		sender.say(payload, "")
		for {
			e := sender.next()
			if e.Type == typeSystem && strings.Contains(string(e.Payload), "stuck left") {
				if i < 100 {
					t.Fatalf("cut after %d messages: before its socket could have filled", i)
				}
				return
			}
			if e.Type == typeChatMessage {
				break
			}
		}
	}
	// 16 MB is more than the socket buffers hold, so the write to the member
	// who stopped reading is blocked now; on a fast machine everything was
	// sent before it had been blocked for WRITE_TIMEOUT. The watchdog cuts
	// it once it has.
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for {
		_, data, err := sender.conn.Read(ctx)
		if err != nil {
			t.Fatalf("a member who stopped reading was not cut off within %v of the last message: %v", testTimeout, err)
		}
		if strings.Contains(string(data), "stuck left") {
			return
		}
	}
}

func TestOversizedMessages(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"MAX_MESSAGE_BYTES": "100"})
	c := ts.dial(t, "big", "alice")
	c.welcome()
	c.say(strings.Repeat("é", 51), "c-1") // 102 bytes
	if e := expect[errorPayload](c, typeError); e.Code != codeMessageTooLong || e.ClientID != "c-1" {
		t.Fatalf("got %+v, want message_too_long for c-1", e)
	}
	c.say(strings.Repeat("é", 50), "c-2") // exactly 100 bytes
	if m := c.nextMessage(); m.ClientID != "c-2" || len(m.Message) != 100 {
		t.Fatalf("got %+v, want the 100-byte message echoed", m)
	}
	// A frame far beyond any honest message is closed with 1009.
	c.sendRaw(strings.Repeat(" ", int(readLimitFor(100))+1))
	if code, _ := c.closeStatus(); code != websocket.StatusMessageTooBig {
		t.Fatalf("huge frame closed with %d, want 1009", code)
	}
}

// TestReadBuffersAreReusedCleanly sends messages that grow past the pooled
// read buffer, past the largest one kept for reuse, and back to short: each
// arrives whole and alone, with nothing of the frame read before it.
func TestReadBuffersAreReusedCleanly(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"MAX_MESSAGE_BYTES": "40000", "MESSAGE_RATE": "0"})
	alice, bob := ts.dial(t, "reuse", "alice"), ts.dial(t, "reuse", "bob")
	alice.welcome()
	bob.welcome()
	for i, n := range []int{5, 700, 3000, 30000, 12, 30000, 1, 600} {
		text := strings.Repeat(string(rune('a'+i)), n)
		alice.say(text, fmt.Sprintf("m-%d", i))
		if m := skipUntil[chatMessagePayload](bob, typeChatMessage); m.Message != text {
			t.Fatalf("message %d of %d bytes arrived as %d bytes starting %.20q", i, n, len(m.Message), m.Message)
		}
	}
}

func TestMalformedFramesKeepConnection(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	c := ts.dial(t, "junk", "alice")
	c.welcome()
	for _, frame := range []string{
		`not json`,
		`{"type":"chatMessage","payload":{"message":"a"}} trailing`,
		`{"type":"setName","payload":{"name":"root"}}`,
		`{"type":"chatMessage","payload":"hi"}`,
		`{"type":"chatMessage","payload":{"message":42}}`,
		`{"type":"chatMessage","payload":{"message":"   "}}`,
		`{"type":"chatMessage","payload":{"message":"x","clientId":"<bad id>"}}`,
		`[]`,
	} {
		c.sendRaw(frame)
		if e := expect[errorPayload](c, typeError); e.Code != codeBadMessage || e.Text == "" {
			t.Errorf("frame %q answered %+v, want bad_message", frame, e)
		}
	}
	c.say("still here", "")
	if m := c.nextMessage(); m.Message != "still here" {
		t.Fatalf("got %+v after bad frames", m)
	}
}

func TestBinaryFrameClosed(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	c := ts.dial(t, "bin", "alice")
	c.welcome()
	c.conn.Write(context.Background(), websocket.MessageBinary, []byte{1, 2, 3})
	if code, _ := c.closeStatus(); code != websocket.StatusUnsupportedData {
		t.Fatalf("binary frame closed with %d, want 1003", code)
	}
}

func TestRepeatedAbuseClosed(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	c := ts.dial(t, "abuse", "mallory")
	c.welcome()
	watcher := ts.dial(t, "abuse", "watcher")
	watcher.welcome()
	for range abuseBurst + 10 {
		c.sendRaw("garbage")
	}
	if code, reason := c.closeStatus(); code != websocket.StatusPolicyViolation || reason != reasonAbuse {
		t.Fatalf("abuser closed with %d %q, want 1008 %q", code, reason, reasonAbuse)
	}
	if got := skipUntil[systemPayload](watcher, typeSystem); got.Text != "mallory left" {
		t.Fatalf("watcher saw %q", got.Text)
	}
}

func TestFloodIsRateLimited(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"MESSAGE_RATE": "0.001", "MESSAGE_BURST": "2"})
	c := ts.dial(t, "flood", "alice")
	c.welcome()
	for i := range 5 {
		c.say("spam", fmt.Sprintf("c-%d", i))
	}
	var delivered, limited []string
	for range 5 {
		e := c.next()
		switch e.Type {
		case typeChatMessage:
			var m chatMessagePayload
			json.Unmarshal(e.Payload, &m)
			delivered = append(delivered, m.ClientID)
		case typeError:
			var p errorPayload
			json.Unmarshal(e.Payload, &p)
			if p.Code != codeRateLimited {
				t.Fatalf("error %+v, want rate_limited", p)
			}
			limited = append(limited, p.ClientID)
		}
	}
	if strings.Join(delivered, ",") != "c-0,c-1" || strings.Join(limited, ",") != "c-2,c-3,c-4" {
		t.Fatalf("delivered %v, limited %v; want the burst of 2 through and the rest limited", delivered, limited)
	}
}

func TestCrowdIsCountedNotAnnounced(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	watcher := ts.dial(t, "crowd", "watcher")
	watcher.welcome()
	const crowd = maxListedUsers + 20
	for i := range crowd {
		ts.dial(t, "crowd", fmt.Sprintf("guest%d", i)).welcome()
	}
	// The watcher reads only now. Joins are announced by name while the
	// room holds up to maxListedUsers; after that only counts arrive, each
	// larger than the last, and the last one is everyone.
	var named []string
	lastCount := 1
	for lastCount < crowd+1 {
		e := watcher.next()
		switch e.Type {
		case typeSystem:
			var p systemPayload
			json.Unmarshal(e.Payload, &p)
			named = append(named, p.Text)
		case typeUserCount:
			var p userCountPayload
			json.Unmarshal(e.Payload, &p)
			if p.Count <= lastCount {
				t.Fatalf("count went from %d to %d", lastCount, p.Count)
			}
			if (p.Users == nil) != (p.Count > maxListedUsers) {
				t.Fatalf("count %d came with users %v; want the list exactly while the room holds up to %d", p.Count, p.Users, maxListedUsers)
			}
			lastCount = p.Count
		default:
			t.Fatalf("watcher got %s %s", e.Type, e.Payload)
		}
	}
	if len(named) != maxListedUsers-1 || named[0] != "guest0 joined" {
		t.Fatalf("watcher saw %d join notices (%v), want the first %d by name", len(named), named, maxListedUsers-1)
	}
}

func TestWaitingCountIsReplaced(t *testing.T) {
	t.Parallel()
	s := newServer(testConfig(t, nil), slog.New(slog.DiscardHandler))
	// writing is set so that no writer starts: this client has no connection.
	c := &client{srv: s, countAt: -1, writing: true}
	for _, f := range []string{"count1", "chat1", "count2", "count3"} {
		c.enqueue([]byte(f), strings.HasPrefix(f, "count"))
	}
	got := c.take(nil)
	if fmt.Sprintf("%s", got) != "[count3 chat1]" {
		t.Fatalf("queue = %s, want the newest count where the first waited, then the chat message", got)
	}
	c.enqueue([]byte("count4"), true)
	c.enqueue([]byte("chat2"), false)
	if got := c.take(got); fmt.Sprintf("%s", got) != "[count4 chat2]" {
		t.Fatalf("after a write, queue = %s, want a fresh count", got)
	}
}

func TestBatchedClientGetsNewlineDelimitedFrames(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	// Bob's writer, started by his welcome, waits for his join to finish,
	// as a busy scheduler may make it: then all of it is queued together.
	ts.srv.beforeWriterTurn = func(c *client) {
		if c.name == "bob" {
			c.room.mu.Lock()
			c.room.mu.Unlock()
		}
	}
	alice := ts.dial(t, "batch", "alice")
	alice.welcome()
	for i := range 10 {
		alice.say(fmt.Sprintf("b%d", i), "")
		alice.nextMessage()
	}
	bob := ts.dialQuery(t, "batch", "username=bob&batch=1")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_, data, err := bob.conn.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Welcome, replay and notices were queued together, so they arrive
	// coalesced in one message.
	lines := strings.Split(string(data), "\n")
	if len(lines) != 13 {
		t.Fatalf("first message has %d frames, want welcome + 10 history + system + userCount", len(lines))
	}
	var first envelope
	if json.Unmarshal([]byte(lines[0]), &first); first.Type != typeWelcome {
		t.Fatalf("first frame is %s", lines[0])
	}
	// A client that did not ask for batching never gets a newline-joined message.
	carol := ts.dial(t, "batch", "carol")
	for range 13 {
		_, data, err := carol.conn.Read(ctx)
		if err != nil || bytes.Contains(data, []byte("\n")) {
			t.Fatalf("unbatched client got %q, %v", data, err)
		}
	}
}

func TestLogsCarryNoUserData(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"MESSAGE_RATE": "0.001", "MESSAGE_BURST": "1", "ROOM_IDLE_TIMEOUT": "10ms"})
	const secretRoom, secretName, secretText = "roomsecret42", "usersecret42", "textsecret42"
	c := ts.dial(t, secretRoom, secretName)
	c.welcome()
	c.say(secretText, "")
	c.nextMessage()
	c.say(secretText, "") // rate limited
	c.sendRaw(secretText) // malformed
	c.conn.Close(websocket.StatusNormalClosure, secretText)
	ts.refusal(t, secretRoom, "username="+secretName+"%00", nil)
	ts.refusal(t, secretRoom+"!", "username="+secretName, nil)
	c2 := ts.dial(t, secretRoom, secretName)
	c2.welcome()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	ts.srv.shutdown(ctx)
	logs := ts.logs.String()
	if !strings.Contains(logs, "connection ended") {
		t.Fatalf("the scenario logged nothing, so it proves nothing: %q", logs)
	}
	for _, secret := range []string{secretRoom, secretName, secretText} {
		if strings.Contains(logs, secret) {
			t.Fatalf("logs contain %q:\n%s", secret, logs)
		}
	}
}

// TestChatFrameFastPathAgrees decodes chat frames both ways, in one pass as
// the server does for frames that start like a chat message, and as any
// other frame: the message, or the answer, must be the same.
func TestChatFrameFastPathAgrees(t *testing.T) {
	for _, frame := range []string{
		`{"type":"chatMessage","payload":{"message":"hi","clientId":"c-1"}}`,
		`{"type":"chatMessage","payload":{"message":"hi","clientId":"c-1","replyTo":7}}`,
		`{"type":"chatMessage","payload":{"message":"hi","username":"someone else"}}`,
		`{"type":"chatMessage","payload":{"message":"\u0000"}}`,
		`{"type":"chatMessage","payload":{"message":"` + strings.Repeat("x", 101) + `"}}`,
		`{"type":"chatMessage","payload":{"message":"   "}}`,
		`{"type":"chatMessage","payload":{"message":42}}`,
		`{"type":"chatMessage","payload":{"message":"x","clientId":"<bad id>"}}`,
		`{"type":"chatMessage","payload":"hi"}`,
		`{"type":"chatMessage","payload":null}`,
		`{"type":"chatMessage"}`,
		`{"type":"chatMessage","payload":{"message":"a"}} trailing`,
		`{"type":"chatMessage","payload":{"message":"a"}}{}`,
		`{"type":"chatMessage","type":"ping","payload":{"message":"a"}}`,
		`{"type":"chatMessage","payload":{"message":"a"},"extra":[1,2]}`,
		`{"type":"chatMessage","payload":{"message":"a"`,
	} {
		fast, fastErr := parseClientFrame([]byte(frame), 100)
		var slow inboundMessage
		env, slowErr := decodeAnyEnvelope([]byte(frame))
		if slowErr == nil && env.Type != typeChatMessage {
			slowErr = errUnknownType
		} else if slowErr == nil {
			slow, slowErr = parseChatMessage(env, 100)
		}
		switch {
		case (fastErr == nil) != (slowErr == nil):
			t.Errorf("%s: one pass %+v, two passes %+v", frame, fastErr, slowErr)
		case fastErr != nil && (fastErr.Code != slowErr.Code || fastErr.ClientID != slowErr.ClientID):
			t.Errorf("%s: one pass answers %+v, two passes %+v", frame, fastErr, slowErr)
		case fastErr == nil && (fast.Message != slow.Message || fast.ClientID != slow.ClientID || fast.ReplyTo != slow.ReplyTo):
			t.Errorf("%s: one pass reads %+v, two passes %+v", frame, fast, slow)
		}
	}
}

// FuzzParseClientFrame feeds arbitrary frames to the inbound parser: it must
// never panic, and whatever it accepts must be publishable.
func FuzzParseClientFrame(f *testing.F) {
	for _, seed := range []string{
		`{"type":"chatMessage","payload":{"message":"hi","clientId":"c-1"}}`,
		`{"type":"chatMessage","payload":{"message":"hi","username":"someone else"}}`,
		`{"type":"chatMessage","payload":{"message":"\u0000\ud800"}}`,
		`{"type":"chatMessage","payload":{"message":"` + strings.Repeat("x", 200) + `"}}`,
		`{"type":"other","payload":{}}`,
		`{"type":"chatMessage","payload":null}`,
		`{"type":"chatMessage"}`,
		`{}{}`,
		"\xff\xfe",
		``,
		`null`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in, rejected := parseClientFrame(data, 100)
		if rejected != nil {
			if rejected.Code == "" || rejected.Text == "" {
				t.Fatalf("rejection without code or text: %+v", rejected)
			}
			return
		}
		if len(in.Message) > 100 || strings.TrimSpace(in.Message) == "" || !validClientID(in.ClientID) {
			t.Fatalf("accepted %+v from %q", in, data)
		}
		encodeFrame(typeChatMessage, chatMessagePayload{Message: in.Message, ClientID: in.ClientID})
	})
}
