//go:build linux

package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// These tests check the direct path of a paced room: idle members get a
// paced message without a writer goroutine, a member that stops reading is
// handed to its writer and gets everything in order, a frame written in
// part is finished first, and nothing is written after a close frame or
// during another write.

// quiet reports whether r's next broadcast counts as paced.
func (r *room) quiet() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.paceAtLocked(time.Now().UnixNano()) < burstScore
}

// waitQuiet waits until room r takes its next broadcast as paced: writing
// directly is then the only path an idle member's frame can take.
func waitQuiet(t *testing.T, r *room) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !r.quiet() {
		if time.Now().After(deadline) {
			t.Fatal("the room never went quiet")
		}
		time.Sleep(burstScale / 10)
	}
}

// At the pace people chat, a message reaches every idle member without
// starting a writer goroutine, and everyone still hears it once, in order.
func TestPacedMessagesSkipTheWriter(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"MESSAGE_RATE": "0"})
	var turns atomic.Int64
	counting := atomic.Bool{}
	ts.srv.beforeWriterTurn = func(*client) {
		if counting.Load() {
			turns.Add(1)
		}
	}
	alice := ts.dial(t, "paced", "alice")
	alice.welcome()
	bob := ts.dial(t, "paced", "bob")
	bob.welcome()
	carol := ts.dialQuery(t, "paced", "username=carol&batch=1")
	carol.welcome()
	alice.waitForCount(3)
	bob.waitForCount(3)
	r := ts.member(t, "paced", "alice").room
	counting.Store(true)
	for i := range 20 {
		waitQuiet(t, r)
		alice.say(fmt.Sprintf("paced %d", i), "")
		for _, c := range []*testClient{alice, bob, carol} {
			if m := c.nextMessage(); m.Message != fmt.Sprintf("paced %d", i) {
				t.Fatalf("%s got %q, want paced %d", m.Username, m.Message, i)
			}
		}
	}
	if n := turns.Load(); n != 0 {
		t.Fatalf("%d writer turns for 20 paced messages to idle members, want 0", n)
	}
}

// A member that stops reading in a paced room is handed to its writer once
// its socket would block; when it reads again, it gets every message whole
// and in order, and the others never waited for it.
func TestPausedReaderGetsEveryPacedMessageInOrder(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{
		"MESSAGE_RATE": "0", "HISTORY_SIZE": "0", "MAX_MESSAGE_BYTES": "8000",
		"SEND_BUFFER": "10000", "SEND_BUFFER_BYTES": fmt.Sprint(64 << 20), "WRITE_TIMEOUT": "1m",
	})
	alice := ts.dial(t, "pause", "alice")
	alice.welcome()
	sleepy := ts.dial(t, "pause", "sleepy")
	sleepy.welcome()
	alice.waitForCount(2)
	c := ts.member(t, "pause", "sleepy")
	payload := strings.Repeat("p", 7000)
	sent := 0
	// Send paced messages until sleepy's socket would block and its writer
	// has taken over, then a few more that must queue behind.
	for more := -1; more != 0; sent++ {
		if sent == 5000 {
			t.Fatal("sleepy's socket took 5000 messages of 7 KB without blocking")
		}
		waitQuiet(t, c.room)
		alice.say(fmt.Sprintf("%d %s", sent, payload), "")
		if m := alice.nextMessage(); !strings.HasPrefix(m.Message, fmt.Sprintf("%d ", sent)) {
			t.Fatalf("alice got %.10q, want message %d", m.Message, sent)
		}
		c.mu.Lock()
		writing := c.writing
		c.mu.Unlock()
		switch {
		case more > 0:
			more--
		case writing && more < 0:
			more = 5
		}
	}
	for i := range sent {
		if m := sleepy.nextMessage(); m.Message != fmt.Sprintf("%d %s", i, payload) {
			t.Fatalf("sleepy got %.10q (%d bytes) as message %d", m.Message, len(m.Message), i)
		}
	}
}

// pipeConn is a net.Conn over a pipe whose buffer is one page, so that a
// non-blocking write of more than that is taken only in part.
type pipeConn struct {
	*os.File
}

func (pipeConn) LocalAddr() net.Addr  { return &net.UnixAddr{} }
func (pipeConn) RemoteAddr() net.Addr { return &net.UnixAddr{} }

// newPipeWriter is a socketWriter on a one-page pipe, and the pipe's read end.
func newPipeWriter(t *testing.T) (*socketWriter, *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	// Fd would make the pipe blocking; Control keeps it as the poller has it.
	const fSetPipeSz = 1031 // F_SETPIPE_SZ
	rc, err := w.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var errno syscall.Errno
	rc.Control(func(fd uintptr) { _, _, errno = syscall.Syscall(syscall.SYS_FCNTL, fd, fSetPipeSz, 4096) })
	if errno != 0 {
		t.Fatalf("F_SETPIPE_SZ: %v", errno)
	}
	sw := &socketWriter{}
	sw.attach(pipeConn{w})
	if sw.raw == nil {
		t.Fatal("no raw connection for a pipe")
	}
	return sw, r
}

// A frame the socket takes only in part is finished before anything else:
// before a control frame the library writes, and before queued frames.
func TestPartWrittenFrameIsFinishedFirst(t *testing.T) {
	t.Parallel()
	for _, next := range []string{"control", "queued"} {
		t.Run(next, func(t *testing.T) {
			w, r := newPipeWriter(t)
			frame := appendTextHeader(nil, 10000)
			frame = append(frame, bytes.Repeat([]byte("x"), 10000)...)
			n := w.tryWrite(frame)
			if n <= 0 || n >= len(frame) {
				t.Fatalf("tryWrite took %d of %d bytes on a one-page pipe, want part", n, len(frame))
			}
			if again := w.tryWrite(frame); again != 0 {
				t.Fatalf("a second tryWrite took %d bytes ahead of the first frame's rest", again)
			}
			var got bytes.Buffer
			var wg sync.WaitGroup
			wg.Go(func() { io.Copy(&got, r) })
			var tail []byte
			switch next {
			case "control":
				tail = []byte{0x89, 0} // an empty ping, as the library writes it
				if _, err := w.Write(tail); err != nil {
					t.Fatal(err)
				}
			case "queued":
				tail = appendTextHeader(nil, 3)
				tail = append(tail, "abc"...)
				w.cork()
				if err := w.writeMessages([][]byte{[]byte("abc")}, false); err != nil {
					t.Fatal(err)
				}
				if err := w.uncork(); err != nil {
					t.Fatal(err)
				}
			}
			w.conn.Close()
			wg.Wait()
			if want := append(frame[:len(frame):len(frame)], tail...); !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("the pipe carried %d bytes, want the whole frame then the %s frame (%d bytes)", got.Len(), next, len(want))
			}
		})
	}
}

// Nothing is written directly after the library's close frame, nor while
// another write holds the socket.
func TestNoDirectWriteAfterCloseOrDuringAWrite(t *testing.T) {
	t.Parallel()
	w, _ := newPipeWriter(t)
	w.mu.Lock()
	if n := w.tryWrite([]byte{finText, 1, 'x'}); n != 0 {
		t.Fatalf("tryWrite took %d bytes while another write held the socket", n)
	}
	w.mu.Unlock()
	if _, err := w.Write([]byte{finClose, 0}); err != nil {
		t.Fatal(err)
	}
	if n := w.tryWrite([]byte{finText, 1, 'x'}); n != 0 {
		t.Fatalf("tryWrite took %d bytes after a close frame", n)
	}
}
