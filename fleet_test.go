package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hallway/internal/chattest"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests run a fleet of real servers, each with its own machine ID and
// an injected machine list, behind flyproxy_test.go: the members of many
// rooms all hear each other, each machine counts only its own rooms, and a
// machine joining or vanishing never leaves a room in two halves. One
// machine's answer to each fault is in fleetfaults_test.go.

// fleetTimeout bounds each wait for a fleet to settle: machines reread
// their list every 50ms, but a starved CPU can make rejoining slow. It is
// never an assertion about speed.
const fleetTimeout = 90 * time.Second

// fakeDNS is the injected machine list: the TXT record of
// all.vms.<app>.internal, split into short strings as a long record is.
type fakeDNS struct {
	mu      sync.Mutex
	entries []string // "id region"
	err     error
}

// lookup answers as net.Resolver.LookupTXT would.
func (d *fakeDNS) lookup(_ context.Context, name string) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return nil, d.err
	}
	record := strings.Join(d.entries, ",")
	var parts []string
	for len(record) > 20 {
		parts = append(parts, record[:20])
		record = record[20:]
	}
	return append(parts, record), nil
}

// set replaces the list with machines ids, all in region tst.
func (d *fakeDNS) set(ids ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.entries = nil
	for _, id := range ids {
		d.entries = append(d.entries, id+" tst")
	}
}

// fakeReach answers the quick dial with which a machine confirms that
// another is down. Every machine is down until set up.
type fakeReach struct {
	mu    sync.Mutex
	up    map[string]bool
	dials int
}

// dial answers as a dial to the machine's internal address would.
func (r *fakeReach) dial(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dials++
	if r.up[id] {
		return nil
	}
	return errors.New("connection refused")
}

// set makes machine id answer dials or not.
func (r *fakeReach) set(id string, up bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.up == nil {
		r.up = make(map[string]bool)
	}
	r.up[id] = up
}

// count returns how many dials were made.
func (r *fakeReach) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dials
}

// flyMachine is one real server on httptest with its own machine ID.
type flyMachine struct {
	id    string
	srv   *server
	ts    *httptest.Server
	stop  context.CancelFunc
	logs  *syncBuffer
	reach *fakeReach // what its dials to other machines find
}

// startFlyMachine starts server id reading its machine list from dns.
func startFlyMachine(t *testing.T, id string, dns *fakeDNS, environ map[string]string) *flyMachine {
	t.Helper()
	env := map[string]string{"FLY_MACHINE_ID": id, "FLY_APP_NAME": "hallway-test", "FLEET_REFRESH": "50ms", "ROOM_CREATE_RATE": "0", "JOIN_RATE": "0"}
	for k, v := range environ {
		env[k] = v
	}
	logs := &syncBuffer{}
	srv := newServer(testConfig(t, env), slog.New(slog.NewTextHandler(logs, nil)))
	srv.fleet.lookup = dns.lookup
	reach := &fakeReach{}
	srv.fleet.reach = reach.dial
	_, stop := srv.runFleet(context.Background())
	m := &flyMachine{id: id, srv: srv, ts: httptest.NewServer(srv.handler()), stop: stop, logs: logs, reach: reach}
	t.Cleanup(func() {
		m.shutdown()
		if t.Failed() {
			t.Logf("machine %s logged:\n%s", id, logs)
		}
	})
	return m
}

// shutdown stops the machine as a deploy or a scale-down does: members
// hear 1001.
func (m *flyMachine) shutdown() {
	m.stop()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	m.srv.shutdown(ctx)
	m.ts.Close()
}

// health reads the machine's own /healthz, not through the proxy.
func (m *flyMachine) health(t *testing.T) (rooms, clients int) {
	t.Helper()
	var h struct{ Rooms, Clients int }
	getJSON(t, httptestGet(&testServer{Server: m.ts}, "/healthz"), &h)
	return h.Rooms, h.Clients
}

