//go:build !wasip1

package main

import "net"

// listen opens the TCP listener the server accepts on.
func listen(addr string) (net.Listener, error) {
	return net.Listen("tcp", addr)
}

// tlsSupported is whether this build can serve TLS itself.
const tlsSupported = true
