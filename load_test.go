//go:build linux

package main

// The load tool measures a server from the outside. It runs the server as a
// process of its own, so that /proc shows the server's CPU and memory and not
// the clients', connects thousands of real WebSocket clients to it over
// loopback, and reports what they received. It reads /proc, so it builds on
// Linux only. docs/performance.md shows how to run it.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Flags of the load tool; TestLoad runs only when -load names a workload.
var (
	// loadWorkloads lists the workloads TestLoad runs; empty skips TestLoad.
	loadWorkloads = flag.String("load", "", "workloads to run: comma-separated burst,plainburst,steady,plainsteady,rooms,idle,startup, or all; empty skips TestLoad")
	// loadURL is the base URL of a running server to load instead of starting one.
	loadURL = flag.String("load.url", "", "base URL of a running server, e.g. http://127.0.0.1:8080; empty starts a server process per workload")
	// loadRemote allows loadURL to name a host that is not loopback.
	loadRemote = flag.Bool("load.remote", false, "allow -load.url to name a non-loopback host; point it only at your own deployment")
	// loadServer is the server binary to start; empty re-runs this test binary as the server.
	loadServer = flag.String("load.server", "", "server binary to start (e.g. hallway built from another commit); empty runs this tree's server")
	// loadServerCPU is the core started servers are pinned to; -1 does not pin.
	loadServerCPU = flag.Int("load.servercpu", 0, "core to pin started servers to with taskset -c; -1 does not pin")
	// loadClients is how many members share the room in burst and steady.
	loadClients = flag.Int("load.clients", 1000, "members of the room (burst, steady)")
	// loadSenders is how many of those members send.
	loadSenders = flag.Int("load.senders", 10, "members who send (burst, steady)")
	// loadMessages is how many messages each sender sends in a burst.
	loadMessages = flag.Int("load.messages", 200, "messages each sender sends at full speed (burst)")
	// loadRate is each sender's messages per second in steady.
	loadRate = flag.Float64("load.rate", 10, "messages per second per sender (steady)")
	// loadDuration is how long steady senders send.
	loadDuration = flag.Duration("load.duration", 10*time.Second, "how long senders send (steady)")
	// loadRoomsClients is how many members the rooms workload spreads over small rooms.
	loadRoomsClients = flag.Int("load.rooms.clients", 5000, "members in all (rooms)")
	// loadRoomSize is how many members share each small room.
	loadRoomSize = flag.Int("load.rooms.size", 10, "members of each room (rooms)")
	// loadRoomRate is the messages per second one member of each room sends.
	loadRoomRate = flag.Float64("load.rooms.rate", 2, "messages per second in each room (rooms)")
	// loadIdle is how many idle connections the idle workload opens.
	loadIdle = flag.Int("load.idle", 5000, "idle connections to open (idle)")
	// loadStarts is how many server starts the startup workload times.
	loadStarts = flag.Int("load.starts", 20, "server starts to time (startup)")
	// loadDials bounds handshakes in flight while members join.
	loadDials = flag.Int("load.dials", 50, "handshakes in flight at once while members join")
	// loadTimeout bounds each workload.
	loadTimeout = flag.Duration("load.timeout", 2*time.Minute, "bound on each workload")
)

// loadServeEnv, set to 1, makes the test binary run as the server.
const loadServeEnv = "HALLWAY_LOAD_SERVE"

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
	// harnessTimeout bounds TestLoadHarness.
	harnessTimeout = time.Minute
)

