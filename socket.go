// Writing WebSocket messages straight to the connection: the writer frames
// text messages itself and sends what is queued in one write(2), up to 64 KiB. The
// WebSocket library still writes pings, pongs and close frames.

package main

import (
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// corkLimit is the most a corked connection holds before it writes: each
// write(2) stays small enough for WRITE_TIMEOUT to judge the client's
// reading rather than the size of a backlog.
const corkLimit = 64 << 10

// WebSocket frame bytes (RFC 6455 §5.2) the server writes itself.
const (
	finText  = 0x81 // FIN set, opcode 1: a whole text message
	finClose = 0x88 // FIN set, opcode 8: a close frame
)

// socketWriter is the connection's byte stream below the WebSocket library.
// The library writes its control frames (ping, pong, close) through it; the
// writer frames every chat message itself and appends it here, so a message
// costs a few bytes of header rather than the library's locks and flush.
//
// Corked, while a writer drains its queue, frames collect in one buffer and
// leave in a single write(2) when uncorked: a plain client gets a backlog
// with the system calls of a batching one, each frame still a message of its
// own. Control frames written meanwhile join the buffer in order, and no
// message is written after a close frame.
type socketWriter struct {
	conn  net.Conn
	since *atomic.Int64 // set to UnixNano while a write(2) is under way, for watchWrites
	// writing counts the server's writes under way, this one among them,
	// so that watchWrites need not look at anyone while there are none.
	writing *atomic.Int64

	mu        sync.Mutex // held across writes, so that frames leave whole and in order
	corked    bool
	closeSent bool    // the library wrote a close frame: no message may follow
	buf       *[]byte // pooled, only while corked
	// pending is what a write that would have blocked left of a frame
	// (see tryWrite); it leaves before anything else, by the writer.
	pending []byte
	// raw writes to the socket without waiting; nil where that cannot be
	// done, and every frame then goes through the writer goroutine.
	raw *rawWriter
}

// attach makes conn the connection written to.
func (w *socketWriter) attach(conn net.Conn) {
	w.conn = conn
	w.raw = newRawWriter(conn)
}

// tryWrite writes the framed message p to the socket if that can be done
// without blocking, all of it or a part, and reports how many bytes went;
// a part's rest is kept in pending for the writer, which must then run.
// It writes nothing after a close frame, nor ahead of bytes already
// waiting, and it never waits for a write under way.
func (w *socketWriter) tryWrite(p []byte) int {
	// Busy means a write is under way, perhaps blocked: the library's
	// ping, pong or close frame to a client that does not read. Waiting
	// for it would hold the room.
	if !w.mu.TryLock() {
		return 0
	}
	defer w.mu.Unlock()
	if w.raw == nil || w.closeSent || w.corked || len(w.pending) > 0 {
		return 0
	}
	n := w.raw.write(p)
	if n > 0 && n < len(p) {
		w.pending = append([]byte(nil), p[n:]...)
	}
	return n
}

// Write takes one of the library's frames: it flushes its own buffer once
// per control frame, which always fits, so p starts with a frame header.
func (w *socketWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(p) > 0 && p[0] == finClose {
		w.closeSent = true
	}
	if !w.corked {
		if err := w.flushPendingLocked(); err != nil {
			return 0, err
		}
		return w.writeLocked(p)
	}
	*w.buf = append(*w.buf, p...)
	return len(p), w.flushIfFullLocked()
}

// writeMessages frames each of msgs as a text message or, joined, all of
// them as one newline-delimited message, while corked.
func (w *socketWriter) writeMessages(msgs [][]byte, joined bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closeSent {
		return net.ErrClosed
	}
	if joined {
		n := len(msgs) - 1
		for _, m := range msgs {
			n += len(m)
		}
		*w.buf = appendTextHeader(*w.buf, n)
		for i, m := range msgs {
			if i > 0 {
				*w.buf = append(*w.buf, '\n')
			}
			*w.buf = append(*w.buf, m...)
		}
		return w.flushIfFullLocked()
	}
	for _, m := range msgs {
		*w.buf = append(appendTextHeader(*w.buf, len(m)), m...)
		if err := w.flushIfFullLocked(); err != nil {
			return err
		}
	}
	return nil
}

// appendTextHeader appends the header of an unmasked, final text frame
// carrying n bytes.
func appendTextHeader(b []byte, n int) []byte {
	switch {
	case n < 126:
		return append(b, finText, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, finText, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, finText, 127), uint64(n))
	}
}

// cork starts collecting frames.
func (w *socketWriter) cork() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.corked = true
	if w.buf == nil {
		w.buf = corkBuffers.Get().(*[]byte)
	}
	*w.buf = append(*w.buf, w.pending...)
	w.pending = nil
}

// flushPendingLocked writes what tryWrite left, before a control frame.
func (w *socketWriter) flushPendingLocked() error {
	if len(w.pending) == 0 {
		return nil
	}
	_, err := w.writeLocked(w.pending)
	w.pending = nil
	return err
}

// uncork writes what was collected in one write(2) and writes through again.
func (w *socketWriter) uncork() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.corked = false
	if w.buf == nil {
		return nil
	}
	var err error
	if len(*w.buf) > 0 {
		_, err = w.writeLocked(*w.buf)
	}
	if cap(*w.buf) <= maxPooledBatch {
		*w.buf = (*w.buf)[:0]
		corkBuffers.Put(w.buf)
	}
	w.buf = nil
	return err
}

// flushIfFullLocked writes the buffer out once it holds corkLimit.
func (w *socketWriter) flushIfFullLocked() error {
	if len(*w.buf) < corkLimit {
		return nil
	}
	_, err := w.writeLocked(*w.buf)
	*w.buf = (*w.buf)[:0]
	return err
}

// writeLocked writes p to the socket, marked for watchWrites, which cuts
// the connection if it takes longer than WRITE_TIMEOUT.
func (w *socketWriter) writeLocked(p []byte) (int, error) {
	if w.since != nil {
		w.writing.Add(1)
		w.since.Store(time.Now().UnixNano())
		defer func() {
			w.since.Store(0)
			w.writing.Add(-1)
		}()
	}
	return w.conn.Write(p)
}

// corkBuffers recycles the buffers corked frames collect in.
var corkBuffers = sync.Pool{New: func() any { return new([]byte) }}
