package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// This test sends a chat message in the same write as the WebSocket
// upgrade request: the server must keep those bytes and read the stream
// after them correctly. It builds and reads raw frames by hand.

// TestFrameSentWithTheHandshakeIsKept sends a chat message in the same
// write as the upgrade request, as a client may once it has the 101: the
// server must read it, not lose its bytes and misread the stream after.
func TestFrameSentWithTheHandshakeIsKept(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(testTimeout))
	req := "GET /ws/early?username=eager HTTP/1.1\r\nHost: " + strings.TrimPrefix(ts.URL, "http://") + "\r\n" +
		"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	frame := maskedTextFrame(`{"type":"chatMessage","payload":{"message":"early bird","clientId":"e1"}}`)
	if _, err := conn.Write(append([]byte(req), frame...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v, want 101", resp, err)
	}
	for {
		payload := readServerFrame(t, br)
		var e envelope
		var m chatMessagePayload
		if json.Unmarshal(payload, &e) != nil {
			t.Fatalf("frame %q is not an envelope", payload)
		}
		if e.Type == typeError {
			t.Fatalf("the early message was refused: %s", e.Payload)
		}
		if e.Type == typeChatMessage && json.Unmarshal(e.Payload, &m) == nil {
			if m.Message != "early bird" || m.ClientID != "e1" {
				t.Fatalf("got %+v, want the early message", m)
			}
			return
		}
	}
}

// maskedTextFrame encodes text, under 126 bytes, as one masked client frame
// (RFC 6455 5.2).
func maskedTextFrame(text string) []byte {
	mask := [4]byte{0x12, 0x34, 0x56, 0x78}
	f := []byte{0x81, 0x80 | byte(len(text))} // Under 126 bytes: a 7-bit length.
	f = append(f, mask[:]...)
	for i := range len(text) {
		f = append(f, text[i]^mask[i%4])
	}
	return f
}

// readServerFrame reads one unmasked, unfragmented server frame and returns
// its payload; it fails on anything else.
func readServerFrame(t *testing.T, br *bufio.Reader) []byte {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		t.Fatalf("read frame header: %v", err)
	}
	if h[0] != 0x81 {
		t.Fatalf("frame header %#x, want a final text frame (closed: %v)", h[0], h[0]&0x0f == 8)
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		io.ReadFull(br, l[:])
		n = int(l[0])<<8 | int(l[1])
	case 127:
		t.Fatal("unexpectedly long frame")
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(br, p); err != nil {
		t.Fatalf("read frame payload: %v", err)
	}
	return p
}
