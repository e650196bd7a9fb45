package test

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// This test runs static/crypto.js's own tests in Node's WebCrypto, and
// holds the lookup of Node.js that the other Node tests (markdown, QR
// code) share. The page's encryption in Chromium is checked in
// e2ee_browser_test.go.

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

// TestCryptoModuleInNode runs static/crypto.js's own tests
// (testdata/crypto.test.mjs) in Node's WebCrypto: round trips, wrong keys
// and rooms, flipped bits, unique IVs, canonical decoding, sizes.
func TestCryptoModuleInNode(t *testing.T) {
	t.Parallel()
	node := nodeExecPath(t)
	out, err := exec.Command(node, "--test", "--test-reporter=tap", repoFile("testdata/crypto.test.mjs")).CombinedOutput()
	if err != nil {
		t.Fatalf("node --test testdata/crypto.test.mjs: %v\n%s", err, out)
	}
	pass := regexp.MustCompile(`(?m)^# pass (\d+)$`).FindSubmatch(out)
	fail := regexp.MustCompile(`(?m)^# fail (\d+)$`).FindSubmatch(out)
	if pass == nil || fail == nil || string(pass[1]) == "0" || string(fail[1]) != "0" {
		t.Fatalf("node ran no tests, or some failed:\n%s", out)
	}
	t.Logf("crypto.js: %s tests passed in Node", pass[1])
}
