//go:build !wasip1

package main

import (
	"net"
	"syscall"
)

// This file writes a frame straight to a socket without waiting, for the
// direct path of paced rooms (socket.go). Under WASI there is no raw
// socket; socket_wasip1.go stands in.

// rawConnOf is conn's raw socket, for writes that must not wait.
func rawConnOf(conn net.Conn) syscall.RawConn {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// writeNow makes one write(2) of p to raw's socket, which is non-blocking,
// and returns how many bytes it took: 0 when the socket would block or the
// write failed (the writer goroutine then meets the error itself).
func writeNow(raw syscall.RawConn, p []byte) int {
	var n int
	err := raw.Write(func(fd uintptr) bool {
		var err error
		for {
			n, err = syscall.Write(int(fd), p)
			if err != syscall.EINTR {
				break
			}
		}
		if err != nil {
			n = 0
		}
		return true // never wait: a socket that would block goes to the writer
	})
	if err != nil {
		return 0
	}
	return n
}
