//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"hallway/internal/loadgen"
)

// A few root tests need the server in a process of their own: the browser
// test that stops it with SIGSTOP, and the benchmark that reads its memory.
// This test binary then doubles as the server, with the race detector when
// the tests have it. The system tests in test/ build a release binary
// instead.

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

// startNode runs this test binary as a server on a free loopback port and
// returns the process and its base URL once /healthz answers.
func startNode(t *testing.T, environ ...string) (*loadgen.Process, string) {
	t.Helper()
	port, err := loadgen.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testBinary())
	cmd.Env = append(append(os.Environ(), serveEnv+"=1", "PORT="+port, "HOST=127.0.0.1"), environ...)
	p, err := loadgen.StartProcess(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	base := "http://127.0.0.1:" + port
	if err := loadgen.WaitHealthy(ctx, base, p); err != nil {
		t.Fatalf("server did not start: %v; it printed:\n%s", err, p.Out.String())
	}
	return p, base
}
