//go:build !wasip1

// The listener everywhere but wasip1: a TCP listen on HOST:PORT.

package main

import "net"

// listen opens the TCP listener the server accepts on.
func listen(addr string) (net.Listener, error) {
	return net.Listen("tcp", addr)
}
