//go:build !wasip1

// Graceful shutdown on SIGINT and SIGTERM, everywhere but wasip1.

package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// shutdownContext ends on SIGINT (Fly.io's default kill signal) or SIGTERM
// (systemd's and most other platforms').
func shutdownContext(parent context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}

// hangups delivers SIGHUP, on which the certificate files are read again,
// until stop is called.
func hangups() (<-chan os.Signal, func()) {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGHUP)
	return c, func() { signal.Stop(c) }
}
