//go:build linux

package test

// The attack test with files: a crowd of addresses uploads as much as it
// may, at once, into rooms of its own, while an honest pair chats and then
// shares a file. The server's peak RSS must stay within the bound the
// attack test documents (MEMORY_LIMIT plus the runtime's allowance).

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/coder/websocket"
)

// The upload attack's size: more than FILE_TOTAL_BYTES (half of
// MEMORY_LIMIT, 32 MiB) many times over, all of it at once.
const (
	attackUploaders   = 30
	attackUploadsEach = 4
	attackFileSize    = 4 << 20
)

// fileMember is a member who reads everything and keeps its upload token.
type fileMember struct {
	conn  *websocket.Conn
	token string
	texts chan string      // chat messages from others
	files chan filePayload // file frames
}

// fileMember joins room from ip as name and starts reading.
func (a *attacker) fileMember(ctx context.Context, ip, room, name string) *fileMember {
	conn := a.dial(ctx, ip, room, name, false)
	if conn == nil {
		return nil
	}
	_, data, err := conn.Read(ctx)
	var e envelope
	var w welcomePayload
	if err != nil || json.Unmarshal(data, &e) != nil || json.Unmarshal(e.Payload, &w) != nil || w.Files == nil {
		a.count("no welcome")
		return nil
	}
	m := &fileMember{conn: conn, token: w.Files.Token, texts: make(chan string, 100), files: make(chan filePayload, 100)}
	go func() {
		for {
			_, data, err := conn.Read(context.Background())
			if err != nil {
				return
			}
			var e envelope
			var c chatMessagePayload
			var f filePayload
			switch {
			case json.Unmarshal(data, &e) != nil:
			case e.Type == typeChatMessage && json.Unmarshal(e.Payload, &c) == nil && c.Username != name:
				m.texts <- c.Message
			case e.Type == typeFile && json.Unmarshal(e.Payload, &f) == nil:
				select {
				case m.files <- f:
				default: // An attacker does not look at its echoes.
				}
			}
		}
	}()
	return m
}

// upload posts data into room as the holder of token from ip, counts the
// answer ("upload 201", "upload 507 storage_full", …) and returns the file
// id, if it was stored.
func (a *attacker) upload(ctx context.Context, ip, room, token string, data []byte) string {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, a.base+"/r/"+room+"/files", bytes.NewReader(data))
	req.Header = http.Header{"X-Test-IP": {ip}, headerUploadToken: {token}, headerFileName: {"x.bin"}, "Content-Type": {"application/octet-stream"}}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.count("upload failed")
		return ""
	}
	defer resp.Body.Close()
	var p filePayload
	var e errorPayload
	if resp.StatusCode == http.StatusCreated {
		json.NewDecoder(resp.Body).Decode(&p)
		a.count("upload 201")
		return p.File
	}
	json.NewDecoder(resp.Body).Decode(&e)
	a.count(fmt.Sprintf("upload %d %s", resp.StatusCode, e.Code))
	return ""
}

func TestAttackWithUploads(t *testing.T) {
	ctx, srv, a := startAttack(t)
	alice := a.fileMember(ctx, "198.51.100.1", "honest", "alice")
	bob := a.fileMember(ctx, "198.51.100.2", "honest", "bob")
	if alice == nil || bob == nil {
		t.Fatal("the honest pair was refused before any attack")
	}
	health := a.watchHealth(ctx)

	junk := make([]byte, attackFileSize)
	rand.Read(junk)
	var attack sync.WaitGroup
	for i := range attackUploaders {
		attack.Go(func() {
			ip := fmt.Sprintf("198.19.%d.%d", i/250, i%250+1)
			room := fmt.Sprintf("upload%d", i)
			if m := a.fileMember(ctx, ip, room, "u"); m != nil {
				for range attackUploadsEach {
					a.upload(ctx, ip, room, m.token, junk)
				}
			}
		})
	}
	attack.Wait()
	healthy, unhealthy := health()

	a.checkSurvived(srv, healthy, unhealthy)
	if a.refusals["upload 201"] == 0 {
		t.Errorf("no upload was stored at all: %v", a.refusals)
	}

	// The honest pair chats and shares a file.
	b, _ := json.Marshal(outEnvelope{Type: typeChatMessage, Payload: inboundMessage{Message: "still here"}})
	if err := alice.conn.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatalf("alice could not send: %v", err)
	}
	select {
	case got := <-bob.texts:
		if got != "still here" {
			t.Errorf("after the attack bob got %q", got)
		}
	case <-ctx.Done():
		t.Fatal("bob waited in vain for alice's message")
	}
	photo := make([]byte, 1<<20)
	rand.Read(photo)
	id := a.upload(ctx, "198.51.100.1", "honest", alice.token, photo)
	if id == "" {
		t.Fatalf("alice could not share a file after the attack: %v", a.refusals)
	}
	select {
	case f := <-bob.files:
		if f.File != id {
			t.Errorf("bob heard of file %q, want %q", f.File, id)
		}
	case <-ctx.Done():
		t.Fatal("bob waited in vain for alice's file")
	}
	resp, err := http.Get(a.base + "/r/honest/files/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if sha256.Sum256(got) != sha256.Sum256(photo) {
		t.Errorf("bob downloaded %d bytes, not alice's %d", len(got), len(photo))
	}
}
