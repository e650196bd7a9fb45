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

// repoRoot is the repository's root, relative to this package.
const repoRoot = ".."

// TestMain builds the server as a release is built (static, stripped, no
// race detector: the server's own race tests run in-process at the root),
// runs the tests and removes the build.
func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "hallway-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	hallwayBin = filepath.Join(dir, "hallway")
	code := 1
	if err := buildGo(repoRoot, hallwayBin, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildGo builds the main package in dir into out with a release's flags,
// for the platform env names (the host's when env is nil).
func buildGo(dir, out string, env []string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
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