// placement counts, for each room with members on the machine, its members.
func (m *flyMachine) placement() map[string]int {
	m.srv.mu.Lock()
	defer m.srv.mu.Unlock()
	out := make(map[string]int)
	for name, r := range m.srv.rooms {
		r.mu.Lock()
		if len(r.members) > 0 {
			out[name] = len(r.members)
		}
		r.mu.Unlock()
	}
	return out
}

// flyFleet is several machines behind one flyProxy, sharing one fakeDNS.
type flyFleet struct {
	t        *testing.T
	dns      *fakeDNS
	proxy    *flyProxy
	front    *httptest.Server
	machines map[string]*flyMachine // running ones
	all      []*flyMachine          // every machine ever started
}

// startFlyFleet starts a machine for each id behind a proxy.
func startFlyFleet(t *testing.T, ids ...string) *flyFleet {
	f := &flyFleet{t: t, dns: &fakeDNS{}, proxy: newFlyProxy(), machines: make(map[string]*flyMachine)}
	f.dns.set(ids...)
	for _, id := range ids {
		f.addMachine(id)
	}
	f.front = httptest.NewServer(f.proxy)
	t.Cleanup(f.front.Close)
	return f
}

// addMachine starts machine id and lets the proxy and the other running
// machines reach it; the machine list is the caller's business.
func (f *flyFleet) addMachine(id string) {
	m := startFlyMachine(f.t, id, f.dns, nil)
	for other, o := range f.machines {
		o.reach.set(id, true)
		m.reach.set(other, true)
	}
	f.machines[id] = m
	f.all = append(f.all, m)
	f.proxy.add(id, m.ts.URL)
}

// stopMachine stops machine id as a vanished machine: neither the proxy nor
// the other machines reach it any more; the machine list is the caller's
// business.
func (f *flyFleet) stopMachine(id string) {
	f.proxy.remove(id)
	f.machines[id].shutdown()
	delete(f.machines, id)
	for _, o := range f.machines {
		o.reach.set(id, false)
	}
}

