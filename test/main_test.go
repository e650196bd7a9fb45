// Package test holds Hallway's system tests: they build the server once, as
// a release is built, and drive it only from the outside, as a user or an
// operator would, over HTTP and WebSocket, through environment variables and
// the documentation's own configuration blocks. They start HAProxy, Caddy,
// wazero, Node.js and the load tool. The server's unit tests, which run its
// handler in-process, live beside the code at the repository's root.
package test

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// hallwayBin is this tree's server, built once by TestMain.
var hallwayBin string

// hallwayTLSBin is the server built with the tls tag, which serves HTTPS
// itself; TestMain builds it only when these tests are built with the tag.
var hallwayTLSBin string

// tlsTests is set by the tests that need hallwayTLSBin.
var tlsTests bool

// repoRoot is the repository's root, relative to this package.
const repoRoot = ".."

// builtBinEnv names a server already built by a parent test process, as
// for a test run again inside a network namespace.
const builtBinEnv = "HALLWAY_TEST_BIN"

// TestMain builds the server as a release is built (static, stripped, no
// race detector: the server's own race tests run in-process at the root),
// runs the tests and removes the build.
func TestMain(m *testing.M) {
	flag.Parse()
	if bin := os.Getenv(builtBinEnv); bin != "" {
		hallwayBin = bin
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "hallway-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	hallwayBin = filepath.Join(dir, "hallway")
	err = buildGo(repoRoot, hallwayBin, nil)
	if err == nil && tlsTests {
		hallwayTLSBin = filepath.Join(dir, "hallway-tls")
		err = buildGo(repoRoot, hallwayTLSBin, nil, "-tags=tls")
	}
	code := 1
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildGo builds the main package in dir into out with a release's flags
// and any others, for the platform env names (the host's when env is nil).
func buildGo(dir, out string, env []string, flags ...string) error {
	args := append([]string{"build", "-trimpath", "-ldflags=-s -w", "-o", out}, flags...)
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", dir, err, b)
	}
	return nil
}

// repoFile is the path of a file of the repository, such as docs/deploying.md.
func repoFile(name string) string {
	return filepath.Join(repoRoot, name)
}
