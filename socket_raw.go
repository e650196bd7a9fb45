//go:build !wasip1

package main

import (
	"net"
	"syscall"
)

// This file writes a frame straight to a socket without waiting, for the
// direct path of paced rooms (socket.go). Under WASI there is no raw
// socket; socket_wasip1.go stands in.

// rawWriter makes one non-blocking write(2) at a time to a socket. The
// callback the poller runs is made once, with the connection, so that a
// write allocates nothing: a closure made per write would escape to the
// heap, once for every delivery.
type rawWriter struct {
	conn syscall.RawConn
	fn   func(fd uintptr) bool // w.writeFD, bound once
	p    []byte                // the frame being written, only during write
	n    int                   // what the last write(2) took
}

// newRawWriter is a rawWriter for conn's socket, or nil when conn has none.
func newRawWriter(conn net.Conn) *rawWriter {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	w := &rawWriter{conn: raw}
	w.fn = w.writeFD
	return w
}

// write makes one write(2) of p to the socket, which is non-blocking, and
// returns how many bytes it took: 0 when the socket would block or the
// write failed (the writer goroutine then meets the error itself). Its
// caller serializes writes (socketWriter.mu).
func (w *rawWriter) write(p []byte) int {
	w.p, w.n = p, 0
	err := w.conn.Write(w.fn)
	w.p = nil
	if err != nil {
		return 0
	}
	return w.n
}

// writeFD is write's callback: the poller runs it with the socket held open.
func (w *rawWriter) writeFD(fd uintptr) bool {
	for {
		n, err := syscall.Write(int(fd), w.p)
		if err == syscall.EINTR {
			continue
		}
		if err == nil {
			w.n = n
		}
		return true // never wait: a socket that would block goes to the writer
	}
}
