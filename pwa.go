// The installable app's server side: the web app manifest's content type,
// and the service worker's build file, which names this build's page files
// and a version derived from their hashes, so that every deploy installs a
// fresh worker with a fresh cache. The worker itself is static/sw.js.

package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// workerFiles are the embedded files the worker never keeps: itself. Its
// build file is generated, not embedded.
var workerFiles = []string{"sw.js"}

// workerBuild is the build file, made once from the embedded files.
var workerBuild = sync.OnceValue(func() []byte { return workerBuildScript(loadStatic()) })

// workerBuildScript returns the script static/sw.js imports: the build's
// version (a SHA-256 over every embedded file's name and hash) and the
// paths of the app shell the worker caches for offline use. index.html is
// the shell's "/".
func workerBuildScript(files map[string]staticFile) []byte {
	h := sha256.New()
	var shell []string
	for _, name := range slices.Sorted(maps.Keys(files)) {
		fmt.Fprintf(h, "%s %s\n", name, files[name].etag)
		switch {
		case slices.Contains(workerFiles, name):
		case name == "index.html":
			shell = append(shell, "/")
		default:
			shell = append(shell, "/"+name)
		}
	}
	version := hex.EncodeToString(h.Sum(nil))[:16]
	list, _ := json.Marshal(shell)
	var b bytes.Buffer
	fmt.Fprintf(&b, "// The server writes this file from the page files it embeds.\n")
	fmt.Fprintf(&b, "self.hallwayBuild = %q;\nself.hallwayShell = %s;\n", version, list)
	return b.Bytes()
}

// workerBuildHandler serves the build file, revalidated on every check.
func (s *server) workerBuildHandler(w http.ResponseWriter, r *http.Request) {
	body := workerBuild()
	sum := sha256.Sum256(body)
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:8])+`"`)
	http.ServeContent(w, r, "sw-build.js", time.Time{}, bytes.NewReader(body))
}

// manifestHandler serves the web app manifest with its registered type,
// which Go's MIME table does not know.
func (s *server) manifestHandler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/manifest+json")
	s.serveStatic(w, r, strings.TrimPrefix(r.URL.Path, "/"))
}
