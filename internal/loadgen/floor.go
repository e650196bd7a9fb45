//go:build linux

package loadgen

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The floor is what the machine itself charges for a workload's deliveries:
// a process pinned like the server writes a frame of a chat message's size to
// plain TCP connections over loopback, one write(2) per delivery, paced as
// the workload paces its senders. No WebSocket, no JSON, no rooms, no
// queues. A server's deliveries per CPU-second divided by the floor's, both
// measured in one sitting, says how much of its cost is its own.

// FloorEnv, set in the environment of the load tool's own binary, makes it
// serve as the floor instead of running workloads (see ServeFloor). Its
// value is the plan, as JSON.
const FloorEnv = "HALLWAY_LOAD_FLOOR"

// floorFrameBytes is the size of a paced workload's chatMessage frame on the
// wire, WebSocket header included: {"type":"chatMessage","payload":{"id":…,
// "username":"u123","message":"<send time>","ts":…}}.
const floorFrameBytes = 112

// floorPlan is what the floor process does: groups of Group connections
// (a room each), in each of which Streams senders write a frame to every
// connection of the group, Rate times a second for Duration, or Messages
// times as fast as the writes go when Rate is 0.
type floorPlan struct {
	Conns    int           `json:"conns"`
	Group    int           `json:"group"`
	Streams  int           `json:"streams"`
	Rate     float64       `json:"rate"`
	Messages int           `json:"messages"`
	Duration time.Duration `json:"duration"`
	Frame    int           `json:"frame"`
	// Relay makes the floor a relay (relayfloor.go): each stream's frames
	// come from a sender of the load tool over TCP, and the floor reads
	// each one before writing it to the group.
	Relay bool `json:"relay"`
}

// floorPlanFor is the floor of the workload called name with the options in
// force, and false for a workload that has none.
func floorPlanFor(name string) (floorPlan, bool) {
	p := floorPlan{Frame: floorFrameBytes, Duration: opts.Duration}
	switch name {
	case "burst", "plainburst":
		p.Conns, p.Group, p.Streams, p.Messages = opts.Clients, opts.Clients, opts.Senders, opts.Messages
	case "steady", "plainsteady":
		p.Conns, p.Group, p.Streams, p.Rate = opts.Clients, opts.Clients, opts.Senders, opts.Rate
	case "rooms":
		p.Conns, p.Group, p.Streams, p.Rate = opts.RoomsClients, opts.RoomSize, 1, opts.RoomRate
	default:
		return p, false
	}
	return p, true
}

// ServeFloor runs the floor process when FloorEnv is set and reports
// whether it did; a command that may serve as the floor calls it first.
// The process listens on a loopback port it prints, accepts the plan's
// connections, waits for a line on stdin, sends, prints how many messages it
// sent, and then waits for stdin to close.
func ServeFloor() bool {
	spec := os.Getenv(FloorEnv)
	if spec == "" {
		return false
	}
	if err := serveFloor(spec); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
	// Stay, for the tool to read this process's CPU, until it closes
	// stdin or kills it; a bare select{} would end in the runtime's
	// deadlock panic once every connection is idle.
	io.Copy(io.Discard, os.Stdin)
	return true
}

// serveFloor is ServeFloor's work.
func serveFloor(spec string) error {
	var p floorPlan
	if err := json.Unmarshal([]byte(spec), &p); err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	streams := p.Streams * (p.Conns / p.Group)
	var rl net.Listener
	if p.Relay {
		if rl, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return err
		}
		fmt.Printf("relay %s\n", rl.Addr()) // before "listening", which the tool waits for
	}
	fmt.Printf("listening %s\n", l.Addr())
	conns := make([]net.Conn, p.Conns)
	for i := range conns {
		if conns[i], err = l.Accept(); err != nil {
			return err
		}
	}
	l.Close()
	var inbound []net.Conn
	if p.Relay {
		if inbound, err = acceptSenders(rl, streams); err != nil {
			return err
		}
	}
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return err
	}
	var sent atomic.Int64
	var wg sync.WaitGroup
	for i, group := 0, slices.Collect(slices.Chunk(conns, p.Group)); i < streams; i++ {
		if p.Relay {
			wg.Go(func() { sent.Add(int64(relayStream(p, inbound[i], group[i/p.Streams]))) })
			continue
		}
		wg.Go(func() { sent.Add(int64(floorStream(p, group[i/p.Streams], float64(i)/float64(streams)))) })
	}
	wg.Wait()
	fmt.Printf("sent %d\n", sent.Load())
	return nil
}

