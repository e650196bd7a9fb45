//go:build !tls || wasip1

package main

import (
	"context"
	"errors"
	"log/slog"
)

// This file stands in for tls.go in builds without the tls tag, and in the
// WASI build, which has no listener of its own for TLS_PORT and
// TLS_HTTP_PORT: the ACME client and TLS server cost more than the
// default binary's size budget leaves, so they are built in on request.

// tlsSupported is false: TLS ends in a proxy in front, or in the host.
const tlsSupported = false

// runTLS is never reached: configuration refuses TLS in this build (see
// tlsSupported).
func runTLS(context.Context, config, *slog.Logger) error {
	return errors.New("TLS is not in this build")
}
