//go:build linux

// It starts server processes with loadclient_test.go's helpers, which are linux-only.

package test

import (
	"context"
	"hallway/internal/chattest"
	"hallway/internal/loadgen"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeCaddySite is the site the README's Caddyfile serves.
const readmeCaddySite = "chat.example.com {"

// startCaddy runs caddy with the README's Caddyfile, its addresses replaced
// by the test's: plain HTTP on a free loopback port instead of the site's
// name (no certificate), and no admin endpoint, which would need a port of
// its own. Its home is a temporary directory, so it keeps nothing.
func startCaddy(t *testing.T, nodes []string) string {
	t.Helper()
	bin := lbTool(t, "caddy")
	cfg := readmeBlock(t, "caddy")
	port, err := loadgen.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(cfg, readmeCaddySite) != 1 {
		t.Fatalf("the README's Caddyfile has no single %q line", readmeCaddySite)
	}
	cfg = "{\n\tadmin off\n}\n\n" + strings.Replace(cfg, readmeCaddySite, "http://127.0.0.1:"+port+" {", 1)
	for i, addr := range readmeNodes {
		if strings.Count(cfg, addr) != 2 {
			t.Fatalf("the README's Caddyfile names %s %d times, want twice (both proxies)", addr, strings.Count(cfg, addr))
		}
		cfg = strings.ReplaceAll(cfg, addr, strings.TrimPrefix(nodes[i], "http://"))
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	check := exec.Command(bin, "validate", "--adapter", "caddyfile", "--config", file)
	check.Env = env
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("caddy validate rejects the README's Caddyfile: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "run", "--adapter", "caddyfile", "--config", file)
	cmd.Env = env
	p, err := loadgen.StartProcess(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	front := "http://127.0.0.1:" + port
	ctx, cancel := context.WithTimeout(context.Background(), fleetTimeout)
	defer cancel()
	if err := loadgen.WaitHealthy(ctx, front, p); err != nil {
		p.Stop()
		t.Fatalf("caddy did not serve: %v; it printed:\n%s", err, p.Out.String())
	}
	return front
}

// The README's Caddy recipe, run as written: each room on one node, created
// rooms held as made, and a stopped node's rooms whole on the others. (It
// does not fold case, and it splits a room when a node comes back, as the
// README says, so neither is checked here.)
func TestCaddyFromREADME(t *testing.T) {
	t.Parallel()
	procs, nodes := startNodes(t, "MAX_ROOM_CLIENTS=3")
	front := startCaddy(t, nodes)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	rooms := fillRooms(ctx, t, front, nodes)
	for room := range rooms {
		if status, code := roomProbe(t, front, room); status != http.StatusConflict || code != codeRoomFull {
			t.Errorf("GET /ws/%s through caddy = %d %q, want 409 room_full from the room's node", room, status, code)
		}
	}

	procs[0].Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-procs[0].Exited:
	case <-time.After(fleetTimeout):
		t.Fatal("node did not stop on SIGTERM")
	}
	chattest.EveryoneHearsEveryone(t, rooms, "two", fleetTimeout)
}