// TestMain lets the test binary double as the server: with
// HALLWAY_LOAD_SERVE=1 it is this tree's server in a process of its own.
func TestMain(m *testing.M) {
	if os.Getenv(loadServeEnv) == "1" {
		if err := run(nil, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "hallway:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	flag.Parse()
	os.Exit(m.Run())
}

// loadWorkloadNames is every workload in the order "all" runs them.
var loadWorkloadNames = []string{"burst", "plainburst", "steady", "plainsteady", "rooms", "idle", "startup"}

// loadWorkloadRuns runs each workload by name.
var loadWorkloadRuns = map[string]func(context.Context, *testing.T){
	"burst":       func(ctx context.Context, t *testing.T) { loadBurst(ctx, t, false) },
	"plainburst":  func(ctx context.Context, t *testing.T) { loadBurst(ctx, t, true) },
	"steady":      func(ctx context.Context, t *testing.T) { loadSteady(ctx, t, false) },
	"plainsteady": func(ctx context.Context, t *testing.T) { loadSteady(ctx, t, true) },
	"rooms":       loadRooms,
	"idle":        loadIdleConns,
	"startup":     loadStartup,
}

// TestLoad is the load tool. Run it with the client pinned to the core the
// server is not on: taskset -c 1 go test -run TestLoad -load=all -v -timeout 20m
// Measure without -race: a server re-run from this binary would carry it too.
func TestLoad(t *testing.T) {
	if *loadWorkloads == "" {
		t.Skip("load tool: run taskset -c 1 go test -run TestLoad -load=all -v -timeout 20m (docs/performance.md)")
	}
	names, err := parseWorkloads(*loadWorkloads)
	if err == nil {
		err = errors.Join(checkLoadURL(*loadURL, *loadRemote), checkLoadFlags())
	}
	if err != nil {
		t.Fatal(err)
	}
	raiseFileLimit(t)
	logLoadSetup(t)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), *loadTimeout)
			defer cancel()
			loadWorkloadRuns[name](ctx, t)
		})
	}
}

// parseWorkloads reads -load: workload names separated by commas, or all.
func parseWorkloads(s string) ([]string, error) {
	if s == "all" {
		return loadWorkloadNames, nil
	}
	var names []string
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		if loadWorkloadRuns[name] == nil {
			return nil, fmt.Errorf("-load: unknown workload %q; want some of %s, or all", name, strings.Join(loadWorkloadNames, ","))
		}
		names = append(names, name)
	}
	return names, nil
}

// checkLoadURL refuses a -load.url that is not loopback unless remote is
// set, so that nobody loads somebody else's host by a typo.
func checkLoadURL(raw string, remote bool) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("-load.url %q is not an http:// or https:// base URL", raw)
	}
	ip := net.ParseIP(u.Hostname())
	if remote || u.Hostname() == "localhost" || (ip != nil && ip.IsLoopback()) {
		return nil
	}
	return fmt.Errorf("-load.url %q is not a loopback address; add -load.remote only to load your own deployment", raw)
}

// checkLoadFlags rejects sizes the workloads cannot run with.
func checkLoadFlags() error {
	switch {
	case *loadClients < 1 || *loadSenders < 1 || *loadSenders > *loadClients:
		return fmt.Errorf("-load.senders=%d must be within 1..-load.clients (%d)", *loadSenders, *loadClients)
	case *loadMessages < 1 || *loadRate <= 0 || *loadDuration <= 0:
		return errors.New("-load.messages, -load.rate and -load.duration must be positive")
	case *loadIdle < 1 || *loadStarts < 1 || *loadDials < 1:
		return errors.New("-load.idle, -load.starts and -load.dials must be positive")
	case *loadRoomSize < 1 || *loadRoomsClients < *loadRoomSize || *loadRoomsClients%*loadRoomSize != 0 || *loadRoomRate <= 0:
		return fmt.Errorf("-load.rooms.clients=%d must be a multiple of -load.rooms.size=%d, and -load.rooms.rate positive", *loadRoomsClients, *loadRoomSize)
	}
	return nil
}

// logLoadSetup says what is measured and where each side runs.
func logLoadSetup(t *testing.T) {
	server := "this tree's server (the test binary, re-run as a server)"
	if *loadServer != "" {
		server = *loadServer
	}
	_, pin := serverPinning()
	server += ", " + pin
	if *loadURL != "" {
		server = "the server at " + *loadURL + " (its CPU and memory are not visible)"
	}
	t.Logf("server: %s; client: pid %d, GOMAXPROCS %d", server, os.Getpid(), runtime.GOMAXPROCS(0))
}

