//go:build linux

package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// This file holds the load clients and the server they load: starting the
// server as a pinned process, reading its CPU and memory from /proc, and
// dialling members that count what they receive. The workloads are in
// workloads.go, the floor in floor.go.

// Target is the server under load: a process the tool started, or the
// server at -url, whose process it cannot see.
type Target struct {
	Base  string // http://host:port
	PID   int    // 0 when the process is not ours to read
	Plain bool   // members join without ?batch=1, as third-party clients do
}

// wsURL is the address a member named username uses to join room.
func (tg *Target) wsURL(room, username string) string {
	u := "ws" + strings.TrimPrefix(tg.Base, "http") + "/ws/" + room + "?username=" + username
	if !tg.Plain {
		u += "&batch=1"
	}
	return u
}

// stats reads the server process's figures; false when it is not visible.
func (tg *Target) stats(tb TB) (ProcStats, bool) {
	tb.Helper()
	if tg.PID == 0 {
		return ProcStats{}, false
	}
	s, err := ReadProcStats(tg.PID)
	if err != nil {
		tb.Fatalf("read server stats: %v", err)
	}
	return s, true
}

// loadTargetFor is -url, or else a fresh server process.
func loadTargetFor(ctx context.Context, tb TB) *Target {
	if opts.URL != "" {
		return &Target{Base: strings.TrimSuffix(opts.URL, "/")}
	}
	return StartServer(ctx, tb)
}

// StartServer starts a server process on a free loopback port, waits until
// its /healthz answers, and kills it when tb's run ends.
func StartServer(ctx context.Context, tb TB) *Target {
	tb.Helper()
	port, err := FreePort()
	if err != nil {
		tb.Fatal(err)
	}
	p, err := startServerProcess(port)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Stop)
	tg := &Target{Base: "http://127.0.0.1:" + port, PID: p.Cmd.Process.Pid}
	if err := WaitHealthy(ctx, tg.Base, p); err != nil {
		p.Stop()
		tb.Fatalf("server did not start: %v; it printed:\n%s", err, p.Out.String())
	}
	return tg
}

// Process is a started server and what it printed.
type Process struct {
	Cmd    *exec.Cmd
	Out    SyncBuffer    // what it printed; readable while it runs
	Exited chan struct{} // closed when the process has exited
}

// startServerProcess starts a server listening on port.
func startServerProcess(port string) (*Process, error) {
	return StartProcess(serverCommand(port))
}

// StartProcess starts a server process and collects what it prints.
func StartProcess(cmd *exec.Cmd) (*Process, error) {
	p := &Process{Cmd: cmd, Exited: make(chan struct{})}
	p.Cmd.Stdout, p.Cmd.Stderr = &p.Out, &p.Out
	if err := p.Cmd.Start(); err != nil {
		return nil, fmt.Errorf("start server: %w", err)
	}
	go func() {
		p.Cmd.Wait()
		close(p.Exited)
	}()
	return p, nil
}

// Stop kills the process and waits for it. A load server needs no graceful
// shutdown, and waiting for one would add seconds to every run.
func (p *Process) Stop() {
	p.Cmd.Process.Kill()
	<-p.Exited
}

// serverCommand runs Options.Server on port with flood control off, pinned
// as serverPinning decided. Everything else comes from the inherited
// environment and Options.ServerEnv.
func serverCommand(port string) *exec.Cmd {
	// Every member dials from 127.0.0.1: per-IP limits would refuse them.
	env := append(os.Environ(), "PORT="+port, "MESSAGE_RATE=0", "MAX_CONNS_PER_IP=0", "JOIN_RATE=0", "ROOM_CREATE_RATE=0")
	env = append(env, opts.ServerEnv...)
	cmd := pinnedCommand(opts.Server)
	cmd.Env = env
	return cmd
}

// pinnedCommand runs bin pinned as serverPinning decided, so that a server
// and the floor it is compared with run on the same core.
func pinnedCommand(bin string) *exec.Cmd {
	argv, _ := serverPinning()
	argv = append(slices.Clone(argv), bin)
	return exec.Command(argv[0], argv[1:]...)
}

// serverPinning decides once how servers are started: the taskset prefix
// that pins them to -servercpu, or none, and a note saying which. It
// tries taskset first, because a container may not offer that core.
var serverPinning = sync.OnceValues(func() ([]string, string) {
	if opts.ServerCPU < 0 {
		return nil, "server not pinned (-servercpu=-1)"
	}
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		return nil, "server not pinned: no taskset on PATH"
	}
	cpu := strconv.Itoa(opts.ServerCPU)
	if out, err := exec.Command(taskset, "-c", cpu, "true").CombinedOutput(); err != nil {
		return nil, fmt.Sprintf("server not pinned: taskset -c %s: %v %s", cpu, err, bytes.TrimSpace(out))
	}
	return []string{taskset, "-c", cpu}, "server pinned to CPU " + cpu
})

