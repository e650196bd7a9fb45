//go:build wasip1

package main

import (
	"net"
	"syscall"
)

// rawConnOf is nil under WASI: every frame goes through the writer.
func rawConnOf(net.Conn) syscall.RawConn { return nil }

// writeNow is never called under WASI, where rawConnOf is nil.
func writeNow(syscall.RawConn, []byte) int { return 0 }
