package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Tests of file sharing: uploads tied to a live member, downloads by id,
// every limit and refusal, and eviction past the budgets.

// fileUploadReq is one upload as a test makes it.
type fileUploadReq struct {
	room, token, name, typ, meta, clientID string
	body                                   []byte
	chunked                                bool // no Content-Length
	header                                 http.Header
}

// upload posts a file and returns the status and the decoded body: a
// filePayload on 201, an errorPayload otherwise.
func (ts *testServer) upload(t *testing.T, u fileUploadReq) (int, filePayload, errorPayload) {
	t.Helper()
	var body io.Reader = bytes.NewReader(u.body)
	if u.chunked {
		body = io.MultiReader(body) // Hides the length: sent chunked.
	}
	req, err := http.NewRequest(http.MethodPost, ts.URL+"/r/"+u.room+"/files", body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range u.header {
		req.Header[k] = v
	}
	set := func(k, v string) {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	set(headerUploadToken, u.token)
	set(headerFileName, url.PathEscape(u.name))
	set("Content-Type", u.typ)
	set(headerFileMeta, u.meta)
	set(headerClientID, u.clientID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var p filePayload
	var e errorPayload
	if resp.StatusCode == http.StatusCreated {
		err = json.Unmarshal(raw, &p)
	} else if json.Unmarshal(raw, &e) != nil {
		e.Text = string(raw) // A proxy's own answer.
	}
	if err != nil {
		t.Fatalf("upload answered %d with %q, not JSON", resp.StatusCode, raw)
	}
	return resp.StatusCode, p, e
}

// download fetches a file and returns the response and its body.
func (ts *testServer) download(t *testing.T, room, id string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(ts.URL + "/r/" + room + "/files/" + id)
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// joinForFiles joins room as name and returns the client and its upload
// token, having read everything up to its own arrival.
func (ts *testServer) joinForFiles(t *testing.T, room, name string) (*testClient, string) {
	t.Helper()
	c := ts.dial(t, room, name)
	w := expect[welcomePayload](c, typeWelcome)
	if w.Files == nil || w.Files.Token == "" {
		t.Fatalf("welcome says nothing of files: %+v", w)
	}
	skipUntil[userCountPayload](c, typeUserCount)
	return c, w.Files.Token
}

// randomFile returns n random bytes.
func randomFile(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// heldFiles reports the files and bytes the server holds.
func (ts *testServer) heldFiles() (files, bytes int64) {
	return ts.srv.files.count.Load(), ts.srv.files.held.Load()
}

// budgetUsed is what FILE_TOTAL_BYTES counts now: stored and reserved.
func (ts *testServer) budgetUsed() int64 {
	ts.srv.files.mu.Lock()
	defer ts.srv.files.mu.Unlock()
	return ts.srv.files.used
}

// storedFileBytes is a test hook: the bytes the server holds for every
// file of room, concatenated in order.
func (s *server) storedFileBytes(room string) [][]byte {
	s.mu.Lock()
	r := s.rooms[room]
	s.mu.Unlock()
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var out [][]byte
	for _, f := range r.files {
		out = append(out, bytes.Join(f.chunks, nil))
	}
	return out
}

// stillChats checks that c's connection carries messages after a refusal.
func stillChats(t *testing.T, c *testClient, text string) {
	t.Helper()
	c.say(text, "")
	if m := c.nextMessage(); m.Message != text {
		t.Fatalf("after the refusal got %q, want %q", m.Message, text)
	}
}

func TestFileRoundTrip(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	alice, token := ts.joinForFiles(t, "photos", "alice")
	bob, _ := ts.joinForFiles(t, "photos", "bob")
	alice.waitForCount(2)
	data := randomFile(3<<20 + 12345)
	name := "Zoë's «holiday» photo.png"
	status, p, e := ts.upload(t, fileUploadReq{room: "photos", token: token, name: name, typ: "image/PNG; q=1", clientID: "c-1", body: data,
		header: http.Header{headerImageSize: {"640x480"}}})
	if status != http.StatusCreated {
		t.Fatalf("upload: %d %+v", status, e)
	}
	got := skipUntil[filePayload](bob, typeFile)
	want := filePayload{ID: p.ID, Username: "alice", File: p.File, Size: int64(len(data)), Type: "image/png", Name: name, Width: 640, Height: 480, TS: got.TS, ClientID: "c-1"}
	if got != want || p != want {
		t.Fatalf("bob got %+v, the uploader %+v; want %+v", got, p, want)
	}
	if len(got.File) != 22 {
		t.Errorf("file id %q is not 128 bits of base64url", got.File)
	}
	resp, body := ts.download(t, "photos", got.File)
	if resp.StatusCode != http.StatusOK || sha256.Sum256(body) != sha256.Sum256(data) {
		t.Fatalf("download: %d, %d bytes; want 200 and the same SHA-256 as the %d uploaded", resp.StatusCode, len(body), len(data))
	}
	for k, v := range map[string]string{
		"Content-Disposition": "attachment", "X-Content-Type-Options": "nosniff",
		"Content-Security-Policy": fileCSP, "Content-Type": "application/octet-stream", "Cache-Control": "no-store",
	} {
		if resp.Header.Get(k) != v {
			t.Errorf("%s: %q, want %q", k, resp.Header.Get(k), v)
		}
	}
	// A newcomer gets the file in the history, and the uploader chats on.
	carol := ts.dial(t, "photos", "carol")
	expect[welcomePayload](carol, typeWelcome)
	if h := expect[filePayload](carol, typeFile); h != want {
		t.Errorf("newcomer's history has %+v, want %+v", h, want)
	}
	stillChats(t, alice, "did it arrive?")
	if n, b := ts.heldFiles(); n != 1 || b != int64(len(data)) {
		t.Errorf("server holds %d files of %d bytes, want 1 of %d", n, b, len(data))
	}
	if strings.Contains(ts.logs.String(), "holiday") {
		t.Errorf("the file name reached the log:\n%s", ts.logs)
	}
}

func TestFileOverTheCapIsRefusedWhileReading(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"FILE_MAX_BYTES": "64KiB"})
	alice, token := ts.joinForFiles(t, "caps", "alice")
	for _, chunked := range []bool{false, true} {
		status, _, e := ts.upload(t, fileUploadReq{room: "caps", token: token, name: "big.bin", typ: "application/octet-stream",
			body: randomFile(64<<10 + 1), chunked: chunked})
		if status != http.StatusRequestEntityTooLarge || e.Code != codeFileTooLarge {
			t.Errorf("chunked=%v: %d %+v, want 413 %s", chunked, status, e, codeFileTooLarge)
		}
	}
	// Exactly the cap is fine, even without a length.
	status, _, e := ts.upload(t, fileUploadReq{room: "caps", token: token, name: "ok.bin", typ: "application/octet-stream",
		body: randomFile(64 << 10), chunked: true})
	if status != http.StatusCreated {
		t.Fatalf("a file of exactly FILE_MAX_BYTES: %d %+v", status, e)
	}
	if n, b := ts.heldFiles(); n != 1 || b != 64<<10 {
		t.Errorf("server holds %d files of %d bytes, want only the one that fit", n, b)
	}
	if used := ts.budgetUsed(); used != 64<<10 {
		t.Errorf("budget counts %d bytes, want only the stored file's", used)
	}
	stillChats(t, alice, "still here")
}

func TestFileUploadRefusals(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"CLIENT_IP_HEADER": "X-Test-IP"})
	alice, token := ts.joinForFiles(t, "mine", "alice")
	_, otherToken := ts.joinForFiles(t, "other", "bob")
	var created struct{ Room string }
	getJSON(t, mustRequest(t, http.MethodPost, ts.URL+"/api/rooms", strings.NewReader(`{"e2ee":true}`)), &created)
	_, sealedToken := ts.joinForFiles(t, created.Room, "carol")
	file := []byte("hello")
	cases := []struct {
		what   string
		req    fileUploadReq
		status int
		code   string
	}{
		{"no token", fileUploadReq{room: "mine", name: "a.txt", typ: "text/plain"}, 403, codeNotMember},
		{"another room's token", fileUploadReq{room: "mine", token: otherToken, name: "a.txt", typ: "text/plain"}, 403, codeNotMember},
		{"a room that does not exist", fileUploadReq{room: "nowhere", token: token, name: "a.txt", typ: "text/plain"}, 403, codeNotMember},
		{"a bad room name", fileUploadReq{room: "no%20such", token: token, name: "a.txt", typ: "text/plain"}, 400, codeBadRoom},
		{"an empty body", fileUploadReq{room: "mine", token: token, name: "a.txt", typ: "text/plain", body: []byte{}}, 400, codeBadFile},
		{"an empty chunked body", fileUploadReq{room: "mine", token: token, name: "a.txt", typ: "text/plain", body: []byte{}, chunked: true}, 400, codeBadFile},
		{"no name", fileUploadReq{room: "mine", token: token, typ: "text/plain"}, 400, codeBadFile},
		{"a name with a control character", fileUploadReq{room: "mine", token: token, name: "a\x01.txt", typ: "text/plain"}, 400, codeBadFile},
		{"a name that is too long", fileUploadReq{room: "mine", token: token, name: strings.Repeat("a", 256), typ: "text/plain"}, 400, codeBadFile},
		{"no media type", fileUploadReq{room: "mine", token: token, name: "a.txt"}, 400, codeBadFile},
		{"a bad media type", fileUploadReq{room: "mine", token: token, name: "a.txt", typ: "text"}, 400, codeBadFile},
		{"a bad image size", fileUploadReq{room: "mine", token: token, name: "a.png", typ: "image/png", header: http.Header{headerImageSize: {"0x10"}}}, 400, codeBadFile},
		{"a bad client id", fileUploadReq{room: "mine", token: token, name: "a.txt", typ: "text/plain", clientID: "a b"}, 400, codeBadFile},
		{"a plain name in an encrypted room", fileUploadReq{room: created.Room, token: sealedToken, name: "a.txt", typ: "text/plain"}, 400, codeBadFile},
		{"meta that is not sealed", fileUploadReq{room: created.Room, token: sealedToken, meta: "a.txt"}, 400, codeBadFile},
	}
	for _, c := range cases {
		if c.req.body == nil {
			c.req.body = file
		}
		status, _, e := ts.upload(t, c.req)
		if status != c.status || e.Code != c.code {
			t.Errorf("%s: %d %+v, want %d %s", c.what, status, e, c.status, c.code)
		}
	}
	if n, b := ts.heldFiles(); n != 0 || b != 0 || ts.budgetUsed() != 0 {
		t.Errorf("after refusals the server holds %d files, %d bytes, %d counted; want none", n, b, ts.budgetUsed())
	}
	var metrics bytes.Buffer
	ts.srv.metrics.writeTo(&metrics)
	for _, line := range []string{`hallway_uploads_refused_total{code="not_member"} 3`, `hallway_uploads_refused_total{code="bad_file"} 11`,
		"hallway_files 0", "hallway_file_bytes 0"} {
		if !strings.Contains(metrics.String(), line+"\n") {
			t.Errorf("metrics lack %q:\n%s", line, metrics.String())
		}
	}
	stillChats(t, alice, "nothing broke")
}

// mustRequest builds a request or fails the test.
func mustRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestFileUploadsRateLimitedPerIP(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"CLIENT_IP_HEADER": "X-Test-IP", "FILE_UPLOAD_RATE": "2"})
	alice, token := ts.joinForFiles(t, "busy", "alice")
	up := func(ip string) (int, errorPayload) {
		status, _, e := ts.upload(t, fileUploadReq{room: "busy", token: token, name: "a.txt", typ: "text/plain",
			body: []byte("x"), header: fromIP(ip)})
		return status, e
	}
	for i := range 2 {
		if status, e := up("10.0.0.1"); status != http.StatusCreated {
			t.Fatalf("upload %d: %d %+v", i+1, status, e)
		}
	}
	if status, e := up("10.0.0.1"); status != http.StatusTooManyRequests || e.Code != codeRateLimited {
		t.Errorf("third upload in a minute: %d %+v, want 429 %s", status, e, codeRateLimited)
	}
	if status, e := up("10.0.0.2"); status != http.StatusCreated {
		t.Errorf("another address: %d %+v, want 201", status, e)
	}
	stillChats(t, alice, "still fine")
}

