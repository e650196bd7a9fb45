package main

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// This test shares files across machines behind the stand-in for Fly's
// proxy (flyproxy_test.go): an upload that names the room's machine reaches
// it whatever its size, and downloads are replayed like any other request.
// Behind HAProxy and Caddy it is test/files_lb_test.go.

// joinThrough joins room as name through the proxy or load balancer at
// front, and returns the client and its welcome.
func joinThrough(t *testing.T, front, room, name string) (*testClient, welcomePayload) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(front, "http")+"/ws/"+room+"?username="+name, nil)
	if err != nil {
		t.Fatalf("join %s through %s: %v (response %v)", room, front, err, resp)
	}
	conn.SetReadLimit(1 << 24)
	t.Cleanup(func() { conn.CloseNow() })
	c := &testClient{t: t, conn: conn}
	w := expect[welcomePayload](c, typeWelcome)
	if w.Files == nil {
		t.Fatalf("welcome through %s says nothing of files", front)
	}
	skipUntil[userCountPayload](c, typeUserCount)
	return c, w
}

// shareThrough uploads data into room through front as the member holding
// token, checks that other hears of it, downloads it through front and
// checks its SHA-256.
func shareThrough(t *testing.T, front, room, token string, header http.Header, other *testClient, data []byte) {
	t.Helper()
	via := &testServer{Server: &httptest.Server{URL: front}}
	status, p, e := via.upload(t, fileUploadReq{room: room, token: token, name: "photo.jpg", typ: "image/jpeg", body: data, header: header})
	if status != http.StatusCreated {
		t.Fatalf("upload of %d bytes through %s: %d %+v", len(data), front, status, e)
	}
	if got := skipUntil[filePayload](other, typeFile); got.File != p.File {
		t.Fatalf("the other member heard of file %q, want %q", got.File, p.File)
	}
	resp, body := via.download(t, room, p.File)
	if resp.StatusCode != http.StatusOK || sha256.Sum256(body) != sha256.Sum256(data) {
		t.Fatalf("download through %s: %d, %d bytes; want 200 and the %d bytes uploaded", front, resp.StatusCode, len(body), len(data))
	}
}

// On Fly.io an upload names the room's machine in fly-force-instance-id, as
// the welcome says, and reaches it without a replay, whatever its size;
// without the header, a body over 1 MB that reaches another machine is
// lost, as Fly's proxy does not replay it. Downloads are small requests and
// are replayed like any other.
func TestFilesBehindFlyProxy(t *testing.T) {
	t.Parallel()
	f := startFlyFleet(t, "1781954c0e4e18", "3d8d2e6b4c1f28", "6e8259d1c99038")
	room := f.createRoom()
	owner := f.expectedOwner(room)
	for _, id := range f.ids() {
		if id != owner {
			f.proxy.first = id // Every request first reaches a machine that is not the room's.
			break
		}
	}
	alice, w := joinThrough(t, f.front.URL, room, "alice")
	bob, _ := joinThrough(t, f.front.URL, room, "bob")
	alice.waitForCount(2)
	if w.Files.Machine != owner {
		t.Fatalf("welcome names machine %q for uploads, want the room's owner %s", w.Files.Machine, owner)
	}
	forced := http.Header{"Fly-Force-Instance-Id": {w.Files.Machine}}
	shareThrough(t, f.front.URL, room, w.Files.Token, forced, bob, randomFile(3<<20))
	shareThrough(t, f.front.URL, room, w.Files.Token, nil, bob, randomFile(100<<10)) // small enough to replay
	if f.proxy.forced.Load() != 1 || f.proxy.tooLarge.Load() != 0 {
		t.Errorf("proxy: %d forced, %d refused replays; want 1 and 0", f.proxy.forced.Load(), f.proxy.tooLarge.Load())
	}

	via := &testServer{Server: f.front}
	status, _, _ := via.upload(t, fileUploadReq{room: room, token: w.Files.Token, name: "big.bin", typ: "application/octet-stream", body: randomFile(2 << 20)})
	if status != http.StatusBadGateway || f.proxy.tooLarge.Load() != 1 {
		t.Errorf("a 2 MiB upload without fly-force-instance-id: %d, %d refused replays; want 502 and 1", status, f.proxy.tooLarge.Load())
	}
	if n := f.machines[owner].srv.files.count.Load(); n != 2 {
		t.Errorf("the room's machine holds %d files, want the 2 that arrived", n)
	}
	stillChats(t, alice, "files and chat on one machine")
}
