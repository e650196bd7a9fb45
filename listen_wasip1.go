//go:build wasip1

package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
)

// listen returns the TCP listener the WASI host preopened, e.g. with
// `wazero run -listen=127.0.0.1:8080`. addr is ignored: the host chooses the
// address and port, and net.Listen on wasip1 is an in-process fake that never
// sees a real connection.
func listen(addr string) (net.Listener, error) {
	// Preopens are numbered from 3 up (after stdio) and end at the first
	// closed descriptor; directories mounted with -mount come first.
	for fd := 3; ; fd++ {
		var st syscall.Stat_t
		err := syscall.Fstat(fd, &st)
		if errors.Is(err, syscall.EBADF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("stat preopened fd %d: %w", fd, err)
		}
		if st.Filetype != syscall.FILETYPE_SOCKET_STREAM {
			continue // Not wrapped in an os.File, whose cleanup would close it.
		}
		// The host hands the socket over in blocking mode, which would stall
		// the whole runtime in accept; os.NewFile only registers the file
		// with the network poller if it is already non-blocking.
		if err := syscall.SetNonblock(fd, true); err != nil {
			return nil, fmt.Errorf("set preopened socket %d non-blocking: %w", fd, err)
		}
		f := os.NewFile(uintptr(fd), "preopened-socket")
		l, err := net.FileListener(f)
		f.Close() // The listener keeps its own reference to the descriptor.
		return l, err
	}
	return nil, errors.New("no preopened TCP socket: run under a WASI host that provides one, e.g. wazero run -listen=127.0.0.1:8080 hallway.wasm")
}

// tlsSupported is false: the WASI build has no listener of its own for
// TLS_PORT and TLS_HTTP_PORT; TLS ends in the host or a proxy in front.
const tlsSupported = false
