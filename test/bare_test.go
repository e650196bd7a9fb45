//go:build linux

package test

// A member with no page, for the browser tests: a plain WebSocket client
// that says what a test tells it to, as a forger or an eavesdropper would,
// and reads what anyone joining a room is told.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// More of the protocol than wire_test.go needs.
const (
	typeSystem     = "system"
	typeUserCount  = "userCount"
	typeReactions  = "reactions"
	headerFileMeta = "File-Meta"
	// sealedPrefix starts every sealed text of format e1.
	sealedPrefix = "e1."
)

// bareClient is one member without a page.
type bareClient struct {
	t    *testing.T
	conn *websocket.Conn
	// history is every frame of the replay this member got on joining,
	// as the server sent it.
	history []string
	welcome welcomePayload
}

// dialRoom joins room on es as name and reads the welcome and the replay,
// up to the arrival notices.
func dialRoom(t *testing.T, es *e2eServer, room, name string) *bareClient {
	t.Helper()
	return joinBare(t, "ws"+strings.TrimPrefix(es.URL, "http")+"/ws/"+url.PathEscape(room)+"?username="+url.QueryEscape(name), nil)
}

// joinBare joins at the WebSocket URL ws, dialled with opts, and reads the
// welcome and the replay, up to the arrival notices.
func joinBare(t *testing.T, ws string, opts *websocket.DialOptions) *bareClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, ws, opts)
	if err != nil {
		t.Fatalf("dial %s: %v (%v)", ws, err, resp)
	}
	conn.SetReadLimit(1 << 24)
	t.Cleanup(func() { conn.CloseNow() })
	c := &bareClient{t: t, conn: conn}
	if e, _ := c.next(); e.Type != typeWelcome || json.Unmarshal(e.Payload, &c.welcome) != nil {
		t.Fatalf("the first frame at %s is %s %s, want a welcome", ws, e.Type, e.Payload)
	}
	for {
		e, raw := c.next()
		switch e.Type {
		case typeSystem, typeUserCount: // The replay is over: the room hears of the arrival.
			return c
		case typeReactions:
		default:
			c.history = append(c.history, raw)
		}
	}
}

// roomHistory is what the server holds of room, as anyone joining it is
// sent it: a member joins, reads the replay and leaves.
func roomHistory(t *testing.T, es *e2eServer, room string) []string {
	t.Helper()
	c := dialRoom(t, es, room, "Observer")
	c.conn.Close(websocket.StatusNormalClosure, "")
	return c.history
}

// next reads one frame, decoded and as sent.
func (c *bareClient) next() (envelope, string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	_, data, err := c.conn.Read(ctx)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	var e envelope
	if err := json.Unmarshal(data, &e); err != nil {
		c.t.Fatalf("frame %q: %v", data, err)
	}
	return e, string(data)
}

// say sends a chat message.
func (c *bareClient) say(message, clientID string) {
	c.t.Helper()
	b, _ := json.Marshal(outEnvelope{Type: typeChatMessage, Payload: inboundMessage{Message: message, ClientID: clientID}})
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// nextMessage skips notices and returns the next chat message.
func (c *bareClient) nextMessage() chatMessagePayload {
	c.t.Helper()
	return skipUntil[chatMessagePayload](c, typeChatMessage)
}

// skipUntil reads past other frames to the next one of type typ.
func skipUntil[T any](c *bareClient, typ string) T {
	c.t.Helper()
	for {
		e, _ := c.next()
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

// upload shares body in room as the member holding token, with a sealed
// File-Meta, and returns the status and the file's payload.
func (c *bareClient) upload(base, room, typ, meta string, body []byte) (int, filePayload) {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/r/"+url.PathEscape(room)+"/files", bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set(headerUploadToken, c.welcome.Files.Token)
	req.Header.Set("Content-Type", typ)
	req.Header.Set(headerFileMeta, meta)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("upload: %v", err)
	}
	defer resp.Body.Close()
	var p filePayload
	raw, _ := io.ReadAll(resp.Body)
	json.Unmarshal(raw, &p)
	if resp.StatusCode != http.StatusCreated {
		c.t.Logf("upload refused: %d %s", resp.StatusCode, raw)
	}
	return resp.StatusCode, p
}

// randomBytes returns n random bytes.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// roomFiles is every file named in history, a room's replay as
// roomHistory read it, fetched as a member would, oldest first.
func roomFiles(t *testing.T, es *e2eServer, room string, history []string) (ids []string, contents [][]byte) {
	t.Helper()
	for _, raw := range history {
		var e envelope
		var f filePayload
		if json.Unmarshal([]byte(raw), &e) != nil || e.Type != typeFile || json.Unmarshal(e.Payload, &f) != nil {
			continue
		}
		body := get(t, es.URL+"/r/"+url.PathEscape(room)+"/files/"+f.File)
		ids, contents = append(ids, f.File), append(contents, body)
	}
	return ids, contents
}

// scrapeMetrics reads a Prometheus text page, with Prometheus's own parser,
// into the values of its unlabelled counters and gauges.
func scrapeMetrics(t *testing.T, url string) map[string]float64 {
	t.Helper()
	body := get(t, url)
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("metrics do not parse: %v\n%s", err, body)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			switch {
			case len(m.GetLabel()) > 0:
			case m.Counter != nil:
				out[name] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[name] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

// get fetches url and fails the test unless it answers 200.
func get(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	return body
}
