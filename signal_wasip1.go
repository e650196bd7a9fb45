//go:build wasip1

// Shutdown under wasip1, where the runtime ends the module on a signal.

package main

import (
	"context"
	"os"
)

// shutdownContext never ends on wasip1: importing os/signal there starts a
// goroutine that busy-waits and starves the network poller, and the runtime
// kills the module outright on SIGINT/SIGTERM anyway.
func shutdownContext(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithCancel(parent)
}

// hangups never delivers on wasip1, which has no TLS to reload.
func hangups() (<-chan os.Signal, func()) { return nil, func() {} }
