package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
)

// These tests check encrypted rooms on the server: the flag in welcome,
// unsealed messages refused with not_encrypted, creation requests
// validated, ordinary rooms unchanged, and -version's hashes against the
// files served. The page's side is in test/e2ee_browser_test.go.

// createRoomBody posts body to /api/rooms and returns the status and answer.
func (ts *testServer) createRoomBody(t *testing.T, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/api/rooms", strings.NewReader(body))
	var out map[string]any
	resp := getJSON(t, req, &out)
	return resp.StatusCode, out
}

// sealedHello is a well-formed sealed message as far as the server can
// tell: the prefix and base64url. The server never reads further.
const sealedHello = "e1.AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMA"

func TestEncryptedRoomIsMarkedAndRefusesPlaintext(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	const check = "q83vEjRWeJCrze8SNFZ4kA"
	status, out := ts.createRoomBody(t, `{"e2ee":true,"keyCheck":"`+check+`"}`)
	if status != http.StatusCreated || out["e2ee"] != true {
		t.Fatalf("create an encrypted room: %d %v, want 201 with e2ee true", status, out)
	}
	code := out["room"].(string)
	alice := ts.dial(t, code, "alice")
	w, _ := alice.welcome()
	if !w.E2EE || w.KeyCheck != check {
		t.Fatalf("welcome %+v, want e2ee with the creator's key check", w)
	}
	bob := ts.dial(t, code, "bob")
	bob.welcome()
	for _, plain := range []string{"hello in the clear", "e1.", "e1.not base64!", "E1.AAAA", "e2.AAAA"} {
		alice.say(plain, "c-1")
		e := skipUntil[errorPayload](alice, typeError)
		if e.Code != codeNotEncrypted || e.ClientID != "c-1" || !strings.Contains(e.Text, "end-to-end encrypted") {
			t.Fatalf("%q in an encrypted room: %+v, want not_encrypted naming c-1", plain, e)
		}
	}
	alice.say(sealedHello, "c-2")
	if m := bob.nextMessage(); m.Message != sealedHello || m.Username != "alice" || m.ID != 1 {
		t.Fatalf("bob got %+v, want the sealed message relayed as is, as the first of the room", m)
	}
	// The room's history holds only what was relayed.
	carol := ts.dial(t, code, "carol")
	if _, history := carol.welcome(); len(history) != 1 || history[0].Message != sealedHello {
		t.Fatalf("replay %+v, want only the sealed message", history)
	}
}

func TestOrdinaryRoomsAreUnchanged(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	status, out := ts.createRoomBody(t, `{"capacity":5}`)
	if status != http.StatusCreated || out["e2ee"] != false {
		t.Fatalf("create: %d %v, want an ordinary room", status, out)
	}
	for _, code := range []string{out["room"].(string), "lobby"} {
		alice := ts.dial(t, code, "alice")
		w, _ := alice.welcome()
		if w.E2EE || w.KeyCheck != "" {
			t.Fatalf("%s: welcome %+v, want no e2ee", code, w)
		}
		// Both kinds of text pass, and the welcome frame carries no new fields.
		alice.say("plain words", "")
		alice.say(sealedHello, "")
		if a, b := alice.nextMessage(), alice.nextMessage(); a.Message != "plain words" || b.Message != sealedHello {
			t.Fatalf("%s: got %q and %q", code, a.Message, b.Message)
		}
	}
	raw := encodeFrame(typeWelcome, welcomePayload{Username: "a", Room: "b", MaxMessageBytes: 1})
	if want := `{"type":"welcome","payload":{"username":"a","room":"b","maxMessageBytes":1}}`; string(raw) != want {
		t.Fatalf("ordinary welcome is %s, want %s", raw, want)
	}
}

func TestCreateEncryptedRoomValidation(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	for _, body := range []string{
		`{"keyCheck":"q83vEjRWeJCrze8SNFZ4kA"}`,             // a key check for an ordinary room
		`{"e2ee":true,"keyCheck":"short"}`,                  // wrong length
		`{"e2ee":true,"keyCheck":"q83vEjRWeJCrze8SNFZ4k+"}`, // not base64url
		`{"e2ee":"yes"}`,             // not a boolean
		`{"e2ee":true,"capacity":1}`, // capacity still checked
		`{"e2ee":true,"keyCheck":"q83vEjRWeJCrze8SNFZ4kA=="}`, // padded
	} {
		status, out := ts.createRoomBody(t, body)
		if status != http.StatusBadRequest || out["code"] != codeBadRequest || !strings.Contains(out["text"].(string), "e2ee") {
			t.Errorf("%s: %d %v, want 400 bad_request explaining e2ee", body, status, out)
		}
	}
	// A private encrypted room is both.
	status, out := ts.createRoomBody(t, `{"e2ee":true,"capacity":2}`)
	if status != http.StatusCreated || out["capacity"] != float64(2) || out["e2ee"] != true {
		t.Fatalf("private encrypted room: %d %v", status, out)
	}
}

func TestVersionListsStaticHashes(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	var out bytes.Buffer
	if err := run([]string{"-version"}, &out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Scan() // the version line
	files := 0
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != 64 {
			t.Fatalf("line %q is not sha256sum's format", sc.Text())
		}
		resp, err := http.Get(ts.URL + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got := sha256.Sum256(body)
		if resp.StatusCode != http.StatusOK || hex.EncodeToString(got[:]) != sum {
			t.Errorf("%s: served %d with SHA-256 %x, -version says %s", name, resp.StatusCode, got, sum)
		}
		files++
	}
	if files < 5 || !strings.Contains(text, "  crypto.js\n") || !strings.Contains(text, "  app.js\n") {
		t.Fatalf("-version listed %d files:\n%s", files, text)
	}
}
