package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// This test records the server's writes: queued frames leave in one
// write(2), each a WebSocket message of its own in order, and the close
// frame is the last thing written.

// recordingListener keeps every connection it accepts, so that a test can
// see each write(2) the server made on it.
type recordingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*recordingConn
}

// Accept records the next connection.
func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	rc := &recordingConn{Conn: c, closed: make(chan struct{})}
	l.mu.Lock()
	l.conns = append(l.conns, rc)
	l.mu.Unlock()
	return rc, nil
}

// conn is the i-th accepted connection.
func (l *recordingListener) conn(i int) *recordingConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns[i]
}

// recordingConn is a server-side connection that keeps what each Write sent.
type recordingConn struct {
	net.Conn
	mu        sync.Mutex
	writes    [][]byte
	closed    chan struct{}
	closeOnce sync.Once
}

// Write records p as one write and sends it.
func (c *recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, bytes.Clone(p))
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// Close notes that the server is done with the connection.
func (c *recordingConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// writesSince returns the writes after the first n.
func (c *recordingConn) writesSince(n int) [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.writes[n:])
}

// writeCount is how many writes the server made so far.
func (c *recordingConn) writeCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.writes)
}

// wsFrame is one WebSocket frame as the server wrote it (unmasked).
type wsFrame struct {
	fin     bool
	opcode  byte
	payload []byte
}

// parseFrames splits what the server wrote into WebSocket frames.
func parseFrames(b []byte) ([]wsFrame, error) {
	var frames []wsFrame
	for len(b) > 0 {
		if len(b) < 2 {
			return frames, fmt.Errorf("%d stray bytes", len(b))
		}
		f := wsFrame{fin: b[0]&0x80 != 0, opcode: b[0] & 0x0f}
		if b[1]&0x80 != 0 {
			return frames, fmt.Errorf("server frame is masked")
		}
		n, head := uint64(b[1]&0x7f), 2
		switch n {
		case 126:
			n, head = uint64(binary.BigEndian.Uint16(b[2:])), 4
		case 127:
			n, head = binary.BigEndian.Uint64(b[2:]), 10
		}
		if uint64(len(b)-head) < n {
			return frames, fmt.Errorf("frame of %d bytes cut short at %d", n, len(b)-head)
		}
		f.payload = b[head : head+int(n)]
		frames = append(frames, f)
		b = b[head+int(n):]
	}
	return frames, nil
}

// A plain client whose frames queue up gets them in one write(2), each
// still a WebSocket message of its own, in order; the close frame that
// follows is the last thing written.
func TestPlainClientGetsFramesCoalesced(t *testing.T) {
	t.Parallel()
	rec := &recordingListener{}
	ts := setupTestListener(t, map[string]string{"MESSAGE_RATE": "0", "HISTORY_SIZE": "0"}, func(l net.Listener) net.Listener {
		rec.Listener = l
		return rec
	})
	hold := holdWriterOf(ts, "alice")
	alice := ts.dial(t, "cork", "alice")
	alice.welcome()
	bob := ts.dial(t, "cork", "bob")
	bob.welcome()
	alice.waitForCount(2)
	aliceConn := rec.conn(0)

	// Alice's next writer turn waits while bob's messages and then the
	// shutdown's 1001 queue up for her. Her writer must first end the turn
	// that sent her the count, or it would take the messages unheld.
	member := ts.member(t, "cork", "alice")
	waitFor(t, "alice's writer to end its turn", func() bool {
		member.mu.Lock()
		defer member.mu.Unlock()
		return !member.writing
	})
	hold.armed.Store(true)
	const n = 5
	for i := range n {
		bob.say(fmt.Sprintf("m%d", i), "")
		bob.nextMessage()
	}
	waitFor(t, "alice's writer to start a turn to be held", func() bool { return hold.held.Load() != nil })
	c := hold.held.Load()
	mark := aliceConn.writeCount()
	c.goAway()
	close(hold.release)

	for i := range n {
		if got := alice.nextMessage(); got.Message != fmt.Sprintf("m%d", i) {
			t.Fatalf("alice's message %d is %q", i, got.Message)
		}
	}
	if code, _ := alice.closeStatus(); code != websocket.StatusGoingAway {
		t.Fatalf("alice closed with %d, want 1001", code)
	}
	select {
	case <-aliceConn.closed:
	case <-time.After(testTimeout):
		t.Fatalf("the server did not close alice's connection")
	}

	writes := aliceConn.writesSince(mark)
	if len(writes) == 0 {
		t.Fatalf("nothing written to alice after her writer was released")
	}
	first, err := parseFrames(writes[0])
	if err != nil {
		t.Fatalf("first write: %v", err)
	}
	if len(first) != n {
		t.Fatalf("first write holds %d frames, want the %d queued messages; writes: %q", len(first), n, writes)
	}
	for i, f := range first {
		var e envelope
		var m chatMessagePayload
		if !f.fin || f.opcode != 1 || json.Unmarshal(f.payload, &e) != nil || json.Unmarshal(e.Payload, &m) != nil || m.Message != fmt.Sprintf("m%d", i) {
			t.Fatalf("frame %d of the first write is fin=%v opcode %d %q, want the text message m%d", i, f.fin, f.opcode, f.payload, i)
		}
	}
	var all []wsFrame
	for _, w := range writes {
		frames, err := parseFrames(w)
		if err != nil {
			t.Fatalf("write %q: %v", w, err)
		}
		all = append(all, frames...)
	}
	last := all[len(all)-1]
	if last.opcode != 8 || len(last.payload) < 2 || binary.BigEndian.Uint16(last.payload) != uint16(websocket.StatusGoingAway) {
		t.Fatalf("the last frame written is opcode %d %q, want the 1001 close frame; all frames: %v", last.opcode, last.payload, all)
	}
	for _, f := range all[:len(all)-1] {
		if f.opcode == 8 {
			t.Fatalf("a close frame was followed by more frames: %v", all)
		}
	}
}
