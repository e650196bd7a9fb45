//go:build linux

package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// This file holds the workloads (burst, steady, rooms, idle connections
// and startup), the checks that no message was lost or reordered, and the
// figures each reports. The command line is cmd/hallway-load.

// loadBurst runs the burst or plainburst workload, and fails on any loss:
// every member is promised every message. Then it measures its floor.
func loadBurst(ctx context.Context, t TB, name string) {
	tg := loadTargetFor(ctx, t)
	tg.Plain = name == "plainburst"
	spec := flowSpec{clients: opts.Clients, senders: opts.Senders, keepIDs: opts.CheckOrder}
	r := runFlow(ctx, t, tg, spec, burstSend(opts.Messages))
	r.logBurst(t, opts.Messages)
	checkNoLoss(t, r)
	compareToFloor(ctx, t, name, r.perCPU())
	if opts.CheckOrder {
		checkOneOrder(t, r.members, opts.Senders*opts.Messages)
	}
}

// loadSteady runs the steady or plainsteady workload, and fails on any
// loss. Then it measures its floor.
func loadSteady(ctx context.Context, t TB, name string) {
	tg := loadTargetFor(ctx, t)
	tg.Plain = name == "plainsteady"
	spec := flowSpec{clients: opts.Clients, senders: opts.Senders}
	r := runFlow(ctx, t, tg, spec, steadySend(opts.Rate, opts.Duration))
	r.logSteady(t, opts.Rate, opts.Duration)
	checkNoLoss(t, r)
	compareToFloor(ctx, t, name, r.perCPU())
}

// loadRooms runs the many-small-rooms workload with plain members, and
// fails on any loss. Then it measures its floor.
func loadRooms(ctx context.Context, t TB) {
	tg := loadTargetFor(ctx, t)
	tg.Plain = true
	r := runRooms(ctx, t, tg, opts.RoomsClients, opts.RoomSize, steadySend(opts.RoomRate, opts.Duration))
	r.logSteady(t, opts.RoomRate, opts.Duration)
	checkNoLoss(t, r)
	compareToFloor(ctx, t, "rooms", r.perCPU())
}

// loadIdleConns runs the idle workload.
func loadIdleConns(ctx context.Context, t TB) {
	tg := loadTargetFor(ctx, t)
	MeasureIdle(ctx, t, tg, opts.Idle).log(t)
}

// loadStartup times server starts; it needs to start the server itself.
func loadStartup(ctx context.Context, t TB) {
	if opts.URL != "" {
		t.Skip("startup starts the server itself; it does not run with -url")
	}
	times := make([]time.Duration, 0, opts.Starts)
	for range opts.Starts {
		d, err := timeStartup(ctx)
		if err != nil {
			t.Fatal(err)
		}
		times = append(times, d)
	}
	slices.Sort(times)
	record(t, "starts", len(times))
	record(t, "startup_ms", map[string]float64{"min": ms(times[0]), "median": ms(percentile(times, 0.5)), "max": ms(times[len(times)-1])})
	t.Logf("startup: %d starts, exec to first frame (welcome) on a WebSocket: min %.1f ms, median %.1f ms, max %.1f ms",
		len(times), ms(times[0]), ms(percentile(times, 0.5)), ms(times[len(times)-1]))
}

// checkNoLoss fails the test if any member missed a message, saw one out of
// order, or was cut off: the server promises every member every message.
func checkNoLoss(t TB, r flowResult) {
	t.Helper()
	if len(r.joinDropped) > 0 {
		t.Errorf("the server cut off members while they joined: %s", FormatDropped(r.joinDropped))
	}
	if r.delivered != r.expected || r.outOfOrder > 0 || len(r.dropped) > 0 {
		t.Errorf("lost %d of %d deliveries, %d out of order; cut off while sending: %s",
			r.expected-r.delivered, r.expected, r.outOfOrder, FormatDropped(r.dropped))
	}
}

