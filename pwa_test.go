package main

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// These tests check what makes the page an installable app: the service
// worker's build file keeps the page's files and nothing of a room or the
// API, and the manifest, worker and build file are served with the right
// headers. The app in Chromium is test/pwa_browser_test.go.

// buildFile splits a service worker build file into its version and shell.
func buildFile(t *testing.T, script []byte) (version string, shell []string) {
	t.Helper()
	v := regexp.MustCompile(`self\.hallwayBuild = "([0-9a-f]{16})";`).FindSubmatch(script)
	s := regexp.MustCompile(`self\.hallwayShell = (\[.*\]);`).FindSubmatch(script)
	if v == nil || s == nil {
		t.Fatalf("build file without a version or a shell:\n%s", script)
	}
	if err := json.Unmarshal(s[1], &shell); err != nil {
		t.Fatalf("shell list: %v", err)
	}
	return string(v[1]), shell
}

// TestWorkerBuildFile checks what the service worker is told to keep: every
// embedded page file but the worker itself, the page as "/", nothing of a
// room, the API or WebSockets; and that any change to a file is a new build.
func TestWorkerBuildFile(t *testing.T) {
	t.Parallel()
	files := loadStatic()
	version, shell := buildFile(t, workerBuildScript(files))
	if len(shell) != len(files)-1 || !slices.Contains(shell, "/") || !slices.Contains(shell, "/app.js") ||
		!slices.Contains(shell, "/manifest.webmanifest") || slices.Contains(shell, "/sw.js") || slices.Contains(shell, "/index.html") {
		t.Errorf("shell %q, want every embedded file but sw.js, with index.html as /", shell)
	}
	for _, p := range shell {
		if strings.HasPrefix(p, "/r/") || strings.HasPrefix(p, "/ws/") || strings.HasPrefix(p, "/api/") || strings.Contains(p, "?") {
			t.Errorf("the shell lists %s", p)
		}
	}
	changed := loadStatic()
	f := changed["app.js"]
	f.etag = `"changed"`
	changed["app.js"] = f
	if again, _ := buildFile(t, workerBuildScript(changed)); again == version {
		t.Errorf("a changed app.js kept build %s", version)
	}
	if again, _ := buildFile(t, workerBuildScript(loadStatic())); again != version {
		t.Errorf("the same files gave builds %s and %s", version, again)
	}
}

// TestAppFilesServed checks the headers of the manifest, the worker and its
// build file, and that the CSP allows the worker and manifest from this
// origin only.
func TestAppFilesServed(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, nil)
	for path, want := range map[string]string{
		"/manifest.webmanifest":  "application/manifest+json",
		"/sw.js":                 "text/javascript; charset=utf-8",
		"/sw-build.js":           "text/javascript; charset=utf-8",
		"/icon-maskable-512.png": "image/png",
	} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode != http.StatusOK || h.Get("Content-Type") != want || h.Get("Cache-Control") != "no-cache" || h.Get("ETag") == "" {
			t.Errorf("%s: %d %q %q %q, want 200 %q, no-cache, an ETag", path, resp.StatusCode,
				h.Get("Content-Type"), h.Get("Cache-Control"), h.Get("ETag"), want)
		}
		if path == "/sw-build.js" {
			buildFile(t, body)
		}
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "worker-src 'self';") || !strings.Contains(csp, "manifest-src 'self';") {
			t.Errorf("%s: CSP %q", path, csp)
		}
	}
}