// floorStream is one sender: it writes a frame stamped with its send time
// to every connection of group, one write(2) each, and returns how many
// messages it sent.
func floorStream(p floorPlan, group []net.Conn, phase float64) int {
	frame := make([]byte, p.Frame)
	return pace(p, phase, func() bool {
		binary.LittleEndian.PutUint64(frame, uint64(time.Now().UnixNano()))
		for _, c := range group {
			if _, err := c.Write(frame); err != nil {
				return false
			}
		}
		return true
	})
}

// pace calls send as plan p says, until it fails: Rate times a second for
// Duration, starting phase of an interval late so that streams spread over
// the interval as a workload's senders do, or Messages times at once when
// Rate is 0. It returns how many sends succeeded.
func pace(p floorPlan, phase float64, send func() bool) int {
	if p.Rate == 0 {
		for n := range p.Messages {
			if !send() {
				return n
			}
		}
		return p.Messages
	}
	interval := time.Duration(float64(time.Second) / p.Rate)
	end := time.Now().Add(p.Duration)
	time.Sleep(time.Duration(phase * float64(interval)))
	tick := time.NewTicker(interval)
	defer tick.Stop()
	n := 0
	for now := range tick.C {
		if now.After(end) || !send() {
			break
		}
		n++
	}
	return n
}

// floorResult is what the floor's connections received and what it cost.
type floorResult struct {
	plan          floorPlan
	sent          int
	delivered     int64
	before, after ProcStats
	latencies     []time.Duration
}

// perCPU is deliveries per CPU-second of the floor process; 0 under a tick.
func (r floorResult) perCPU() float64 {
	if cpu := r.after.CPU - r.before.CPU; cpu > 0 {
		return float64(r.delivered) / cpu.Seconds()
	}
	return 0
}

// runFloor starts the floor process for plan, pinned as servers are,
// connects its clients, lets it send, and waits for every delivery.
func runFloor(ctx context.Context, tb TB, plan floorPlan) floorResult {
	tb.Helper()
	spec, _ := json.Marshal(plan)
	cmd := pinnedCommand(opts.FloorExe)
	cmd.Env = append(os.Environ(), FloorEnv+"="+string(spec))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	p, err := StartProcess(cmd)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Stop)
	addr := waitFloorLine(ctx, tb, p, "listening ")
	readers := dialFloor(ctx, tb, addr, plan)
	defer readers.close()
	var senders *relaySenders
	if plan.Relay {
		senders = dialRelay(ctx, tb, waitFloorLine(ctx, tb, p, "relay "), plan)
		defer senders.close()
	}
	r := floorResult{plan: plan}
	floor := &Target{PID: p.Cmd.Process.Pid}
	r.before, _ = floor.stats(tb)
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		tb.Fatal(err)
	}
	if senders != nil {
		senders.send(plan)
	}
	r.sent, _ = strconv.Atoi(waitFloorLine(ctx, tb, p, "sent "))
	r.delivered = readers.wait(ctx, int64(r.sent)*int64(plan.Group))
	r.after, _ = floor.stats(tb)
	readers.close()
	r.latencies = readers.latencies()
	return r
}

// waitFloorLine waits for the floor process to print a line starting with
// prefix and returns the rest of it.
func waitFloorLine(ctx context.Context, tb TB, p *Process, prefix string) string {
	tb.Helper()
	for {
		for line := range strings.Lines(p.Out.String()) {
			if rest, ok := strings.CutPrefix(line, prefix); ok && strings.HasSuffix(rest, "\n") {
				return strings.TrimSpace(rest)
			}
		}
		select {
		case <-p.Exited:
			tb.Fatalf("the floor process exited; it printed:\n%s", p.Out.String())
		case <-ctx.Done():
			tb.Fatalf("waiting for the floor's %q: %v; it printed:\n%s", prefix, ctx.Err(), p.Out.String())
		case <-time.After(joinPoll):
		}
	}
}

// floorReaders are the floor's clients: a goroutine per connection that
// reads whole frames and counts them.
type floorReaders struct {
	conns     []net.Conn
	wg        sync.WaitGroup
	frames    atomic.Int64
	mu        sync.Mutex
	lat       []time.Duration // paced frames' send-to-receipt times, once closed
	closeOnce sync.Once
}