// rawUpload starts an upload by hand on its own connection: the headers,
// then only part of a body of length bytes.
func (ts *testServer) rawUpload(t *testing.T, room, token string, length int, part []byte) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST /r/%s/files HTTP/1.1\r\nHost: x\r\nUpload-Token: %s\r\nFile-Name: slow.bin\r\n"+
		"Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", room, token, length)
	conn.Write(part)
	return conn
}

// readResponse reads one HTTP response from conn and its JSON error.
func readResponse(t *testing.T, conn net.Conn) (int, errorPayload) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(testTimeout))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	var e errorPayload
	json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e
}

func TestSlowUploadIsCutByTheTimeout(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"FILE_UPLOAD_TIMEOUT": "300ms"})
	alice, token := ts.joinForFiles(t, "slow", "alice")
	conn := ts.rawUpload(t, "slow", token, 1000, []byte("only the start"))
	if status, e := readResponse(t, conn); status != http.StatusRequestTimeout || e.Code != codeUploadTimeout {
		t.Errorf("a body that never finishes: %d %+v, want 408 %s", status, e, codeUploadTimeout)
	}
	if n, _ := ts.heldFiles(); n != 0 || ts.budgetUsed() != 0 {
		t.Errorf("after the timeout the server holds %d files and counts %d bytes, want none", n, ts.budgetUsed())
	}
	stillChats(t, alice, "not stuck")
}

