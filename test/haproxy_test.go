//go:build linux

// It starts server processes and listeners with loadclient_test.go's helpers, which are linux-only.

package test

import (
	"context"
	"encoding/json"
	"fmt"
	"hallway/internal/chattest"
	"hallway/internal/loadgen"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// readmeBlock is the one code block in lang, verbatim, of
// docs/many-machines.md, the page that documents running behind a load balancer.
func readmeBlock(t *testing.T, lang string) string {
	t.Helper()
	const page = "docs/many-machines.md"
	readme, err := os.ReadFile(repoFile(page))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```"+lang+"\n(.*?)```").FindAllSubmatch(readme, -1)
	if len(blocks) != 1 {
		t.Fatalf("%s has %d %s blocks, want exactly one", page, len(blocks), lang)
	}
	return string(blocks[0][1])
}

// lbTool finds a load balancer's binary, skipping the test without it
// unless CI=1 or E2E=1 demands it (.ci/run installs it from apt).
func lbTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := name + " is not installed (apt-get install " + name + ")"
	if os.Getenv("CI") == "1" || os.Getenv("E2E") == "1" {
		t.Fatal("CI=1 or E2E=1 but " + msg)
	}
	t.Skip(msg + "; set E2E=1 to make this a failure")
	return ""
}

// readmeNodes are the node addresses the README's configuration names.
var readmeNodes = []string{"10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"}

// fleetTimeout bounds waiting for a fleet of nodes to agree on its rooms.
const fleetTimeout = 90 * time.Second

// nodeEnv is what the README's configuration gives every node.
var nodeEnv = []string{"HOST=127.0.0.1", "CLIENT_IP_HEADER=X-Real-IP", "ROOM_CREATE_RATE=0", "JOIN_RATE=0"}

// startNode runs this tree's server as a node behind a load balancer.
func startNode(t *testing.T, environ ...string) (*loadgen.Process, string) {
	t.Helper()
	return startServer(t, hallwayBin, append(slices.Clone(nodeEnv), environ...)...)
}

// startNodes starts one node for each address the README's configuration
// names, and returns the processes and their base URLs.
func startNodes(t *testing.T, environ ...string) ([]*loadgen.Process, []string) {
	t.Helper()
	var procs []*loadgen.Process
	var nodes []string
	for range readmeNodes {
		p, base := startNode(t, environ...)
		procs, nodes = append(procs, p), append(nodes, base)
	}
	return procs, nodes
}

// startNodeOn is startNode on a given loopback port: a node coming back.
func startNodeOn(t *testing.T, port string, environ ...string) (*loadgen.Process, string) {
	t.Helper()
	return startServerOn(t, hallwayBin, port, append(slices.Clone(nodeEnv), environ...)...)
}

// haproxyProcess is a running haproxy and the configuration it runs.
type haproxyProcess struct {
	bin, file string
	proc      *loadgen.Process
}

// startHAProxy runs haproxy with the README's configuration, its addresses
// replaced by the test's, and returns it and the front address.
func startHAProxy(t *testing.T, nodes []string) (*haproxyProcess, string) {
	t.Helper()
	bin := lbTool(t, "haproxy")
	cfg := readmeBlock(t, "haproxy")
	port, err := loadgen.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(cfg, "bind :80\n") != 1 {
		t.Fatal("the README's HAProxy configuration has no single `bind :80` line")
	}
	cfg = strings.Replace(cfg, "bind :80\n", "bind 127.0.0.1:"+port+"\n", 1)
	peerPort, err := loadgen.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(cfg, readmePeer) != 1 {
		t.Fatalf("the README's HAProxy configuration names its peer address %s %d times, want once", readmePeer, strings.Count(cfg, readmePeer))
	}
	cfg = strings.Replace(cfg, readmePeer, "127.0.0.1:"+peerPort, 1)
	for i, addr := range readmeNodes {
		if strings.Count(cfg, addr) != 2 {
			t.Fatalf("the README's HAProxy configuration names %s %d times, want twice (both backends)", addr, strings.Count(cfg, addr))
		}
		cfg = strings.ReplaceAll(cfg, addr, strings.TrimPrefix(nodes[i], "http://"))
	}
	file := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", file).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c rejects the README's configuration: %v\n%s", err, out)
	}
	h := &haproxyProcess{bin: bin, file: file}
	front := "http://127.0.0.1:" + port
	h.start(t, front)
	return h, front
}

// readmePeer is the address of the README's HAProxy peer (itself).
const readmePeer = "127.0.0.1:10000"