// ids lists the running machines.
func (f *flyFleet) ids() []string {
	var ids []string
	for id := range f.machines {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// createRoom asks POST /api/rooms through the proxy for a room code.
func (f *flyFleet) createRoom() string {
	f.t.Helper()
	var res struct{ Room string }
	req, _ := http.NewRequest(http.MethodPost, f.front.URL+"/api/rooms", strings.NewReader(`{}`))
	if resp := getJSON(f.t, req, &res); resp.StatusCode != http.StatusCreated {
		f.t.Fatalf("POST /api/rooms = %d", resp.StatusCode)
	}
	return res.Room
}

// expectedOwner is where room must live among the running machines: the
// machine its code names, else the rendezvous winner.
func (f *flyFleet) expectedOwner(room string) string {
	ids := f.ids()
	if i := strings.LastIndexByte(room, '-'); i >= 0 && slices.Contains(ids, room[i+1:]) {
		return room[i+1:]
	}
	return rendezvous(ids, room)
}

// settle waits until every room lives, whole, on its expected owner alone,
// and each machine's /healthz counts exactly the rooms and members it holds.
// It returns where each room is.
func (f *flyFleet) settle(rooms map[string][]*chattest.Member) map[string]string {
	f.t.Helper()
	where := make(map[string]string)
	chattest.WaitUntil(f.t, fleetTimeout, "every room whole on its owner", func() string {
		clear(where)
		held := make(map[string]map[string]int)
		for id, m := range f.machines {
			held[id] = m.placement()
			for room := range held[id] {
				if other, ok := where[room]; ok {
					return fmt.Sprintf("room %s is split between %s and %s", room, other, id)
				}
				where[room] = id
			}
		}
		for room, ms := range rooms {
			owner := f.expectedOwner(room)
			if got := held[owner][room]; got != len(ms) || where[room] != owner {
				return fmt.Sprintf("room %s: %d of %d members on its owner %s; room seen on %q", room, got, len(ms), owner, where[room])
			}
		}
		for id, m := range f.machines {
			rooms, clients := m.health(f.t)
			members := 0
			for _, n := range held[id] {
				members += n
			}
			if rooms != len(held[id]) || clients != members {
				return fmt.Sprintf("machine %s /healthz says %d rooms, %d clients; it holds %d rooms, %d members", id, rooms, clients, len(held[id]), members)
			}
		}
		return ""
	})
	return maps.Clone(where)
}

func TestFleetBehindFlyProxy(t *testing.T) {
	t.Parallel()
	ids := []string{"1781954c0e4e18", "3d8d2e6b4c1f28", "6e8259d1c99038"}
	f := startFlyFleet(t, ids...)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	rooms := make(map[string][]*chattest.Member)
	created := make(map[string]bool)
	for i := range 16 {
		rooms[fmt.Sprintf("hall-%02d", i)] = nil
	}
	for range 12 {
		code := f.createRoom()
		created[code] = true
		rooms[code] = nil
	}
	for room := range rooms {
		for n := range 3 {
			rooms[room] = append(rooms[room], chattest.StartMember(ctx, f.front.URL, room, n))
		}
	}
	before := f.settle(rooms)
	chattest.EveryoneHearsEveryone(t, rooms, "one", fleetTimeout)
	if f.proxy.replays.Load() == 0 {
		t.Error("no request was replayed: the proxy never picked a machine that does not own the room?")
	}

	// A machine joins: only the named rooms it now wins move to it, closed
	// with 4307 and rejoined there together.
	added := "91852e37a4b448"
	f.addMachine(added)
	f.dns.set(append(ids, added)...)
	after := f.settle(rooms)
	chattest.EveryoneHearsEveryone(t, rooms, "two", fleetTimeout)
	moved := 0
	for room, at := range after {
		switch {
		case at == before[room]:
		case created[room]:
			t.Errorf("created room %s moved from %s to %s", room, before[room], at)
		case at != added:
			t.Errorf("room %s moved from %s to %s, not to the new machine", room, before[room], at)
		default:
			moved++
			for _, m := range rooms[room] {
				if m.ClosedWith(closeRoomMoved) == 0 {
					t.Errorf("member %d of moved room %s was never closed with %d", m.N, room, closeRoomMoved)
				}
			}
		}
	}
	if moved == 0 {
		t.Fatal("no room moved to the new machine; the test proves nothing about moving")
	}

	// A machine goes away: the proxy cannot reach it before the machine
	// list drops it, so replays to it fall back; its rooms end up whole on
	// the next machine in line, and no other room moves.
	gone := ids[1]
	f.stopMachine(gone)
	chattest.WaitUntil(t, fleetTimeout, "a replay to the vanished machine fell back", func() string {
		if f.proxy.fallbacks.Load() == 0 {
			return "no fallback yet"
		}
		return ""
	})
	f.dns.set(f.ids()...)
	last := f.settle(rooms)
	chattest.EveryoneHearsEveryone(t, rooms, "three", fleetTimeout)
	for room, at := range last {
		if after[room] != gone && at != after[room] {
			t.Errorf("room %s moved from %s to %s though its machine stayed", room, after[room], at)
		}
	}
	if n := f.proxy.doubleReplays.Load(); n != 0 {
		t.Errorf("%d replayed requests asked for another replay (a replay loop)", n)
	}
	// Every replay the machines counted is one the proxy made.
	var counted float64
	for _, m := range f.all {
		var b bytes.Buffer
		m.srv.metrics.writeTo(&b)
		counted += metricValue(t, parseMetrics(t, b.Bytes()), "hallway_replays_total", "", "")
	}
	if made := f.proxy.replays.Load(); counted != float64(made) {
		t.Errorf("machines counted %v replays; the proxy made %d", counted, made)
	}
	for _, m := range f.machines {
		if strings.Contains(m.logs.String(), "hall-") {
			t.Errorf("machine %s logged a room name", m.id)
		}
	}
}
