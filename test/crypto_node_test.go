package test

import (
	"os/exec"
	"regexp"
	"testing"
)

// This test runs static/crypto.js's own tests in Node's WebCrypto
// (node_test.go finds Node.js). The page's encryption in Chromium is
// checked in e2ee_browser_test.go.

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
