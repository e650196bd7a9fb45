package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hallway/internal/loadgen"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// This test builds the server for GOOS=wasip1, serves it under wazero and
// holds a two-person chat through it. It installs wazero through the Go
// module proxy when it is not on PATH; WASI=1 makes a missing runtime a
// failure.

// wazeroModule is the WASI runtime this test drives, at a known version.
const wazeroModule = "github.com/tetratelabs/wazero/cmd/wazero@v1.12.0"

// wazeroInstall is how to get it by hand.
const wazeroInstall = "go install " + wazeroModule

// wasiStartTimeout bounds how long the module may take to serve: a cold
// compile of the .wasm takes seconds, a cached one a fraction of a second.
const wasiStartTimeout = 60 * time.Second

// TestWASIChat builds Hallway for GOOS=wasip1, serves it under wazero on a
// loopback port, loads the page and holds a two-person chat through it.
// It skips without go or wazero, unless WASI=1 demands that it runs.
func TestWASIChat(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a .wasm and runs it under wazero")
	}
	t.Parallel()
	goTool := findTool(t, "go", "")
	wasm := buildWASM(t, goTool)
	base := startWASI(t, findWazero(t, goTool), wasm)

	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %q, want 200 text/html", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !bytes.Contains(bytes.ToLower(body), []byte("<html")) {
		t.Fatalf("GET / did not return the page: %.200q", body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wsBase := "ws" + strings.TrimPrefix(base, "http") + "/ws/wasi-room?username="
	alice := dialWASI(ctx, t, wsBase+"alice")
	bob := dialWASI(ctx, t, wsBase+"bob")

	send := `{"type":"chatMessage","payload":{"message":"hello from wasm"}}`
	if err := alice.Write(ctx, websocket.MessageText, []byte(send)); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*websocket.Conn{"alice": alice, "bob": bob} {
		var m chatMessagePayload
		readFrame(ctx, t, c, typeChatMessage, &m)
		if m.Username != "alice" || m.Message != "hello from wasm" {
			t.Errorf("%s received %+v, want alice's message", name, m)
		}
	}
}

// findTool returns the path of an executable on PATH or in dir. When it is
// missing the test skips, or fails if WASI=1 says this run must cover WASI.
func findTool(t *testing.T, name, dir string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if dir != "" {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("%s not found on PATH", name)
	if dir != "" {
		msg += " or in " + dir
	}
	if name == "wazero" {
		msg += "; install it with: " + wazeroInstall
	}
	if os.Getenv("WASI") == "1" {
		t.Fatal(msg + " (required because WASI=1)")
	}
	t.Skip(msg + " (set WASI=1 to make this a failure)")
	return ""
}

// findWazero looks for wazero on PATH, then where go install puts it, and
// otherwise installs it from the Go module proxy into the user's cache, so
// that the test suite needs nothing installed by hand.
func findWazero(t *testing.T, goTool string) string {
	t.Helper()
	if p, err := exec.LookPath("wazero"); err == nil {
		return p
	}
	dir := ""
	if out, err := exec.Command(goTool, "env", "GOBIN", "GOPATH").Output(); err == nil {
		f := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(f) == 2 && f[0] != "" {
			dir = f[0]
		} else if len(f) == 2 {
			dir = filepath.Join(strings.Split(f[1], string(os.PathListSeparator))[0], "bin")
		}
	}
	if p := filepath.Join(dir, "wazero"); dir != "" && isFile(p) {
		return p
	}
	if cache, err := os.UserCacheDir(); err == nil {
		bin := filepath.Join(cache, "hallway-test-tools")
		if p := filepath.Join(bin, "wazero"); isFile(p) {
			return p
		}
		cmd := exec.Command(goTool, "install", wazeroModule)
		cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOOS=", "GOARCH=")
		out, err := cmd.CombinedOutput()
		if err == nil {
			return filepath.Join(bin, "wazero")
		}
		t.Logf("go install %s: %v\n%s", wazeroModule, err, out)
	}
	return findTool(t, "wazero", dir)
}

// isFile reports whether p exists and is not a directory.
func isFile(p string) bool {
	info, err := os.Stat(p)
	return err == nil && !info.IsDir()
}

// buildWASM compiles the server for wasip1, stripped as for release.
func buildWASM(t *testing.T, goTool string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "hallway.wasm")
	cmd := exec.Command(goTool, "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("GOOS=wasip1 GOARCH=wasm go build: %v\n%s", err, b)
	}
	return out
}

// startWASI runs the module under wazero on a free loopback port and waits
// until it serves. The process is killed when the test ends.
func startWASI(t *testing.T, wazero, wasm string) string {
	t.Helper()
	port, err := loadgen.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + port
	var stderr bytes.Buffer
	cmd := exec.Command(wazero, "run",
		"-cachedir", wazeroCacheDir(t),
		"-listen", addr,
		"-env", "ENVIRONMENT=development",
		wasm)
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("wazero output:\n%s", stderr.String())
		}
	})

	base := "http://" + addr
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(wasiStartTimeout)
	for start := time.Now(); ; {
		if resp, err := client.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			t.Logf("wasm module served after %v", time.Since(start).Round(time.Millisecond))
			return base
		}
		select {
		case err := <-exited:
			exited <- err // For the cleanup.
			t.Fatalf("wazero exited before serving: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("module did not serve on %s within %v", addr, wasiStartTimeout)
		}
	}
}

// wazeroCacheDir keeps wazero's compiled code between runs, which turns a
// start of seconds into a fraction of one. The cache is keyed by the module's
// contents, so it is cleared when it grows past a few modules' worth.
func wazeroCacheDir(t *testing.T) string {
	t.Helper()
	base, err := os.UserCacheDir()
	if err != nil {
		return t.TempDir()
	}
	dir := filepath.Join(base, "hallway-wasi-test")
	if dirSize(dir) > 256<<20 {
		os.RemoveAll(dir)
	}
	return dir
}

// dirSize adds up the sizes of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// dialWASI joins a room and checks that the first frame is the welcome.
func dialWASI(ctx context.Context, t *testing.T, url string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	var w welcomePayload
	if typ := readFrame(ctx, t, c, "", &w); typ != typeWelcome {
		t.Fatalf("first frame is %q, want %q", typ, typeWelcome)
	}
	return c
}

// readFrame reads frames until one of type want arrives (any frame when want
// is empty), decodes its payload into v and returns its type.
func readFrame(ctx context.Context, t *testing.T, c *websocket.Conn, want string, v any) string {
	t.Helper()
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for a %q frame: %v", want, err)
		}
		// A client that asked for batching gets newline-separated frames.
		for _, line := range bytes.Split(data, []byte("\n")) {
			var env envelope
			if err := json.Unmarshal(line, &env); err != nil {
				t.Fatalf("bad frame %q: %v", line, err)
			}
			if want == "" || env.Type == want {
				if err := json.Unmarshal(env.Payload, v); err != nil {
					t.Fatalf("bad %s payload %s: %v", env.Type, env.Payload, err)
				}
				return env.Type
			}
		}
	}
}
