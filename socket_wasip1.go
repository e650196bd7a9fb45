//go:build wasip1

package main

import (
	"net"
	"syscall"
)

// This file stands in for socket_raw.go under WASI, where there is no raw
// socket to write to without waiting: every frame goes through the
// writer goroutine.

// rawConnOf is nil under WASI: every frame goes through the writer.
func rawConnOf(net.Conn) syscall.RawConn { return nil }

// writeNow is never called under WASI, where rawConnOf is nil.
func writeNow(syscall.RawConn, []byte) int { return 0 }