// WaitHealthy polls /healthz until it answers, the process exits or ctx ends.
func WaitHealthy(ctx context.Context, base string, p *Process) error {
	for {
		if _, err := HealthClients(ctx, base); err == nil {
			return nil
		}
		select {
		case <-p.Exited:
			return errors.New("the process exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(joinPoll):
		}
	}
}

// HealthClients asks /healthz how many WebSocket clients the server counts.
func HealthClients(ctx context.Context, base string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("/healthz: %s", resp.Status)
	}
	var h struct {
		Clients int `json:"clients"`
	}
	err = json.NewDecoder(resp.Body).Decode(&h)
	return h.Clients, err
}

// ProcStats is what /proc says about one process.
type ProcStats struct {
	CPU     time.Duration // user+system CPU since it started, in clockTick steps
	RSS     int64         // resident bytes now (VmRSS)
	PeakRSS int64         // most resident bytes so far (VmHWM)
}

// ReadProcStats reads /proc/PID/stat and /proc/PID/status.
func ReadProcStats(pid int) (ProcStats, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcStats{}, err
	}
	// The command name is in parentheses and may hold spaces; fields after
	// it start at field 3 (state), so utime (14) and stime (15) are 11, 12.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(fields) < 13 {
		return ProcStats{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	status, err3 := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err := errors.Join(err1, err2, err3); err != nil {
		return ProcStats{}, err
	}
	return ProcStats{
		CPU:     time.Duration(utime+stime) * clockTick,
		RSS:     statusBytes(status, "VmRSS:"),
		PeakRSS: statusBytes(status, "VmHWM:"),
	}, nil
}

// statusBytes reads a "Name:   123 kB" line of /proc/PID/status, where kB
// means 1024 bytes; 0 when the line is missing.
func statusBytes(status []byte, name string) int64 {
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, name); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// RaiseFileLimit lifts this process's open-file soft limit to the hard
// limit: thousands of connections need thousands of descriptors.
func RaiseFileLimit() error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("setrlimit: %w", err)
	}
	return nil
}

// Member is one load client: its connection and what its reader counted.
type Member struct {
	conn    *websocket.Conn
	keepIDs bool          // keep every id, for order checks
	done    chan struct{} // closed when the reader stops

	chats atomic.Int64 // chatMessage envelopes received
	users atomic.Int64 // count of the latest userCount envelope
	last  atomic.Int64 // UnixNano when the latest chatMessage arrived

	// Owned by the reader; read only once done is closed.
	err        error           // why the reader stopped
	lastID     uint64          // id of the latest chatMessage
	outOfOrder int64           // chatMessages whose id did not exceed the one before
	ids        []uint64        // every id, when keepIDs
	latencies  []time.Duration // send to receipt, for messages whose text is a send time
}

// DialMembers joins n members, member i to room(i), with at most -load.dials
// handshakes in flight, and starts their readers. They are closed when the
// test ends.
func DialMembers(ctx context.Context, tb TB, tg *Target, n int, room func(int) string, keepIDs bool) []*Member {
	tb.Helper()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	members := make([]*Member, n)
	tb.Cleanup(func() { closeMembers(members) })
	var firstErr error
	var once sync.Once
	sem := make(chan struct{}, max(opts.Dials, 1))
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			m, err := dialMember(ctx, tg.wsURL(room(i), "u"+strconv.Itoa(i)), keepIDs)
			if err != nil {
				once.Do(func() { firstErr = fmt.Errorf("member %d: %w", i, err) })
				cancel() // The first failure says it all; stop dialing.
				return
			}
			members[i] = m
		})
	}
	wg.Wait()
	if firstErr != nil {
		tb.Fatalf("join %d members: %v", n, firstErr)
	}
	return members
}

// dialMember joins one member and starts its reader.
func dialMember(ctx context.Context, url string, keepIDs bool) (*Member, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(loadReadLimit)
	m := &Member{conn: conn, keepIDs: keepIDs, done: make(chan struct{})}
	go m.read()
	return m, nil
}

// closeMembers closes every member's connection and waits for its reader.
func closeMembers(members []*Member) {
	for _, m := range members {
		if m != nil {
			m.conn.CloseNow()
		}
	}
	for _, m := range members {
		if m != nil {
			<-m.done
		}
	}
}