// start runs haproxy with h's configuration, as a reload of the running one
// if there is one (-sf: the new process takes over the listeners, and the
// old one finishes its connections and hands over its stick table).
func (h *haproxyProcess) start(t *testing.T, front string) {
	t.Helper()
	args := []string{"-db", "-f", h.file}
	if h.proc != nil {
		args = append(args, "-sf", fmt.Sprint(h.proc.Cmd.Process.Pid))
	}
	p, err := loadgen.StartProcess(exec.Command(h.bin, args...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	h.proc = p
	ctx, cancel := context.WithTimeout(context.Background(), fleetTimeout)
	defer cancel()
	if err := loadgen.WaitHealthy(ctx, front, p); err != nil {
		p.Stop()
		t.Fatalf("haproxy did not serve: %v; it printed:\n%s", err, p.Out.String())
	}
}

func TestHAProxyFromREADME(t *testing.T) {
	t.Parallel()
	// A room of three is full, so a full room answers only from its node.
	procs, nodes := startNodes(t, "MAX_ROOM_CLIENTS=3")
	lb, front := startHAProxy(t, nodes)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	rooms := fillRooms(ctx, t, front, nodes)

	// The same room in capitals reaches the same node: it answers that the
	// room is full, which the other nodes would not. A private room is full
	// with two wherever it was created.
	checkRoomsFull(t, front, rooms)

	// A node goes down: its rooms start afresh, whole, on the others; the
	// members rejoin by themselves.
	procs[0].Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-procs[0].Exited:
	case <-time.After(fleetTimeout):
		t.Fatal("node did not stop on SIGTERM")
	}
	chattest.EveryoneHearsEveryone(t, rooms, "two", fleetTimeout)

	// The node comes back. New rooms may go to it again, but a room that
	// moved stays where its members are: newcomers are sent there, not to
	// the returning node, which would split the room in two.
	_, port, _ := strings.Cut(strings.TrimPrefix(nodes[0], "http://"), ":")
	startNodeOn(t, port, "MAX_ROOM_CLIENTS=3")
	for i := 0; ; i++ {
		if i == 1000 {
			t.Fatal("haproxy sent none of 1,000 new rooms to the node that came back")
		}
		probe, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(front, "http")+fmt.Sprintf("/ws/probe-%d?username=p", i), nil)
		if err != nil {
			t.Fatalf("probe through haproxy: %v", err)
		}
		clients, err := loadgen.HealthClients(ctx, nodes[0])
		probe.CloseNow()
		if err == nil && clients > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	checkRoomsFull(t, front, rooms)
	chattest.EveryoneHearsEveryone(t, rooms, "three", fleetTimeout)

	// HAProxy reloads (a new certificate, a changed configuration): the old
	// process pushes its stick table to the new one, its peer, within a
	// moment, and its values overwrite any the new one stored meanwhile, so
	// the rooms that moved are found where their members are. Without the
	// peer, the new process would send them to their hashed node for good.
	old := lb.proc
	lb.start(t, front)
	// Until the old process stops its frontend, it may still answer.
	chattest.WaitUntil(t, fleetTimeout, "the old haproxy to stop listening", func() string {
		if !strings.Contains(old.Out.String(), "Proxy hallway stopped") {
			return "it has not printed \"Proxy hallway stopped\""
		}
		return ""
	})
	chattest.WaitUntil(t, fleetTimeout, "after a reload, every room found on its node", func() string {
		for room := range rooms {
			if status, code := roomProbe(t, front, strings.ToUpper(room)); status != http.StatusConflict {
				return fmt.Sprintf("GET /ws/%s through haproxy = %d %q", room, status, code)
			}
		}
		return ""
	})
}

// fillRooms starts, through the load balancer at front, 12 named rooms and
// 12 created ones (every other one private), each with as many members as
// it holds; checks that every member hears every other and that the nodes'
// counts add up to the members; and returns the rooms. POST reaches any
// node, most often not the one the room is sent to, which must still hold
// a private room at two.
func fillRooms(ctx context.Context, t *testing.T, front string, nodes []string) map[string][]*chattest.Member {
	t.Helper()
	rooms := make(map[string][]*chattest.Member)
	size := make(map[string]int) // members each room gets: all it holds
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
			t.Fatalf("POST /api/rooms through the load balancer = %d", resp.StatusCode)
		}
		rooms[res.Room], size[res.Room] = nil, holds
	}
	members := 0
	for room := range rooms {
		for n := range size[room] {
			rooms[room] = append(rooms[room], chattest.StartMember(ctx, front, room, n))
			members++
		}
	}
	chattest.EveryoneHearsEveryone(t, rooms, "one", fleetTimeout)

	// Every node counts only its own members, and they add up.
	total := 0
	for _, n := range nodes {
		clients, err := loadgen.HealthClients(context.Background(), n)
		if err != nil {
			t.Fatal(err)
		}
		total += clients
	}
	if total != members {
		t.Errorf("the nodes count %d members, want %d", total, members)
	}
	return rooms
}

// checkRoomsFull asks haproxy for a place in each room, spelled in capitals:
// the room's node answers that it is full, which no other node would.
func checkRoomsFull(t *testing.T, front string, rooms map[string][]*chattest.Member) {
	t.Helper()
	for room := range rooms {
		if status, code := roomProbe(t, front, strings.ToUpper(room)); status != http.StatusConflict || code != codeRoomFull {
			t.Errorf("GET /ws/%s through haproxy = %d %q, want 409 room_full from the room's node", strings.ToUpper(room), status, code)
		}
	}
}

// roomProbe asks the load balancer at front, without upgrading, for a place
// in room, and returns the status and error code of the answer.
func roomProbe(t *testing.T, front, room string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, front+"/ws/"+room+"?username=x", nil)
	var e errorPayload
	resp := getJSON(t, req, &e)
	return resp.StatusCode, e.Code
}

// getJSON does req and decodes its JSON body into into.
func getJSON(t *testing.T, req *http.Request, into any) *http.Response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, into); err != nil {
		t.Fatalf("%s %s: body %q is not JSON: %v", req.Method, req.URL, body, err)
	}
	return resp
}
