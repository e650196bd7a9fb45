//go:build wasip1

package main

import "net"

// This file stands in for socket_raw.go under WASI, where there is no raw
// socket to write to without waiting: every frame goes through the
// writer goroutine.

// rawWriter has no socket to write to under WASI.
type rawWriter struct{}

// newRawWriter is nil under WASI: every frame goes through the writer.
func newRawWriter(net.Conn) *rawWriter { return nil }

// write is never called under WASI, where newRawWriter is nil.
func (*rawWriter) write([]byte) int { return 0 }
