package test

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// This file finds Node.js for the tests that run the page's modules in it:
// crypto, Markdown and QR codes.

// nodeExecPath finds Node.js 18 or newer (WebCrypto and node --test). It
// skips the test when there is none, and fails it when E2E=1 says the
// browser-side tests must run.
func nodeExecPath(t *testing.T) string {
	t.Helper()
	msg := "no Node.js 18 or newer on PATH (node, nodejs); install it, e.g. apt-get install nodejs"
	for _, name := range []string{"node", "nodejs"} {
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		out, err := exec.Command(p, "--version").Output()
		major, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimSpace(string(out)), "v"), ".")
		if n, _ := strconv.Atoi(major); err == nil && n >= 18 {
			return p
		}
		msg = p + " is " + strings.TrimSpace(string(out)) + ", older than Node.js 18; install a newer one"
	}
	if os.Getenv("E2E") == "1" {
		t.Fatal("E2E=1 but " + msg)
	}
	t.Skip(msg + "; set E2E=1 to make this a failure")
	return ""
}