func TestFullBudgetRefusesUploads(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"FILE_MAX_BYTES": "2KiB", "FILE_ROOM_BYTES": "2KiB", "FILE_TOTAL_BYTES": "3KiB"})
	alice, token := ts.joinForFiles(t, "first", "alice")
	_, other := ts.joinForFiles(t, "second", "bob")
	// An upload in flight holds its bytes; they cannot be evicted.
	conn := ts.rawUpload(t, "first", token, 2048, []byte("x"))
	waitFor(t, "the upload's reservation", func() bool {
		return ts.budgetUsed() == 2048
	})
	status, _, e := ts.upload(t, fileUploadReq{room: "second", token: other, name: "b.bin", typ: "application/octet-stream", body: randomFile(1025 + 512)})
	if status != http.StatusInsufficientStorage || e.Code != codeStorageFull {
		t.Errorf("upload past a budget held by uploads in flight: %d %+v, want 507 %s", status, e, codeStorageFull)
	}
	conn.Close()
	waitFor(t, "the broken upload's bytes given back", func() bool {
		return ts.budgetUsed() == 0
	})
	if status, _, e := ts.upload(t, fileUploadReq{room: "second", token: other, name: "b.bin", typ: "application/octet-stream", body: randomFile(1536)}); status != http.StatusCreated {
		t.Errorf("once the budget is free: %d %+v", status, e)
	}
	stillChats(t, alice, "carry on")
}

