//go:build linux

// It starts server processes with loadclient_test.go's helpers, which are linux-only.

package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeCaddyConfig is the README's Caddyfile, verbatim.
func readmeCaddyConfig(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```caddy\n(.*?)```").FindAllSubmatch(readme, -1)
	if len(blocks) != 1 {
		t.Fatalf("README.md has %d caddy blocks, want exactly one", len(blocks))
	}
	return string(blocks[0][1])
}

// caddyPath finds caddy, skipping the test without it unless CI=1 or E2E=1
// demands it (.ci/run installs it).
func caddyPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("caddy")
	if err == nil {
		return p
	}
	const msg = "caddy is not installed (apt-get install caddy)"
	if os.Getenv("CI") == "1" || os.Getenv("E2E") == "1" {
		t.Fatal("CI=1 or E2E=1 but " + msg)
	}
	t.Skip(msg + "; set E2E=1 to make this a failure")
	return ""
}

// readmeCaddySite is the site the README's Caddyfile serves.
const readmeCaddySite = "chat.example.com {"

// startCaddy runs caddy with the README's Caddyfile, its addresses replaced
// by the test's: plain HTTP on a free loopback port instead of the site's
// name (no certificate), and no admin endpoint, which would need a port of
// its own. Its home is a temporary directory, so it keeps nothing.
func startCaddy(t *testing.T, nodes []string) string {
	t.Helper()
	bin := caddyPath(t)
	cfg := readmeCaddyConfig(t)
	port, err := freePort()
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
	p, err := startCommand(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.stop)
	front := "http://127.0.0.1:" + port
	ctx, cancel := context.WithTimeout(context.Background(), fleetTimeout)
	defer cancel()
	if err := waitHealthy(ctx, front, p); err != nil {
		p.stop()
		t.Fatalf("caddy did not serve: %v; it printed:\n%s", err, p.out.String())
	}
	return front
}

// The README's Caddy recipe, run as written: each room on one node, created
// rooms held as made, and a stopped node's rooms whole on the others. (It
// does not fold case, and it splits a room when a node comes back, as the
// README says, so neither is checked here.)
func TestCaddyFromREADME(t *testing.T) {
	t.Parallel()
	var procs []*serverProcess
	var nodes []string
	for range readmeNodes {
		p, base := startNode(t, "MAX_ROOM_CLIENTS=3")
		procs, nodes = append(procs, p), append(nodes, base)
	}
	front := startCaddy(t, nodes)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	rooms := make(map[string][]*roomMember)
	size := make(map[string]int)
	for i := range 12 {
		rooms[fmt.Sprintf("hall-%02d", i)], size[fmt.Sprintf("hall-%02d", i)] = nil, 3
	}
	for i := range 12 {
		var res struct{ Room string }
		body, holds := "", 3
		if i%2 == 0 {
			body, holds = `{"capacity":2}`, 2
		}
		req, _ := http.NewRequest(http.MethodPost, front+"/api/rooms", strings.NewReader(body))
		if resp := getJSON(t, req, &res); resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST /api/rooms through caddy = %d", resp.StatusCode)
		}
		rooms[res.Room], size[res.Room] = nil, holds
	}
	members := 0
	for room := range rooms {
		for n := range size[room] {
			rooms[room] = append(rooms[room], startMember(ctx, front, room, n))
			members++
		}
	}
	everyoneHearsEveryone(t, rooms, "one")

	total := 0
	for _, n := range nodes {
		clients, err := healthClients(context.Background(), n)
		if err != nil {
			t.Fatal(err)
		}
		total += clients
	}
	if total != members {
		t.Errorf("the nodes count %d members, want %d", total, members)
	}
	for room := range rooms {
		if status, code := roomProbe(t, front, room); status != http.StatusConflict || code != codeRoomFull {
			t.Errorf("GET /ws/%s through caddy = %d %q, want 409 room_full from the room's node", room, status, code)
		}
	}

	procs[0].cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-procs[0].exited:
	case <-time.After(fleetTimeout):
		t.Fatal("node did not stop on SIGTERM")
	}
	everyoneHearsEveryone(t, rooms, "two")
}
