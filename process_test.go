//go:build linux

package main

import (
	"fmt"
	"os"
	"testing"

	"hallway/internal/loadgen"
)

// A few root tests need the server in a process of their own: the load
// tool's engine behind the benchmarks that read a server's memory and CPU,
// and the tests that run again inside a network namespace. This test binary
// then doubles as the server, with the race detector when the tests have
// it. The system tests in test/ build a release binary instead.

// serveEnv, set to 1, makes the test binary run as the server.
const serveEnv = "HALLWAY_TEST_SERVE"

// TestMain runs the server when serveEnv asks for it, and the tests
// otherwise, with the load tool's engine pointed at this binary.
func TestMain(m *testing.M) {
	if os.Getenv(serveEnv) == "1" {
		if err := run(nil, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "hallway:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	self, err := os.Executable()
	if err == nil {
		o := loadgen.Defaults()
		o.Server, o.ServerEnv = self, []string{serveEnv + "=1"}
		err = loadgen.SetOptions(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// testBinary is this test binary, which runs as the server under serveEnv.
func testBinary() string {
	self, err := os.Executable()
	if err != nil {
		return os.Args[0]
	}
	return self
}