func TestFilesEvictedOldestFirstFromLeastActiveRooms(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"FILE_MAX_BYTES": "1KiB", "FILE_ROOM_BYTES": "2KiB", "FILE_TOTAL_BYTES": "3KiB"})
	tokens := map[string]string{}
	for _, room := range []string{"ra", "rb", "rc"} {
		_, tokens[room] = ts.joinForFiles(t, room, "u")
	}
	ids := map[string]string{}
	put := func(label, room string) {
		t.Helper()
		status, p, e := ts.upload(t, fileUploadReq{room: room, token: tokens[room], name: label, typ: "application/octet-stream", body: randomFile(1024)})
		if status != http.StatusCreated {
			t.Fatalf("upload %s: %d %+v", label, status, e)
		}
		ids[label] = p.File
	}
	there := func(label, room string) bool {
		resp, _ := ts.download(t, room, ids[label])
		return resp.StatusCode == http.StatusOK
	}
	put("a1", "ra")
	put("b1", "rb")
	put("a2", "ra") // ra is now more recently active than rb
	put("c1", "rc") // past FILE_TOTAL_BYTES: rb, least recently active, loses its file
	if there("b1", "rb") || !there("a1", "ra") || !there("a2", "ra") || !there("c1", "rc") {
		t.Errorf("after the total budget: a1 %v a2 %v b1 %v c1 %v; want only b1 gone",
			there("a1", "ra"), there("a2", "ra"), there("b1", "rb"), there("c1", "rc"))
	}
	resp, _ := ts.download(t, "rb", ids["b1"])
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("evicted file: %d, want 404", resp.StatusCode)
	}
	put("a3", "ra") // past FILE_ROOM_BYTES: ra's oldest goes
	if there("a1", "ra") || !there("a2", "ra") || !there("a3", "ra") {
		t.Errorf("after the room budget: a1 %v a2 %v a3 %v; want only a1 gone", there("a1", "ra"), there("a2", "ra"), there("a3", "ra"))
	}
	if n, b := ts.heldFiles(); n != 3 || b != 3072 {
		t.Errorf("server holds %d files, %d bytes; want 3 and 3072", n, b)
	}
	if _, body := ts.download(t, "rb", "AAAAAAAAAAAAAAAAAAAAAA"); !strings.Contains(string(body), codeFileGone) {
		t.Errorf("an unknown id: %s, want %s", body, codeFileGone)
	}
}

func TestFilesGoWithTheirRoom(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"ROOM_IDLE_TIMEOUT": "50ms"})
	alice, token := ts.joinForFiles(t, "brief", "alice")
	status, p, e := ts.upload(t, fileUploadReq{room: "brief", token: token, name: "a.txt", typ: "text/plain", body: []byte("bye")})
	if status != http.StatusCreated {
		t.Fatalf("upload: %d %+v", status, e)
	}
	alice.conn.CloseNow()
	waitFor(t, "the room and its files to go", func() bool {
		n, b := ts.heldFiles()
		return n == 0 && b == 0
	})
	if resp, _ := ts.download(t, "brief", p.File); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a file of an expired room: %d, want 404", resp.StatusCode)
	}
}

