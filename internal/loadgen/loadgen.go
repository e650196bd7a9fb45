//go:build linux

// Package loadgen is the load tool's engine: it runs a Hallway server as a
// process of its own, so that /proc shows the server's CPU and memory and
// not the clients', connects thousands of real WebSocket clients to it over
// loopback, and reports what they received. cmd/hallway-load is its command
// line; the root package's benchmarks use its clients. It reads /proc, so it
// builds on Linux only. It holds no server code: it talks to a server only
// over HTTP and WebSocket, as any client would.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"
)

// TB is what a workload reports through and fails with: *testing.T and
// *testing.B satisfy it, and so does the command's Run.
type TB interface {
	Helper()
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Skip(args ...any)
	Cleanup(func())
}

// recorder is a TB that also keeps named figures, for JSON output.
type recorder interface {
	Record(name string, value any)
}

// record keeps a figure when tb keeps figures.
func record(tb TB, name string, value any) {
	if r, ok := tb.(recorder); ok {
		r.Record(name, value)
	}
}

// Options are the load tool's settings, one field a flag.
type Options struct {
	URL          string        // base URL of a running server; empty starts a server process per workload
	Remote       bool          // allow URL to name a host that is not loopback
	Server       string        // server binary to start
	ServerEnv    []string      // extra environment for started servers
	ServerCPU    int           // core started servers are pinned to; -1 does not pin
	Clients      int           // members of the room (burst, steady)
	Senders      int           // members who send (burst, steady)
	Messages     int           // messages each sender sends at full speed (burst)
	Rate         float64       // messages per second per sender (steady)
	Duration     time.Duration // how long senders send (steady, rooms)
	RoomsClients int           // members in all (rooms)
	RoomSize     int           // members of each room (rooms)
	RoomRate     float64       // messages per second in each room (rooms)
	Idle         int           // idle connections to open (idle)
	Starts       int           // server starts to time (startup)
	Dials        int           // handshakes in flight at once while members join
	Timeout      time.Duration // bound on each workload
	CheckOrder   bool          // burst: every member must see the same ids in one order
	FloorExe     string        // binary that serves the floor (see ServeFloor); empty runs no floor
	RelayFloor   bool          // also measure the relay floor, which reads each message first (relayfloor.go)
}

// Defaults are the settings the README's figures were measured with.
func Defaults() Options {
	return Options{
		ServerCPU: 0, Clients: 1000, Senders: 10, Messages: 200, Rate: 10, Duration: 10 * time.Second,
		RoomsClients: 5000, RoomSize: 10, RoomRate: 2, Idle: 5000, Starts: 20, Dials: 50, Timeout: 2 * time.Minute,
	}
}

// opts are the settings in force. The tool runs one configuration per
// process, so they are set once, before any workload runs.
var opts = Defaults()

// SetOptions checks o and puts it in force.
func SetOptions(o Options) error {
	if err := o.check(); err != nil {
		return err
	}
	opts = o
	return nil
}

// Limits and pacing of the load clients.
const (
	// dialTimeout bounds one handshake.
	dialTimeout = 10 * time.Second
	// loadReadLimit is far above any batch the server writes.
	loadReadLimit = 1 << 24
	// settleQuiet is how long deliveries may stall before the rest count as lost.
	settleQuiet = 2 * time.Second
	// deliveryPoll is how often delivery counts are summed while waiting.
	deliveryPoll = time.Millisecond
	// joinPoll is how often members are checked while join notices settle.
	joinPoll = 20 * time.Millisecond
	// idleRoomSize keeps idle rooms far below MAX_ROOM_CLIENTS.
	idleRoomSize = 100
	// rssSettleInterval and rssSettleTries bound waiting for a steady RSS.
	rssSettleInterval = time.Second
	rssSettleTries    = 20
	// startupRetry is the pause between dials while a server starts.
	startupRetry = 100 * time.Microsecond
	// clockTick is the unit of CPU times in /proc/PID/stat (USER_HZ = 100).
	clockTick = 10 * time.Millisecond
)

// Names is every workload in the order "all" runs them.
var Names = []string{"burst", "plainburst", "steady", "plainsteady", "rooms", "idle", "startup"}

// workloads runs each workload by name.
var workloads = map[string]func(context.Context, TB){
	"burst":       func(ctx context.Context, tb TB) { loadBurst(ctx, tb, "burst") },
	"plainburst":  func(ctx context.Context, tb TB) { loadBurst(ctx, tb, "plainburst") },
	"steady":      func(ctx context.Context, tb TB) { loadSteady(ctx, tb, "steady") },
	"plainsteady": func(ctx context.Context, tb TB) { loadSteady(ctx, tb, "plainsteady") },
	"rooms":       loadRooms,
	"idle":        loadIdleConns,
	"startup":     loadStartup,
}

// Run runs the workload called name, bounded by Options.Timeout.
func Run(ctx context.Context, name string, tb TB) {
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	workloads[name](ctx, tb)
}

// ParseWorkloads reads workload names separated by commas, or all.
func ParseWorkloads(s string) ([]string, error) {
	if s == "all" {
		return Names, nil
	}
	var names []string
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		if workloads[name] == nil {
			return nil, fmt.Errorf("-workload: unknown workload %q; want some of %s, or all", name, strings.Join(Names, ","))
		}
		names = append(names, name)
	}
	return names, nil
}

// check rejects settings the workloads cannot run with.
func (o Options) check() error {
	switch {
	case o.Clients < 1 || o.Senders < 1 || o.Senders > o.Clients:
		return fmt.Errorf("-senders=%d must be within 1..-clients (%d)", o.Senders, o.Clients)
	case o.Messages < 1 || o.Rate <= 0 || o.Duration <= 0:
		return errors.New("-messages, -rate and -duration must be positive")
	case o.Idle < 1 || o.Starts < 1 || o.Dials < 1 || o.Timeout <= 0:
		return errors.New("-idle, -starts, -dials and -timeout must be positive")
	case o.RoomSize < 1 || o.RoomsClients < o.RoomSize || o.RoomsClients%o.RoomSize != 0 || o.RoomRate <= 0:
		return fmt.Errorf("-rooms.clients=%d must be a multiple of -rooms.size=%d, and -rooms.rate positive", o.RoomsClients, o.RoomSize)
	case o.URL == "" && o.Server == "":
		return errors.New("no server: give -server or -url")
	}
	return checkURL(o.URL, o.Remote)
}

// checkURL refuses a -url that is not loopback unless remote is set, so
// that nobody loads somebody else's host by a typo.
func checkURL(raw string, remote bool) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("-url %q is not an http:// or https:// base URL", raw)
	}
	ip := net.ParseIP(u.Hostname())
	if remote || u.Hostname() == "localhost" || (ip != nil && ip.IsLoopback()) {
		return nil
	}
	return fmt.Errorf("-url %q is not a loopback address; add -remote only to load your own deployment", raw)
}

// LogSetup says what is measured and where each side runs.
func LogSetup(tb TB) {
	server := opts.Server
	_, pin := serverPinning()
	server += ", " + pin
	if opts.URL != "" {
		server = "the server at " + opts.URL + " (its CPU and memory are not visible)"
	}
	tb.Logf("server: %s; client: pid %d, GOMAXPROCS %d", server, os.Getpid(), runtime.GOMAXPROCS(0))
}
