//go:build wasip1

package main

import (
	"context"
	"errors"
	"log/slog"
)

// runTLS is never reached on wasip1: configuration refuses TLS there (see
// tlsSupported), and the binary stays without the ACME client.
func runTLS(context.Context, config, *slog.Logger) error {
	return errors.New("TLS is not supported in the WASI build")
}
