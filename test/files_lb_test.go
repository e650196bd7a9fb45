//go:build linux

package test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Behind the documented HAProxy and Caddy configurations, a room's file
// paths, /r/{room}/files and /r/{room}/files/{id}, reach the node that holds
// the room, which alone knows the uploader.

func TestFilesBehindHAProxy(t *testing.T) {
	t.Parallel()
	_, nodes := startNodes(t)
	_, front := startHAProxy(t, nodes)
	lbShares(t, front)
}

func TestFilesBehindCaddy(t *testing.T) {
	t.Parallel()
	_, nodes := startNodes(t)
	lbShares(t, startCaddy(t, nodes))
}

// lbShares has alice share a multi-MiB file with bob in a few rooms
// through front, and bob download it whole.
func lbShares(t *testing.T, front string) {
	t.Helper()
	for _, room := range []string{"lb-files-one", "lb-files-two", "lb-files-three"} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		alice, w := joinThrough(ctx, t, front, room, "alice")
		bob, _ := joinThrough(ctx, t, front, room, "bob")
		data := make([]byte, 3<<20)
		rand.Read(data)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, front+"/r/"+room+"/files", bytes.NewReader(data))
		req.Header = http.Header{headerUploadToken: {w.Files.Token}, headerFileName: {"photo.jpg"}, "Content-Type": {"image/jpeg"}}
		var up filePayload
		if resp := getJSON(t, req, &up); resp.StatusCode != http.StatusCreated {
			t.Fatalf("upload through %s into %s: %d", front, room, resp.StatusCode)
		}
		if heard := nextFile(ctx, t, bob); heard.File != up.File {
			t.Fatalf("bob heard of file %q, want %q", heard.File, up.File)
		}
		resp, err := http.Get(front + "/r/" + room + "/files/" + up.File)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || sha256.Sum256(body) != sha256.Sum256(data) {
			t.Fatalf("download through %s: %d, %d bytes; want 200 and the %d bytes uploaded", front, resp.StatusCode, len(body), len(data))
		}
		alice.CloseNow()
		bob.CloseNow()
		cancel()
	}
}

// joinThrough joins room as name through front and returns the connection
// and its welcome, which must tell how to share files.
func joinThrough(ctx context.Context, t *testing.T, front, room, name string) (*websocket.Conn, welcomePayload) {
	t.Helper()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(front, "http")+"/ws/"+room+"?username="+name, nil)
	if err != nil {
		t.Fatalf("join %s through %s: %v", room, front, err)
	}
	conn.SetReadLimit(1 << 24)
	t.Cleanup(func() { conn.CloseNow() })
	var w welcomePayload
	if e := nextFrame(ctx, t, conn); e.Type != typeWelcome || json.Unmarshal(e.Payload, &w) != nil || w.Files == nil {
		t.Fatalf("first frame through %s is %s %s, want a welcome that tells of files", front, e.Type, e.Payload)
	}
	return conn, w
}

// nextFile reads conn up to the next file frame.
func nextFile(ctx context.Context, t *testing.T, conn *websocket.Conn) filePayload {
	t.Helper()
	for {
		if e := nextFrame(ctx, t, conn); e.Type == typeFile {
			var f filePayload
			json.Unmarshal(e.Payload, &f)
			return f
		}
	}
}

// nextFrame reads one frame from conn.
func nextFrame(ctx context.Context, t *testing.T, conn *websocket.Conn) envelope {
	t.Helper()
	_, data, err := conn.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var e envelope
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatalf("frame %q: %v", data, err)
	}
	return e
}