// read counts what arrives until the connection ends. It passes no context:
// closing the connection stops it, and a context per read would cost more
// than the counting does.
func (m *Member) read() {
	defer close(m.done)
	var buf bytes.Buffer
	for {
		_, r, err := m.conn.Reader(context.Background())
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			m.err = err
			return
		}
		m.scan(buf.Bytes(), time.Now())
	}
}

// Markers found in server envelopes without decoding them. JSON escapes every
// quote inside a string, so these only ever match keys and type names, never
// message text or usernames.
var (
	chatMarker      = []byte(`"type":"chatMessage"`)
	userCountMarker = []byte(`"type":"userCount"`)
	idKey           = []byte(`"id":`)
	countKey        = []byte(`"count":`)
	messageKey      = []byte(`"message":"`)
)

// scan counts the envelopes of one WebSocket message, one per line.
func (m *Member) scan(msg []byte, now time.Time) {
	for len(msg) > 0 {
		line := msg
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			line, msg = msg[:i], msg[i+1:]
		} else {
			msg = nil
		}
		switch {
		case bytes.Contains(line, chatMarker):
			m.chat(line, now)
		case bytes.Contains(line, userCountMarker):
			m.users.Store(int64(jsonUint(line, countKey)))
		}
	}
}

// chat counts one chatMessage, checks that its id exceeds the one before, and
// records its latency when its text is a send time.
func (m *Member) chat(line []byte, now time.Time) {
	id := jsonUint(line, idKey)
	if id <= m.lastID {
		m.outOfOrder++
	}
	m.lastID = id
	if m.keepIDs {
		m.ids = append(m.ids, id)
	}
	if sent := jsonUint(line, messageKey); sent > 0 {
		m.latencies = append(m.latencies, now.Sub(time.Unix(0, int64(sent))))
	}
	m.last.Store(now.UnixNano())
	m.chats.Add(1) // Last, so that whoever sees the count also sees last.
}

// jsonUint parses the digits right after key in line; 0 when there are none.
func jsonUint(line, key []byte) uint64 {
	i := bytes.Index(line, key)
	if i < 0 {
		return 0
	}
	var n uint64
	for _, c := range line[i+len(key):] {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + uint64(c-'0')
	}
	return n
}

// Say sends one chat message. text must need no JSON escaping.
func (m *Member) Say(ctx context.Context, text string) error {
	return m.conn.Write(ctx, websocket.MessageText, []byte(`{"type":"chatMessage","payload":{"message":"`+text+`"}}`))
}

// Stopped reports whether the member's reader has stopped.
func (m *Member) Stopped() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// WaitJoined waits for the join notices to settle: every member still
// connected has heard a userCount equal to the number still connected.
func WaitJoined(ctx context.Context, tb TB, members []*Member) {
	tb.Helper()
	for {
		live, agree := 0, 0
		for _, m := range members {
			if !m.Stopped() {
				live++
			}
		}
		for _, m := range members {
			if !m.Stopped() && m.users.Load() == int64(live) {
				agree++
			}
		}
		if agree == live {
			return
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("join notices did not settle: %d of %d members heard the final count", agree, live)
		case <-time.After(joinPoll):
		}
	}
}

// delivered is how many chatMessages members have received in all.
func Delivered(members []*Member) int64 {
	var n int64
	for _, m := range members {
		n += m.chats.Load()
	}
	return n
}

// WaitDelivered waits until members have received want chatMessages in all,
// until none has arrived for settleQuiet (the rest are lost), or ctx ends.
func WaitDelivered(ctx context.Context, members []*Member, want int64) {
	waitCount(ctx, want, func() int64 { return Delivered(members) },
		func() bool { return len(liveMembers(members)) == 0 })
}

// waitCount polls count until it reaches want, stops growing for
// settleQuiet, gone reports that nobody is left to count, or ctx ends, and
// returns the last count.
func waitCount(ctx context.Context, want int64, count func() int64, gone func() bool) int64 {
	tick := time.NewTicker(deliveryPoll)
	defer tick.Stop()
	last, since := int64(-1), time.Now()
	for {
		got := count()
		switch {
		case got >= want:
			return got
		case got != last:
			last, since = got, time.Now()
		case time.Since(since) > settleQuiet || gone():
			return got
		}
		select {
		case <-ctx.Done():
			return count()
		case <-tick.C:
		}
	}
}

// Received is how many chatMessages the member has received so far.
func (m *Member) Received() int64 { return m.chats.Load() }

// Err is why the member's reader stopped; read it once Stopped.
func (m *Member) Err() error { return m.err }