func TestFileUploadNeedsALiveMember(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	alice, token := ts.joinForFiles(t, "gone", "alice")
	ts.joinForFiles(t, "gone", "bob") // keeps the room
	alice.conn.Close(1000, "")
	waitFor(t, "alice to leave", func() bool {
		ts.srv.mu.Lock()
		r := ts.srv.rooms["gone"]
		ts.srv.mu.Unlock()
		return r.uploader(token) == nil
	})
	status, _, e := ts.upload(t, fileUploadReq{room: "gone", token: token, name: "a.txt", typ: "text/plain", body: []byte("late")})
	if status != http.StatusForbidden || e.Code != codeNotMember {
		t.Errorf("upload after leaving: %d %+v, want 403 %s", status, e, codeNotMember)
	}
}

func TestEncryptedRoomFilesKeepTheirMetaSealed(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	var created struct{ Room string }
	getJSON(t, mustRequest(t, http.MethodPost, ts.URL+"/api/rooms", strings.NewReader(`{"e2ee":true}`)), &created)
	alice, token := ts.joinForFiles(t, created.Room, "alice")
	ciphertext := randomFile(5000)
	status, p, e := ts.upload(t, fileUploadReq{room: created.Room, token: token, meta: "e1.c2VhbGVk", typ: "application/octet-stream", body: ciphertext})
	if status != http.StatusCreated {
		t.Fatalf("upload: %d %+v", status, e)
	}
	got := skipUntil[filePayload](alice, typeFile)
	if got.Sealed != "e1.c2VhbGVk" || got.Name != "" || got.Type != "" || got != p {
		t.Errorf("file frame %+v; want the sealed meta only", got)
	}
	if stored := ts.srv.storedFileBytes(created.Room); len(stored) != 1 || !bytes.Equal(stored[0], ciphertext) {
		t.Errorf("the server holds something other than the bytes sent")
	}
}

func TestWelcomeAnnouncesFileLimits(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"FILE_MAX_BYTES": "1MiB", "FILE_ROOM_BYTES": "4MiB"})
	c := ts.dial(t, "limits", "alice")
	w := expect[welcomePayload](c, typeWelcome)
	if w.Files == nil || w.Files.MaxBytes != 1<<20 || w.Files.RoomBytes != 4<<20 || len(w.Files.Token) != 22 || w.Files.Machine != "" {
		t.Errorf("welcome files = %+v", w.Files)
	}
	off := setupTest(t, map[string]string{"FILE_MAX_BYTES": "0"})
	c = off.dial(t, "limits", "alice")
	if w := expect[welcomePayload](c, typeWelcome); w.Files != nil {
		t.Errorf("with files off, welcome says %+v", w.Files)
	}
	status, _, e := off.upload(t, fileUploadReq{room: "limits", token: "x", name: "a", typ: "text/plain", body: []byte("x")})
	if status != http.StatusNotFound {
		t.Errorf("upload with files off: %d %+v, want 404", status, e)
	}
}

func TestFileSettings(t *testing.T) {
	t.Parallel()
	c := testConfig(t, map[string]string{"MEMORY_LIMIT": "64MiB"})
	if c.FileTotalBytes != 32<<20 || c.FileRoomBytes != 32<<20 || c.FileMaxBytes != 10<<20 {
		t.Errorf("MEMORY_LIMIT=64MiB: files %v total, %v per room, %v each", c.FileTotalBytes, c.FileRoomBytes, c.FileMaxBytes)
	}
	c = testConfig(t, map[string]string{"MEMORY_LIMIT": "16MiB"})
	if c.FileTotalBytes+c.HistoryTotalBytes > 12<<20 || c.FileMaxBytes > c.FileRoomBytes {
		t.Errorf("MEMORY_LIMIT=16MiB: files %v, history %v, max %v", c.FileTotalBytes, c.HistoryTotalBytes, c.FileMaxBytes)
	}
	for _, bad := range []map[string]string{
		{"FILE_MAX_BYTES": "2MiB", "FILE_ROOM_BYTES": "1MiB"},
		{"FILE_ROOM_BYTES": "2MiB", "FILE_TOTAL_BYTES": "1MiB"},
		{"MEMORY_LIMIT": "64MiB", "FILE_TOTAL_BYTES": "60MiB"},
		{"FILE_UPLOAD_TIMEOUT": "0s"},
		{"FILE_UPLOAD_RATE": "-1"},
	} {
		if _, err := loadConfig(bad); err == nil {
			t.Errorf("loadConfig(%v) accepted it", bad)
		}
	}
}
