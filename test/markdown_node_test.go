package test

import (
	"os/exec"
	"regexp"
	"testing"
)

// This test runs static/markdown.js's own tests in Node: the formatting
// rules and a fuzz of the parser and renderer. Formatted messages in
// Chromium are checked in markdown_browser_test.go.

// TestMarkdownModuleInNode runs static/markdown.js's own tests
// (testdata/markdown.test.mjs) in Node: the formatting rules, and a fuzz of
// the parser and renderer with XSS payloads and seeded random input that
// allows only the formatting elements and http(s) links, and no character
// of the text lost or added.
func TestMarkdownModuleInNode(t *testing.T) {
	t.Parallel()
	node := nodeExecPath(t)
	out, err := exec.Command(node, "--test", "--test-reporter=tap", repoFile("testdata/markdown.test.mjs")).CombinedOutput()
	if err != nil {
		t.Fatalf("node --test testdata/markdown.test.mjs: %v\n%.20000s", err, out)
	}
	pass := regexp.MustCompile(`(?m)^# pass (\d+)$`).FindSubmatch(out)
	fail := regexp.MustCompile(`(?m)^# fail (\d+)$`).FindSubmatch(out)
	if pass == nil || fail == nil || string(pass[1]) == "0" || string(fail[1]) != "0" {
		t.Fatalf("node ran no tests, or some failed:\n%.20000s", out)
	}
	t.Logf("markdown.js: %s tests passed in Node", pass[1])
}