// loadBurst runs the burst workload, with plain or batching members, and
// fails on any loss: every member is promised every message.
func loadBurst(ctx context.Context, t *testing.T, plain bool) {
	tg := loadTargetFor(ctx, t)
	tg.plain = plain
	spec := flowSpec{clients: *loadClients, senders: *loadSenders}
	r := runFlow(ctx, t, tg, spec, burstSend(*loadMessages))
	r.logBurst(t, *loadMessages)
	checkNoLoss(t, r)
}

// loadSteady runs the steady workload, with plain or batching members, and
// fails on any loss.
func loadSteady(ctx context.Context, t *testing.T, plain bool) {
	tg := loadTargetFor(ctx, t)
	tg.plain = plain
	spec := flowSpec{clients: *loadClients, senders: *loadSenders}
	r := runFlow(ctx, t, tg, spec, steadySend(*loadRate, *loadDuration))
	r.logSteady(t, *loadRate, *loadDuration)
	checkNoLoss(t, r)
}

// loadRooms runs the many-small-rooms workload with plain members, and
// fails on any loss.
func loadRooms(ctx context.Context, t *testing.T) {
	tg := loadTargetFor(ctx, t)
	tg.plain = true
	r := runRooms(ctx, t, tg, *loadRoomsClients, *loadRoomSize, steadySend(*loadRoomRate, *loadDuration))
	r.logSteady(t, *loadRoomRate, *loadDuration)
	checkNoLoss(t, r)
}

// loadIdleConns runs the idle workload.
func loadIdleConns(ctx context.Context, t *testing.T) {
	tg := loadTargetFor(ctx, t)
	measureIdle(ctx, t, tg, *loadIdle).log(t)
}

// loadStartup times server starts; it needs to start the server itself.
func loadStartup(ctx context.Context, t *testing.T) {
	if *loadURL != "" {
		t.Skip("startup starts the server itself; it does not run with -load.url")
	}
	times := make([]time.Duration, 0, *loadStarts)
	for range *loadStarts {
		d, err := timeStartup(ctx)
		if err != nil {
			t.Fatal(err)
		}
		times = append(times, d)
	}
	slices.Sort(times)
	t.Logf("startup: %d starts, exec to first frame (welcome) on a WebSocket: min %.1f ms, median %.1f ms, max %.1f ms",
		len(times), ms(times[0]), ms(percentile(times, 0.5)), ms(times[len(times)-1]))
}

// TestLoadHarness runs the load tool in miniature against a server process,
// so that the tool keeps working as the server changes: a small burst in
// which every member must see every message in one order, then the idle
// measurement. It asserts nothing about speed.
func TestLoadHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), harnessTimeout)
	defer cancel()
	const clients, senders, messages = 20, 2, 20
	r := runFlow(ctx, t, startServer(ctx, t), flowSpec{clients: clients, senders: senders, keepIDs: true}, burstSend(messages))
	r.logBurst(t, messages)
	checkNoLoss(t, r)
	checkOneOrder(t, r.members, senders*messages)
	if !r.measured || r.after.peakRSS <= 0 || r.after.rss <= 0 {
		t.Errorf("server figures not read: measured %v, after %+v", r.measured, r.after)
	}
	idle := measureIdle(ctx, t, startServer(ctx, t), 50)
	idle.log(t)
	if idle.before <= 0 || idle.after <= 0 || idle.counted < 50 {
		t.Errorf("idle: RSS before %d, after %d, /healthz clients %d; want RSS read and 50 clients", idle.before, idle.after, idle.counted)
	}
}

// checkNoLoss fails the test if any member missed a message, saw one out of
// order, or was cut off: the server promises every member every message.
func checkNoLoss(t *testing.T, r flowResult) {
	t.Helper()
	if len(r.joinDropped) > 0 {
		t.Errorf("the server cut off members while they joined: %s", formatDropped(r.joinDropped))
	}
	if r.delivered != r.expected || r.outOfOrder > 0 || len(r.dropped) > 0 {
		t.Errorf("lost %d of %d deliveries, %d out of order; cut off while sending: %s",
			r.expected-r.delivered, r.expected, r.outOfOrder, formatDropped(r.dropped))
	}
}

