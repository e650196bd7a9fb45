//go:build linux

package test

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"hallway/internal/loadgen"
)

// These helpers start a built server as a process of its own on a free
// loopback port and wait until it is healthy; the tests that drive a
// server from outside start it through them.

// nodeStartTimeout bounds a server process's start.
const nodeStartTimeout = 30 * time.Second

// startServer runs bin on a free loopback port with environ added to this
// process's environment, waits until /healthz answers and stops it when the
// test ends. It returns the process and the server's base URL.
func startServer(t *testing.T, bin string, environ ...string) (*loadgen.Process, string) {
	t.Helper()
	port, err := loadgen.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return startServerOn(t, bin, port, environ...)
}

// startServerOn is startServer on a given loopback port: a node coming back.
func startServerOn(t *testing.T, bin, port string, environ ...string) (*loadgen.Process, string) {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(append(os.Environ(), "PORT="+port), environ...)
	p, err := loadgen.StartProcess(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), nodeStartTimeout)
	defer cancel()
	base := "http://127.0.0.1:" + port
	if err := loadgen.WaitHealthy(ctx, base, p); err != nil {
		p.Stop()
		t.Fatalf("server did not start: %v; it printed:\n%s", err, p.Out.String())
	}
	return p, base
}