// checkOneOrder fails the test unless every member received the same want
// messages with strictly increasing ids.
func checkOneOrder(t TB, members []*Member, want int) {
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
type sendFunc func(ctx context.Context, m *Member, phase float64) int

// burstSend sends messages as fast as the connection takes them.
func burstSend(messages int) sendFunc {
	return func(ctx context.Context, m *Member, _ float64) int {
		for i := range messages {
			if m.Say(ctx, "burst") != nil {
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
	return func(ctx context.Context, m *Member, phase float64) int {
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
			if m.Say(ctx, strconv.FormatInt(time.Now().UnixNano(), 10)) != nil {
				return n
			}
		}
	}
}

// sendAll runs send for every sender at once and returns the total sent.
func sendAll(ctx context.Context, senders []*Member, send sendFunc) int {
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
	before, after       ProcStats      // server figures around the sending
	measured            bool           // before and after were read
	plain               bool           // members joined without ?batch=1
	latencies           []time.Duration
	members             []*Member
}

// runFlow joins spec.clients members to a fresh room, waits for the join
// notices to settle, has the first spec.senders members still connected send
// at once, and waits for every delivery to the members still connected (or
// for deliveries to stop). Members cut off while joining are counted apart.
func runFlow(ctx context.Context, tb TB, tg *Target, spec flowSpec, send sendFunc) flowResult {
	tb.Helper()
	room := loadRoomName("flow")
	members := DialMembers(ctx, tb, tg, spec.clients, func(int) string { return room }, spec.keepIDs)
	WaitJoined(ctx, tb, members)
	r := flowResult{spec: spec, joinDropped: DroppedReasons(members), members: liveMembers(members)}
	r.live = len(r.members)
	if r.live < spec.senders {
		tb.Fatalf("only %d of %d members still connected after joining, fewer than %d senders; cut off: %s",
			r.live, spec.clients, spec.senders, FormatDropped(r.joinDropped))
	}
	r.sendAndCount(ctx, tb, tg, r.members[:spec.senders], r.live, send)
	closeMembers(members)
	return r
}

// runRooms joins clients members to rooms of size each, waits for every
// room's join notices to settle, has the first member of each room send,
// and waits for every delivery. Nobody may be cut off while joining.
func runRooms(ctx context.Context, tb TB, tg *Target, clients, size int, send sendFunc) flowResult {
	tb.Helper()
	prefix := loadRoomName("rooms")
	members := DialMembers(ctx, tb, tg, clients, func(i int) string { return prefix + "-" + strconv.Itoa(i/size) }, false)
	var senders []*Member
	for room := range slices.Chunk(members, size) {
		WaitJoined(ctx, tb, room)
		senders = append(senders, room[0])
	}
	r := flowResult{spec: flowSpec{clients: clients, senders: len(senders), rooms: len(senders)}, joinDropped: DroppedReasons(members), members: liveMembers(members)}
	r.live = len(r.members)
	if r.live < clients {
		tb.Fatalf("%d of %d members cut off while joining: %s", clients-r.live, clients, FormatDropped(r.joinDropped))
	}
	r.sendAndCount(ctx, tb, tg, senders, size, send)
	closeMembers(members)
	return r
}

// sendAndCount has senders send, each message reaching fanout members,
// reads the server's figures around it, waits for the deliveries, and
// records what arrived.
func (r *flowResult) sendAndCount(ctx context.Context, tb TB, tg *Target, senders []*Member, fanout int, send sendFunc) {
	tb.Helper()
	r.before, r.measured = tg.stats(tb)
	start := time.Now()
	r.sent = sendAll(ctx, senders, send)
	r.expected = int64(r.sent) * int64(fanout)
	WaitDelivered(ctx, r.members, r.expected)
	r.after, _ = tg.stats(tb)
	r.dropped = DroppedReasons(r.members)
	r.plain = tg.Plain
	closeMembers(r.members)
	r.collect(start)
}

// liveMembers is the members whose connection has not ended.
func liveMembers(members []*Member) []*Member {
	return slices.DeleteFunc(slices.Clone(members), (*Member).Stopped)
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

// DroppedReasons counts the members whose connection ended before the
// workload closed it, by how it ended.
func DroppedReasons(members []*Member) map[string]int {
	dropped := map[string]int{}
	for _, m := range members {
		if m.Stopped() {
			dropped[CloseReason(m.err)]++
		}
	}
	return dropped
}

// CloseReason describes how a connection ended: the close frame's code and
// reason, or the error.
func CloseReason(err error) string {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return fmt.Sprintf("%d %s", int(ce.Code), ce.Reason)
	}
	return err.Error()
}

// FormatDropped prints dropped members by reason; "none" when there are none.
func FormatDropped(dropped map[string]int) string {
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
func (r flowResult) logBurst(tb TB, messages int) {
	tb.Helper()
	tb.Logf("burst: %d %s in one room; %d senders sent %d of %d messages at full speed; a delivery is one chatMessage reaching one client (senders read too)",
		r.spec.clients, r.clientKind(), r.spec.senders, r.sent, r.spec.senders*messages)
	r.logDeliveries(tb)
	record(tb, "wall_s", r.wall.Seconds())
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
func (r flowResult) logSteady(tb TB, rate float64, d time.Duration) {
	tb.Helper()
	tb.Logf("steady: %d %s in %s; %d senders at %g msg/s each for %v sent %d messages; a delivery is one chatMessage reaching one client",
		r.spec.clients, r.clientKind(), r.spec.where(), r.spec.senders, rate, d, r.sent)
	r.logDeliveries(tb)
	if n := len(r.latencies); n > 0 {
		record(tb, "latency_ms", map[string]float64{
			"p50": ms(percentile(r.latencies, 0.5)), "p99": ms(percentile(r.latencies, 0.99)), "max": ms(r.latencies[n-1])})
		tb.Logf("  latency, send to receipt over %d deliveries: p50 %.2f ms, p99 %.2f ms, max %.2f ms",
			n, ms(percentile(r.latencies, 0.5)), ms(percentile(r.latencies, 0.99)), ms(r.latencies[n-1]))
	}
	r.logServer(tb)
}

// logDeliveries prints who was cut off and the delivery counts.
func (r flowResult) logDeliveries(tb TB) {
	tb.Helper()
	for name, v := range map[string]any{"clients": r.spec.clients, "senders": r.spec.senders, "rooms": max(r.spec.rooms, 1),
		"plain": r.plain, "connected": r.live, "sent": r.sent, "expected": r.expected, "delivered": r.delivered,
		"out_of_order": r.outOfOrder, "dropped_joining": r.joinDropped, "dropped_sending": r.dropped} {
		record(tb, name, v)
	}
	tb.Logf("  clients dropped by the server while joining (%d dials at a time): %s; %d of %d still connected when sending began",
		opts.Dials, FormatDropped(r.joinDropped), r.live, r.spec.clients)
	tb.Logf("  expected %d deliveries (%d sent x %d connected), delivered %d, lost %d, out of order %d; dropped while sending: %s",
		r.expected, r.sent, r.live, r.delivered, r.expected-r.delivered, r.outOfOrder, FormatDropped(r.dropped))
}

// perCPU is deliveries per server CPU-second; 0 when not measured or
// under one tick.
func (r flowResult) perCPU() float64 {
	if cpu := r.after.CPU - r.before.CPU; r.measured && cpu > 0 {
		return float64(r.delivered) / cpu.Seconds()
	}
	return 0
}

// logServer prints the server's CPU and memory over the sending window.
func (r flowResult) logServer(tb TB) {
	tb.Helper()
	if !r.measured {
		tb.Logf("  server CPU and RSS: not measured (external server; the figures above are the clients')")
		return
	}
	cpu := r.after.CPU - r.before.CPU
	perCPU := "n/a (under one tick)"
	if cpu > 0 {
		perCPU = fmt.Sprintf("%.0f", float64(r.delivered)/cpu.Seconds())
	}
	record(tb, "server_cpu_s", cpu.Seconds())
	if cpu > 0 {
		record(tb, "deliveries_per_cpu_s", float64(r.delivered)/cpu.Seconds())
	}
	record(tb, "server_rss_bytes", r.after.RSS)
	record(tb, "server_peak_rss_bytes", r.after.PeakRSS)
	tb.Logf("  server CPU %.2f s (utime+stime in 10 ms ticks): %s deliveries per server CPU-second", cpu.Seconds(), perCPU)
	tb.Logf("  server RSS %.1f MB, peak %.1f MB since start (VmRSS, VmHWM; 1 MB = 10^6 bytes)", mb(r.after.RSS), mb(r.after.PeakRSS))
}

// idleResult is the server's memory before and after holding idle connections.
type idleResult struct {
	conns, rooms  int
	counted       int   // clients /healthz reported with them open
	before, after int64 // server RSS in bytes; 0 when not visible
	serverPID     int
	clientRSS     int64 // this process's RSS with the connections open
}

// MeasureIdle opens n idle connections in rooms of at most idleRoomSize,
// waits until /healthz counts them and the server's RSS settles, and returns
// the server's RSS before and after.
func MeasureIdle(ctx context.Context, tb TB, tg *Target, n int) idleResult {
	tb.Helper()
	base := steadyClients(ctx, tb, tg)
	r := idleResult{conns: n, rooms: (n + idleRoomSize - 1) / idleRoomSize, serverPID: tg.PID}
	r.before = settledRSS(ctx, tb, tg)
	room := loadRoomName("idle")
	members := DialMembers(ctx, tb, tg, n, func(i int) string { return room + "-" + strconv.Itoa(i/idleRoomSize) }, false)
	r.counted = waitClients(ctx, tb, tg, base+n) - base
	r.after = settledRSS(ctx, tb, tg)
	if self, err := ReadProcStats(os.Getpid()); err == nil {
		r.clientRSS = self.RSS
	}
	if d := DroppedReasons(members); len(d) > 0 {
		tb.Errorf("idle connections dropped by the server: %s", FormatDropped(d))
	}
	return r
}

// steadyClients is /healthz's client count once it has stopped changing:
// connections an earlier workload closed take a moment to leave the count.
func steadyClients(ctx context.Context, tb TB, tg *Target) int {
	tb.Helper()
	last, same := -1, 0
	for same < 3 {
		n, err := HealthClients(ctx, tg.Base)
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
func waitClients(ctx context.Context, tb TB, tg *Target, want int) int {
	tb.Helper()
	for {
		n, err := HealthClients(ctx, tg.Base)
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
func settledRSS(ctx context.Context, tb TB, tg *Target) int64 {
	tb.Helper()
	s, ok := tg.stats(tb)
	if !ok {
		return 0
	}
	for range rssSettleTries {
		select {
		case <-ctx.Done():
			return s.RSS
		case <-time.After(rssSettleInterval):
		}
		next, _ := tg.stats(tb)
		if d := next.RSS - s.RSS; d*100 < s.RSS && -d*100 < s.RSS {
			return next.RSS
		}
		s = next
	}
	return s.RSS
}

// PerConn is the server's RSS growth per connection in bytes.
func (r idleResult) PerConn() float64 {
	return float64(r.after-r.before) / float64(r.conns)
}

// log prints the idle measurement.
func (r idleResult) log(tb TB) {
	tb.Helper()
	for name, v := range map[string]any{"conns": r.conns, "counted": r.counted, "server_rss_before_bytes": r.before, "server_rss_after_bytes": r.after} {
		record(tb, name, v)
	}
	if r.serverPID != 0 {
		record(tb, "bytes_per_conn", r.PerConn())
	}
	tb.Logf("idle: %d idle connections in %d room(s) of at most %d; /healthz counts %d of them",
		r.conns, r.rooms, idleRoomSize, r.counted)
	if r.serverPID == 0 {
		tb.Logf("  server RSS: not measured (external server)")
	} else {
		tb.Logf("  server (pid %d) RSS %.1f MB before, %.1f MB after, settled: %.1f KB per connection (1 KB = 1000 bytes, 1 MB = 10^6)",
			r.serverPID, mb(r.before), mb(r.after), r.PerConn()/1000)
	}
	tb.Logf("  the clients live in this process (pid %d, RSS %.1f MB), not in the server", os.Getpid(), mb(r.clientRSS))
}

// timeStartup starts one server and returns the time from exec to the first
// frame of a WebSocket on it, which must be welcome; the server is killed.
func timeStartup(ctx context.Context) (time.Duration, error) {
	port, err := FreePort()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	p, err := startServerProcess(port)
	if err != nil {
		return 0, err
	}
	first, err := dialUntilUp(ctx, "ws://127.0.0.1:"+port+"/ws/startup?username=probe", p)
	elapsed := time.Since(start)
	p.Stop()
	if err == nil && !bytes.Contains(first, []byte(`"type":"welcome"`)) {
		err = fmt.Errorf("first frame %q is not welcome", first)
	}
	if err != nil {
		return 0, fmt.Errorf("startup: %v; the server printed:\n%s", err, p.Out.String())
	}
	return elapsed, nil
}

// dialUntilUp dials url until the handshake succeeds and returns the first
// frame. A refused connection fails at once, so it retries almost at once.
func dialUntilUp(ctx context.Context, url string, p *Process) ([]byte, error) {
	for {
		conn, _, err := websocket.Dial(ctx, url, nil)
		if err == nil {
			defer conn.CloseNow()
			_, data, err := conn.Read(ctx)
			return data, err
		}
		select {
		case <-p.Exited:
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