// checkOneOrder fails the test unless every member received the same want
// messages with strictly increasing ids.
func checkOneOrder(t *testing.T, members []*loadMember, want int) {
	t.Helper()
	ref := members[0].ids
	if len(ref) != want {
		t.Errorf("member 0 got %d messages, want %d", len(ref), want)
	}
	for i := 1; i < len(ref); i++ {
		if ref[i] <= ref[i-1] {
			t.Errorf("member 0: id %d after %d, want strictly increasing", ref[i], ref[i-1])
		}
	}
	for i, m := range members[1:] {
		if !slices.Equal(m.ids, ref) {
			t.Errorf("member %d got ids %v, member 0 got %v; want one order for all", i+1, m.ids, ref)
		}
	}
}

// sendFunc sends one sender's share of a workload and returns how many
// messages it sent. phase, in [0, 1), is the sender's place among all
// senders, for spreading them out in time.
type sendFunc func(ctx context.Context, m *loadMember, phase float64) int

// burstSend sends messages as fast as the connection takes them.
func burstSend(messages int) sendFunc {
	return func(ctx context.Context, m *loadMember, _ float64) int {
		for i := range messages {
			if m.say(ctx, "burst") != nil {
				return i
			}
		}
		return messages
	}
}

// steadySend sends rate messages a second for d, each carrying its send
// time (UnixNano) as its text so that receivers can time it. Senders start
// phase of an interval apart, so that the room hears an even stream rather
// than every sender at the same instant.
func steadySend(rate float64, d time.Duration) sendFunc {
	return func(ctx context.Context, m *loadMember, phase float64) int {
		interval := time.Duration(float64(time.Second) / rate)
		end := time.NewTimer(d)
		defer end.Stop()
		time.Sleep(time.Duration(phase * float64(interval)))
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-ctx.Done():
				return n
			case <-end.C:
				return n
			case <-tick.C:
			}
			if m.say(ctx, strconv.FormatInt(time.Now().UnixNano(), 10)) != nil {
				return n
			}
		}
	}
}

// sendAll runs send for every sender at once and returns the total sent.
func sendAll(ctx context.Context, senders []*loadMember, send sendFunc) int {
	var total atomic.Int64
	var wg sync.WaitGroup
	for i, m := range senders {
		wg.Go(func() { total.Add(int64(send(ctx, m, float64(i)/float64(len(senders))))) })
	}
	wg.Wait()
	return int(total.Load())
}

// flowSpec is one room of clients, the first senders of whom send.
type flowSpec struct {
	clients, senders int
	rooms            int  // rooms the clients are spread over; 0 means one
	keepIDs          bool // keep every member's ids, for order checks
}

// flowResult is what the members of one room received while some of them
// sent. A delivery is one chatMessage reaching one member, the sender too.
type flowResult struct {
	spec                flowSpec
	joinDropped         map[string]int // close reason → members cut off while joining
	live                int            // members still connected when sending began
	sent                int
	expected, delivered int64
	outOfOrder          int64
	dropped             map[string]int // close reason → members cut off while sending
	wall                time.Duration  // first send → last delivery
	before, after       procStats      // server figures around the sending
	measured            bool           // before and after were read
	plain               bool           // members joined without ?batch=1
	latencies           []time.Duration
	members             []*loadMember
}

// runFlow joins spec.clients members to a fresh room, waits for the join
// notices to settle, has the first spec.senders members still connected send
// at once, and waits for every delivery to the members still connected (or
// for deliveries to stop). Members cut off while joining are counted apart.
func runFlow(ctx context.Context, tb testing.TB, tg *loadTarget, spec flowSpec, send sendFunc) flowResult {
	tb.Helper()
	room := loadRoomName("flow")
	members := dialMembers(ctx, tb, tg, spec.clients, func(int) string { return room }, spec.keepIDs)
	waitJoined(ctx, tb, members)
	r := flowResult{spec: spec, joinDropped: droppedReasons(members), members: liveMembers(members)}
	r.live = len(r.members)
	if r.live < spec.senders {
		tb.Fatalf("only %d of %d members still connected after joining, fewer than %d senders; cut off: %s",
			r.live, spec.clients, spec.senders, formatDropped(r.joinDropped))
	}
	r.sendAndCount(ctx, tb, tg, r.members[:spec.senders], r.live, send)
	closeMembers(members)
	return r
}

