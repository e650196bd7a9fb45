package main

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// corkLimit is the most a corked connection holds before it writes: each
// write(2) stays small enough for WRITE_TIMEOUT to judge the client's
// reading rather than the size of a backlog.
const corkLimit = 64 << 10

// socketWriter is where a connection's WebSocket frames go, below the
// library's framing. Uncorked, each flushed frame is written at once.
// Corked, while a writer drains a batch, frames collect in one buffer and
// leave in a single write(2) when uncorked: a plain client gets a backlog
// with the system calls of a batching one, every frame still a message of
// its own. Control frames the library writes meanwhile (pong, close) join
// the same buffer in the order they were framed, so nothing ever follows a
// close frame.
type socketWriter struct {
	conn  net.Conn
	since *atomic.Int64 // set to UnixNano while a write(2) is under way, for watchWrites

	mu     sync.Mutex // held across writes, so that frames leave in order
	corked bool
	buf    *[]byte // pooled, only while corked or holding unsent bytes
}

// Write writes p, or adds it to the buffer while corked.
func (w *socketWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.corked {
		return w.writeLocked(p)
	}
	*w.buf = append(*w.buf, p...)
	if len(*w.buf) >= corkLimit {
		return len(p), w.flushLocked()
	}
	return len(p), nil
}

// cork starts collecting frames.
func (w *socketWriter) cork() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.corked = true
	if w.buf == nil {
		w.buf = corkBuffers.Get().(*[]byte)
	}
}

// uncork writes what was collected in one write(2) and writes through again.
func (w *socketWriter) uncork() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.corked = false
	err := w.flushLocked()
	if w.buf != nil {
		if cap(*w.buf) <= maxPooledBatch {
			corkBuffers.Put(w.buf)
		}
		w.buf = nil
	}
	return err
}

// flushLocked writes the buffer out.
func (w *socketWriter) flushLocked() error {
	if w.buf == nil || len(*w.buf) == 0 {
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
		w.since.Store(time.Now().UnixNano())
		defer w.since.Store(0)
	}
	return w.conn.Write(p)
}

// corkBuffers recycles the buffers corked frames collect in.
var corkBuffers = sync.Pool{New: func() any { return new([]byte) }}