// dialFloor connects plan.Conns readers to addr.
func dialFloor(ctx context.Context, tb TB, addr string, plan floorPlan) *floorReaders {
	tb.Helper()
	fr := &floorReaders{}
	var d net.Dialer
	for range plan.Conns {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			fr.close()
			tb.Fatalf("dial the floor: %v", err)
		}
		fr.conns = append(fr.conns, c)
		fr.wg.Go(func() { fr.read(c, plan) })
	}
	return fr
}

// read counts c's frames until it closes, timing paced ones.
func (fr *floorReaders) read(c net.Conn, plan floorPlan) {
	rd := bufio.NewReaderSize(c, 16<<10)
	frame := make([]byte, plan.Frame)
	var lat []time.Duration
	for {
		if _, err := io.ReadFull(rd, frame); err != nil {
			break
		}
		if plan.Rate > 0 {
			lat = append(lat, time.Since(time.Unix(0, int64(binary.LittleEndian.Uint64(frame)))))
		}
		fr.frames.Add(1)
	}
	fr.mu.Lock()
	fr.lat = append(fr.lat, lat...)
	fr.mu.Unlock()
}

// wait waits until want frames arrived, until none has for settleQuiet, or
// ctx ends, and returns how many arrived.
func (fr *floorReaders) wait(ctx context.Context, want int64) int64 {
	return waitCount(ctx, want, fr.frames.Load, func() bool { return false })
}

// close closes every connection and waits for the readers.
func (fr *floorReaders) close() {
	fr.closeOnce.Do(func() {
		for _, c := range fr.conns {
			c.Close()
		}
		fr.wg.Wait()
	})
}

// latencies are the paced frames' send-to-receipt times, sorted; read
// after close.
func (fr *floorReaders) latencies() []time.Duration {
	slices.Sort(fr.lat)
	return fr.lat
}

// compareToFloor runs the floor of the workload called name and reports the
// workload's deliveries per server CPU-second, perCPU, as a ratio to it;
// then, with RelayFloor, the same for the relay floor.
func compareToFloor(ctx context.Context, tb TB, name string, perCPU float64) {
	tb.Helper()
	plan, ok := floorPlanFor(name)
	if !ok || opts.FloorExe == "" {
		return
	}
	compareTo(ctx, tb, name, perCPU, plan, "floor", "one write(2) each")
	if opts.RelayFloor {
		plan.Relay = true
		compareTo(ctx, tb, name, perCPU, plan, "relay_floor", "each read from a sender's TCP connection, then one write(2) each")
	}
}

// compareTo runs the floor of plan, records its figures under the prefix
// kind, and logs the workload's ratio to it.
func compareTo(ctx context.Context, tb TB, name string, perCPU float64, plan floorPlan, kind, how string) {
	tb.Helper()
	f := runFloor(ctx, tb, plan)
	label := strings.ReplaceAll(kind, "_", " ")
	if f.delivered != int64(f.sent)*int64(plan.Group) {
		tb.Errorf("%s: delivered %d of %d frames", label, f.delivered, int64(f.sent)*int64(plan.Group))
	}
	floor := f.perCPU()
	record(tb, kind+"_expected", int64(f.sent)*int64(plan.Group))
	record(tb, kind+"_delivered", f.delivered)
	perCPUText := "n/a (under one tick)"
	if floor > 0 {
		record(tb, kind+"_deliveries_per_cpu_s", floor)
		perCPUText = fmt.Sprintf("%.0f", floor)
	}
	line := fmt.Sprintf("  %s (%d-byte frames, %s, to %d plain TCP connections in groups of %d, paced alike): %d deliveries, CPU %.2f s: %s deliveries per CPU-second",
		label, plan.Frame, how, plan.Conns, plan.Group, f.delivered, (f.after.CPU - f.before.CPU).Seconds(), perCPUText)
	if n := len(f.latencies); n > 0 {
		record(tb, kind+"_latency_ms", map[string]float64{"p50": ms(percentile(f.latencies, 0.5)), "p99": ms(percentile(f.latencies, 0.99))})
		line += fmt.Sprintf("; latency p50 %.2f ms, p99 %.2f ms", ms(percentile(f.latencies, 0.5)), ms(percentile(f.latencies, 0.99)))
	}
	tb.Logf("%s", line)
	if floor > 0 && perCPU > 0 {
		record(tb, "ratio_to_"+kind, perCPU/floor)
		tb.Logf("  %s at %.2fx the %s in deliveries per CPU-second", name, perCPU/floor, label)
	}
}