// runRooms joins clients members to rooms of size each, waits for every
// room's join notices to settle, has the first member of each room send,
// and waits for every delivery. Nobody may be cut off while joining.
func runRooms(ctx context.Context, tb testing.TB, tg *loadTarget, clients, size int, send sendFunc) flowResult {
	tb.Helper()
	prefix := loadRoomName("rooms")
	members := dialMembers(ctx, tb, tg, clients, func(i int) string { return prefix + "-" + strconv.Itoa(i/size) }, false)
	var senders []*loadMember
	for room := range slices.Chunk(members, size) {
		waitJoined(ctx, tb, room)
		senders = append(senders, room[0])
	}
	r := flowResult{spec: flowSpec{clients: clients, senders: len(senders), rooms: len(senders)}, joinDropped: droppedReasons(members), members: liveMembers(members)}
	r.live = len(r.members)
	if r.live < clients {
		tb.Fatalf("%d of %d members cut off while joining: %s", clients-r.live, clients, formatDropped(r.joinDropped))
	}
	r.sendAndCount(ctx, tb, tg, senders, size, send)
	closeMembers(members)
	return r
}

// sendAndCount has senders send, each message reaching fanout members,
// reads the server's figures around it, waits for the deliveries, and
// records what arrived.
func (r *flowResult) sendAndCount(ctx context.Context, tb testing.TB, tg *loadTarget, senders []*loadMember, fanout int, send sendFunc) {
	tb.Helper()
	r.before, r.measured = tg.stats(tb)
	start := time.Now()
	r.sent = sendAll(ctx, senders, send)
	r.expected = int64(r.sent) * int64(fanout)
	waitDelivered(ctx, r.members, r.expected)
	r.after, _ = tg.stats(tb)
	r.dropped = droppedReasons(r.members)
	r.plain = tg.plain
	closeMembers(r.members)
	r.collect(start)
}

// liveMembers is the members whose connection has not ended.
func liveMembers(members []*loadMember) []*loadMember {
	return slices.DeleteFunc(slices.Clone(members), (*loadMember).isDone)
}

// collect sums what the stopped readers counted.
func (r *flowResult) collect(start time.Time) {
	var last int64
	for _, m := range r.members {
		r.delivered += m.chats.Load()
		r.outOfOrder += m.outOfOrder
		r.latencies = append(r.latencies, m.latencies...)
		last = max(last, m.last.Load())
	}
	if last > 0 {
		r.wall = time.Unix(0, last).Sub(start)
	}
	slices.Sort(r.latencies)
}

// droppedReasons counts the members whose connection ended before the
// workload closed it, by how it ended.
func droppedReasons(members []*loadMember) map[string]int {
	dropped := map[string]int{}
	for _, m := range members {
		if m.isDone() {
			dropped[closeReason(m.err)]++
		}
	}
	return dropped
}

// closeReason describes how a connection ended: the close frame's code and
// reason, or the error.
func closeReason(err error) string {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return fmt.Sprintf("%d %s", int(ce.Code), ce.Reason)
	}
	return err.Error()
}

// formatDropped prints dropped members by reason; "none" when there are none.
func formatDropped(dropped map[string]int) string {
	if len(dropped) == 0 {
		return "none"
	}
	var parts []string
	for reason, n := range dropped {
		parts = append(parts, fmt.Sprintf("%d (%s)", n, reason))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// loadRoomName is a room name no earlier run used, so that no history is
// replayed into the counts, even on a long-running server.
func loadRoomName(prefix string) string {
	return prefix + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

// logBurst prints what a burst delivered and what it cost the server.
func (r flowResult) logBurst(tb testing.TB, messages int) {
	tb.Helper()
	tb.Logf("burst: %d %s in one room; %d senders sent %d of %d messages at full speed; a delivery is one chatMessage reaching one client (senders read too)",
		r.spec.clients, r.clientKind(), r.spec.senders, r.sent, r.spec.senders*messages)
	r.logDeliveries(tb)
	tb.Logf("  wall %.3f s (first send to last delivery)", r.wall.Seconds())
	r.logServer(tb)
}

// clientKind says how the members joined.
func (r flowResult) clientKind() string {
	if r.plain {
		return "plain clients"
	}
	return "clients (?batch=1)"
}

// where says how the clients are spread over rooms.
func (spec flowSpec) where() string {
	if spec.rooms <= 1 {
		return "one room"
	}
	return fmt.Sprintf("%d rooms of %d", spec.rooms, spec.clients/spec.rooms)
}

// logSteady prints what a steady run delivered, how late, and at what cost.
func (r flowResult) logSteady(tb testing.TB, rate float64, d time.Duration) {
	tb.Helper()
	tb.Logf("steady: %d %s in %s; %d senders at %g msg/s each for %v sent %d messages; a delivery is one chatMessage reaching one client",
		r.spec.clients, r.clientKind(), r.spec.where(), r.spec.senders, rate, d, r.sent)
	r.logDeliveries(tb)
	if n := len(r.latencies); n > 0 {
		tb.Logf("  latency, send to receipt over %d deliveries: p50 %.2f ms, p99 %.2f ms, max %.2f ms",
			n, ms(percentile(r.latencies, 0.5)), ms(percentile(r.latencies, 0.99)), ms(r.latencies[n-1]))
	}
	r.logServer(tb)
}

// logDeliveries prints who was cut off and the delivery counts.
func (r flowResult) logDeliveries(tb testing.TB) {
	tb.Helper()
	tb.Logf("  clients dropped by the server while joining (%d dials at a time): %s; %d of %d still connected when sending began",
		*loadDials, formatDropped(r.joinDropped), r.live, r.spec.clients)
	tb.Logf("  expected %d deliveries (%d sent x %d connected), delivered %d, lost %d, out of order %d; dropped while sending: %s",
		r.expected, r.sent, r.live, r.delivered, r.expected-r.delivered, r.outOfOrder, formatDropped(r.dropped))
}

// logServer prints the server's CPU and memory over the sending window.
func (r flowResult) logServer(tb testing.TB) {
	tb.Helper()
	if !r.measured {
		tb.Logf("  server CPU and RSS: not measured (external server; the figures above are the clients')")
		return
	}
	cpu := r.after.cpu - r.before.cpu
	perCPU := "n/a (under one tick)"
	if cpu > 0 {
		perCPU = fmt.Sprintf("%.0f", float64(r.delivered)/cpu.Seconds())
	}
	tb.Logf("  server CPU %.2f s (utime+stime in 10 ms ticks): %s deliveries per server CPU-second", cpu.Seconds(), perCPU)
	tb.Logf("  server RSS %.1f MB, peak %.1f MB since start (VmRSS, VmHWM; 1 MB = 10^6 bytes)", mb(r.after.rss), mb(r.after.peakRSS))
}

// idleResult is the server's memory before and after holding idle connections.
type idleResult struct {
	conns, rooms  int
	counted       int   // clients /healthz reported with them open
	before, after int64 // server RSS in bytes; 0 when not visible
	serverPID     int
	clientRSS     int64 // this process's RSS with the connections open
}

// measureIdle opens n idle connections in rooms of at most idleRoomSize,
// waits until /healthz counts them and the server's RSS settles, and returns
// the server's RSS before and after.
func measureIdle(ctx context.Context, tb testing.TB, tg *loadTarget, n int) idleResult {
	tb.Helper()
	base := steadyClients(ctx, tb, tg)
	r := idleResult{conns: n, rooms: (n + idleRoomSize - 1) / idleRoomSize, serverPID: tg.pid}
	r.before = settledRSS(ctx, tb, tg)
	room := loadRoomName("idle")
	members := dialMembers(ctx, tb, tg, n, func(i int) string { return room + "-" + strconv.Itoa(i/idleRoomSize) }, false)
	r.counted = waitClients(ctx, tb, tg, base+n) - base
	r.after = settledRSS(ctx, tb, tg)
	if self, err := readProcStats(os.Getpid()); err == nil {
		r.clientRSS = self.rss
	}
	if d := droppedReasons(members); len(d) > 0 {
		tb.Errorf("idle connections dropped by the server: %s", formatDropped(d))
	}
	return r
}

// steadyClients is /healthz's client count once it has stopped changing:
// connections an earlier workload closed take a moment to leave the count.
func steadyClients(ctx context.Context, tb testing.TB, tg *loadTarget) int {
	tb.Helper()
	last, same := -1, 0
	for same < 3 {
		n, err := healthClients(ctx, tg.base)
		if err != nil {
			tb.Fatal(err)
		}
		if n == last {
			same++
		} else {
			last, same = n, 0
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("/healthz client count did not settle: %v", ctx.Err())
		case <-time.After(5 * joinPoll):
		}
	}
	return last
}

// waitClients polls /healthz until it counts at least want clients and
// returns its count.
func waitClients(ctx context.Context, tb testing.TB, tg *loadTarget, want int) int {
	tb.Helper()
	for {
		n, err := healthClients(ctx, tg.base)
		if err == nil && n >= want {
			return n
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("/healthz counts %d clients, want %d (last error: %v)", n, want, err)
		case <-time.After(joinPoll):
		}
	}
}

// settledRSS samples the server's RSS until two samples rssSettleInterval
// apart differ by less than 1%, and returns the last; 0 when not visible.
func settledRSS(ctx context.Context, tb testing.TB, tg *loadTarget) int64 {
	tb.Helper()
	s, ok := tg.stats(tb)
	if !ok {
		return 0
	}
	for range rssSettleTries {
		select {
		case <-ctx.Done():
			return s.rss
		case <-time.After(rssSettleInterval):
		}
		next, _ := tg.stats(tb)
		if d := next.rss - s.rss; d*100 < s.rss && -d*100 < s.rss {
			return next.rss
		}
		s = next
	}
	return s.rss
}

// perConn is the server's RSS growth per connection in bytes.
func (r idleResult) perConn() float64 {
	return float64(r.after-r.before) / float64(r.conns)
}

// log prints the idle measurement.
func (r idleResult) log(tb testing.TB) {
	tb.Helper()
	tb.Logf("idle: %d idle connections in %d room(s) of at most %d; /healthz counts %d of them",
		r.conns, r.rooms, idleRoomSize, r.counted)
	if r.serverPID == 0 {
		tb.Logf("  server RSS: not measured (external server)")
	} else {
		tb.Logf("  server (pid %d) RSS %.1f MB before, %.1f MB after, settled: %.1f KB per connection (1 KB = 1000 bytes, 1 MB = 10^6)",
			r.serverPID, mb(r.before), mb(r.after), r.perConn()/1000)
	}
	tb.Logf("  the clients live in this process (pid %d, RSS %.1f MB), not in the server", os.Getpid(), mb(r.clientRSS))
}

// timeStartup starts one server and returns the time from exec to the first
// frame of a WebSocket on it, which must be welcome; the server is killed.
func timeStartup(ctx context.Context) (time.Duration, error) {
	port, err := freePort()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	p, err := startProcess(port)
	if err != nil {
		return 0, err
	}
	first, err := dialUntilUp(ctx, "ws://127.0.0.1:"+port+"/ws/startup?username=probe", p)
	elapsed := time.Since(start)
	p.stop()
	if err == nil && !bytes.Contains(first, []byte(`"type":"welcome"`)) {
		err = fmt.Errorf("first frame %q is not welcome", first)
	}
	if err != nil {
		return 0, fmt.Errorf("startup: %v; the server printed:\n%s", err, p.out.String())
	}
	return elapsed, nil
}

// dialUntilUp dials url until the handshake succeeds and returns the first
// frame. A refused connection fails at once, so it retries almost at once.
func dialUntilUp(ctx context.Context, url string, p *serverProcess) ([]byte, error) {
	for {
		conn, _, err := websocket.Dial(ctx, url, nil)
		if err == nil {
			defer conn.CloseNow()
			_, data, err := conn.Read(ctx)
			return data, err
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("the server exited (last dial: %v)", err)
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last dial: %v)", ctx.Err(), err)
		case <-time.After(startupRetry):
		}
	}
}

// percentile is the nearest-rank q-quantile of sorted, which is not empty.
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// mb is n bytes in megabytes of 10^6 bytes.
func mb(n int64) float64 { return float64(n) / 1e6 }
