//go:build linux

package test

// The attack test: one visitor, and then a crowd of addresses, try to take
// a small server down, while two honest people chat. It runs the server as
// a process of its own, as the load tool does, so that /proc shows the
// server's memory alone.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hallway/internal/loadgen"
	"maps"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// attackServer is the server binary the attack test starts; empty runs this
// tree's. Naming an older build shows what the attack did before.
var attackServer = flag.String("attack.server", "", "server binary to attack (e.g. hallway built from another commit); empty runs this tree's server")

// The attack's settings: the server's environment as a small public
// deployment sets it (see docs/running-in-public.md), and the attack's
// size. The client IP comes from a trusted header so that one test process
// can be one attacker, a crowd and the honest users.
const (
	attackMemoryLimit = 64 << 20
	// attackRSSBound is the documented bound on the server's peak RSS under
	// this attack: MEMORY_LIMIT plus what the Go runtime does not count
	// (goroutine stacks, socket buffers it reads into, fragmentation).
	attackRSSBound = attackMemoryLimit + 48<<20
	attackIP       = "203.0.113.7"
	// attackConnCap is MAX_CONNS_PER_IP, low enough to reach before the
	// join rate (120 a minute) refuses first.
	attackConnCap = 50
	// attackNewRooms is how many new names the attacker joins; ten are
	// allowed a minute.
	attackNewRooms = 30
	// attackCrowd is how many addresses the crowd uses, each starting as many
	// rooms as ROOM_CREATE_RATE allows at once.
	attackCrowd         = 60
	attackRoomsPerCrowd = 10
	attackMessages      = 10 // each attacking connection's burst
	attackPace          = 220 * time.Millisecond
	attackTimeout       = 3 * time.Minute
)

// attackDialTimeout bounds one handshake; attackReadLimit is far above any
// frame or batch the server writes.
const (
	attackDialTimeout = 10 * time.Second
	attackReadLimit   = 1 << 24
)

// mb is n bytes in megabytes of 10^6 bytes.
func mb(n int64) float64 { return float64(n) / 1e6 }

// attackEnv is the server's environment for the attack.
func attackEnv() []string {
	return []string{
		"HOST=127.0.0.1",
		"CLIENT_IP_HEADER=X-Test-IP",
		"MEMORY_LIMIT=" + strconv.Itoa(attackMemoryLimit),
		"MAX_CONNS_PER_IP=" + strconv.Itoa(attackConnCap),
		"HISTORY_BYTES=128KiB",
		"SEND_BUFFER_BYTES=256KiB",
	}
}

// floodFor is how long the attacker's own room is flooded after the burst,
// at the most flood control allows (MESSAGE_RATE, 5 a second), so that the
// members that never read fill the kernel's socket buffers and then their
// queues: the server's send buffer grows up to tcp_wmem's maximum (4 MiB
// on most Linux systems), and the flood must carry that, SEND_BUFFER_BYTES
// and a margin to each of them.
func floodFor(t *testing.T, writers int) time.Duration {
	t.Helper()
	wmem, err := os.ReadFile("/proc/sys/net/ipv4/tcp_wmem")
	fields := strings.Fields(string(wmem))
	if err != nil || len(fields) != 3 {
		t.Fatalf("read tcp_wmem: %q, %v", wmem, err)
	}
	maxSend, err := strconv.Atoi(fields[2])
	if err != nil {
		t.Fatalf("tcp_wmem maximum %q: %v", fields[2], err)
	}
	need := float64(maxSend + 256<<10 + 1<<20)
	// Each writer sends 5 messages a second of 4 KB of "<" or 8 KB of '"'
	// once encoded: about 30 KB a second.
	perSecond := float64(writers * 5 * 6 << 10)
	return max(6*time.Second, time.Duration(need/perSecond*float64(time.Second)))
}

// attackText is a message of MAX_MESSAGE_BYTES (4096) whose encoding costs
// the most: "<" was six bytes each when frames were HTML-escaped, and '"'
// is two bytes each in any JSON.
func attackText(i int) string {
	if i%2 == 0 {
		return strings.Repeat("<", 4096)
	}
	return strings.Repeat(`"`, 4096)
}

// startAttack starts the server under attack and the attacker, within
// attackTimeout; the server's output is logged if the test fails.
func startAttack(t *testing.T) (context.Context, *attackProcess, *attacker) {
	t.Helper()
	if testing.Short() {
		t.Skip("attack test: skipped with -short")
	}
	if err := loadgen.RaiseFileLimit(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), attackTimeout)
	t.Cleanup(cancel)
	srv := startAttackServer(ctx, t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the server printed:\n%s", srv.output())
		}
	})
	return ctx, srv, &attacker{t: t, base: srv.base, refusals: map[string]int{}}
}

func TestAttackFromOneIP(t *testing.T) {
	ctx, srv, a := startAttack(t)

	alice, bob := a.honestPair(ctx)
	health := a.watchHealth(ctx)

	// One visitor: many new room names, more connections than its cap,
	// members that never read, and the costliest messages it may send.
	rooms := a.newRooms(ctx, attackIP, "evil", attackNewRooms)
	writers := a.fillConnections(ctx, attackIP, rooms)
	var attack sync.WaitGroup
	attack.Go(func() { a.flood(ctx, rooms, 0) })
	attack.Go(func() { a.flood(ctx, writers, floodFor(t, len(writers))) })
	// A crowd of addresses: each starts as many rooms as it may and fills
	// their history, past what memory would hold without a total budget.
	for i := range attackCrowd {
		attack.Go(func() {
			ip := fmt.Sprintf("198.18.%d.%d", i/250, i%250+1)
			a.flood(ctx, a.newRooms(ctx, ip, fmt.Sprintf("crowd%d-", i), attackRoomsPerCrowd), 0)
		})
	}
	attack.Wait()
	a.floodUntilSilentCut(ctx, writers, 3*floodFor(t, len(writers)))
	healthy, unhealthy := health()

	a.checkSurvived(srv, healthy, unhealthy)
	alice.say(ctx, t, "still here")
	if got := bob.nextText(ctx, t); got != "still here" {
		t.Errorf("after the attack bob got %q, want alice's message", got)
	}
	a.checkRefusals()
	a.closeAll()
	a.checkFloodCut(ctx)
}

// checkSurvived requires that the server process outlived the attack with
// its peak RSS within the documented bound, and that /healthz answered
// every time it was asked during it.
func (a *attacker) checkSurvived(srv *attackProcess, healthy, unhealthy int) {
	a.t.Helper()
	stats, err := loadgen.ReadProcStats(srv.pid)
	if err != nil {
		a.t.Fatalf("the server process is gone: %v\nit printed:\n%s", err, srv.output())
	}
	a.log(stats, healthy, unhealthy)
	if stats.PeakRSS > attackRSSBound {
		a.t.Errorf("peak RSS %.1f MB, over the documented bound of %.1f MB", mb(stats.PeakRSS), mb(attackRSSBound))
	}
	if unhealthy > 0 || healthy == 0 {
		a.t.Errorf("/healthz answered %d times and failed %d times during the attack; want every answer", healthy, unhealthy)
	}
}

// closeAll closes every connection the attacker holds, so that its address
// is under its cap again.
func (a *attacker) closeAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.conns {
		c.CloseNow()
	}
}

// attackProcess is the server under attack.
type attackProcess struct {
	base string
	pid  int
	p    *loadgen.Process
}

// output is what the server has printed so far.
func (s *attackProcess) output() string {
	return s.p.Out.String()
}

// startAttackServer starts -attack.server, or this tree's server, on a free
// loopback port and waits until /healthz answers.
func startAttackServer(ctx context.Context, t *testing.T) *attackProcess {
	t.Helper()
	bin := *attackServer
	if bin == "" {
		bin = hallwayBin
	}
	p, base := startServer(t, bin, attackEnv()...)
	return &attackProcess{base: base, pid: p.Cmd.Process.Pid, p: p}
}

// attacker drives the attack and counts what the server answered.
type attacker struct {
	t    *testing.T
	base string

	mu       sync.Mutex
	refusals map[string]int // HTTP refusals by status and code, close codes by code
	conns    []*websocket.Conn
	silent   []*websocket.Conn // connections that never read
	// silentPorts are the silent connections' own ports, to find the
	// server's end of each in the kernel's table.
	silentPorts map[*websocket.Conn]int
	// readers are the connections drain reads, with what it saw of each.
	readers map[*websocket.Conn]*reading
	// readersClosed counts the connections that read and saw theirs end.
	readersClosed int
}

// reading is what drain saw of one connection: a pong, and its end.
type reading struct {
	pong chan struct{} // a pong arrived; holds one
	done chan struct{} // closed when the connection ended
}

// count records one answer, such as "429 rate_limited" or "close 1008".
func (a *attacker) count(what string) {
	a.mu.Lock()
	a.refusals[what]++
	a.mu.Unlock()
}

// dial joins room from ip; the caller reads the connection, unless it is
// silent. It returns nil, having counted the refusal, when the server
// refused before the upgrade. A silent connection never reads,
// and its socket's receive buffer is made small, so that what the server
// sends it piles up in the server's queue rather than in the kernel.
func (a *attacker) dial(ctx context.Context, ip, room, name string, silent bool) *websocket.Conn {
	ctx, cancel := context.WithTimeout(ctx, attackDialTimeout)
	defer cancel()
	url := "ws" + strings.TrimPrefix(a.base, "http") + "/ws/" + room + "?username=" + name
	opts := &websocket.DialOptions{HTTPHeader: http.Header{"X-Test-IP": {ip}}}
	var local net.Addr // a silent connection's own address
	if silent {
		opts.HTTPClient = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := smallReceiveBuffer.DialContext(ctx, network, addr)
			if err == nil {
				local = c.LocalAddr()
			}
			return c, err
		}}}
	} else {
		opts.HTTPClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	}
	conn, resp, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		if resp == nil {
			// A handshake the loaded server did not answer in time: counted,
			// not failed, as the honest pair and /healthz are what must last.
			a.count("no answer")
			return nil
		}
		var body errorPayload
		json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
			a.t.Errorf("429 %s without Retry-After", body.Code)
		}
		a.count(fmt.Sprintf("%d %s", resp.StatusCode, body.Code))
		return nil
	}
	conn.SetReadLimit(attackReadLimit)
	a.mu.Lock()
	a.conns = append(a.conns, conn)
	if silent {
		a.silent = append(a.silent, conn)
		if a.silentPorts == nil {
			a.silentPorts = map[*websocket.Conn]int{}
		}
		a.silentPorts[conn] = local.(*net.TCPAddr).Port
	}
	a.mu.Unlock()
	a.t.Cleanup(func() { conn.CloseNow() })
	return conn
}

// smallReceiveBuffer dials with a 4 KiB socket receive buffer.
var smallReceiveBuffer = &net.Dialer{Control: func(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
	})
	return errors.Join(err, serr)
}}

// startDrain reads conn until it ends, in a goroutine of its own, and counts
// how it ended.
func (a *attacker) startDrain(conn *websocket.Conn) {
	r := &reading{pong: make(chan struct{}, 1), done: make(chan struct{})}
	a.mu.Lock()
	if a.readers == nil {
		a.readers = map[*websocket.Conn]*reading{}
	}
	a.readers[conn] = r
	a.mu.Unlock()
	go a.drain(conn, r)
}

// drain reads conn until it ends, noting pongs, and counts how it ended.
func (a *attacker) drain(conn *websocket.Conn, r *reading) {
	defer close(r.done)
	for {
		_, data, err := conn.Read(context.Background())
		if err == nil {
			if bytes.HasPrefix(data, []byte(`{"type":"`+typePong+`"`)) {
				select {
				case r.pong <- struct{}{}:
				default:
				}
			}
			continue
		}
		a.mu.Lock()
		a.readersClosed++
		a.mu.Unlock()
		if code := websocket.CloseStatus(err); code != -1 {
			a.count("close " + strconv.Itoa(int(code)))
			if code != websocket.StatusNormalClosure && code != websocket.StatusGoingAway {
				a.t.Logf("a reading connection was closed: %v", err)
			}
		}
		return
	}
}

// readersSettled makes readersClosed count every reading connection the
// server has closed so far. Each one still open is sent a ping, and its
// pong or its end is awaited: the server answers only on a connection it
// still holds, so a close it made before the ping reaches drain first.
func (a *attacker) readersSettled(ctx context.Context) {
	a.mu.Lock()
	readers := maps.Clone(a.readers)
	a.mu.Unlock()
	ping, _ := json.Marshal(outEnvelope{Type: typePing, Payload: struct{}{}})
	for conn, r := range readers {
		select {
		case <-r.pong: // An old answer; this round needs a new one.
		default:
		}
		select {
		case <-r.done:
		default:
			wctx, cancel := context.WithTimeout(ctx, attackDialTimeout)
			conn.Write(wctx, websocket.MessageText, ping) // Failing, the connection ends: drain sees it.
			cancel()
		}
	}
	for _, r := range readers {
		select {
		case <-r.pong:
		case <-r.done:
		case <-ctx.Done():
			a.t.Fatal("a reading connection neither answered a ping nor ended")
		}
	}
}

// floodUntilSilentCut goes on flooding from writers, a few seconds at a
// time and for at most limit more, while /healthz still counts connections
// that never read. floodFor assumes the writers keep their pace; on a
// machine busy with other work they fall behind it, and the silent
// connections' socket buffers are not yet full when it ends.
func (a *attacker) floodUntilSilentCut(ctx context.Context, writers []*websocket.Conn, limit time.Duration) {
	for end := time.Now().Add(limit); time.Now().Before(end); {
		// The server counts every connection it still holds: those that
		// read and have not seen a close, and the silent ones it has not
		// cut yet. Counted before the server's closes of reading
		// connections had all reached drain, a silent connection still held
		// could pass for one of them.
		a.readersSettled(ctx)
		a.mu.Lock()
		want := len(a.conns) - len(a.silent) - a.readersClosed
		a.mu.Unlock()
		n, err := loadgen.HealthClients(ctx, a.base)
		if err == nil && n <= want {
			return
		}
		a.send(ctx, writers, 0, attackTopUp) // At the sustained pace alone: no burst.
	}
}

// attackTopUp is each round of floodUntilSilentCut.
const attackTopUp = 3 * time.Second

// newRooms joins n new room names from ip and returns the connections the
// server let in.
func (a *attacker) newRooms(ctx context.Context, ip, prefix string, n int) []*websocket.Conn {
	var conns []*websocket.Conn
	for i := range n {
		if conn := a.dial(ctx, ip, prefix+strconv.Itoa(i), "x", false); conn != nil {
			a.startDrain(conn)
			conns = append(conns, conn)
		}
	}
	return conns
}

// fillConnections opens connections from ip into its first room until the
// server has refused ten past its per-IP cap: half of them read and are
// returned, to flood the room; half never read.
func (a *attacker) fillConnections(ctx context.Context, ip string, rooms []*websocket.Conn) []*websocket.Conn {
	if len(rooms) == 0 {
		a.t.Fatal("the attacker was let into no room at all")
	}
	var writers []*websocket.Conn
	for i := range attackConnCap - len(rooms) + 10 {
		silent := i%2 == 1
		if conn := a.dial(ctx, ip, "evil0", "m"+strconv.Itoa(i), silent); conn != nil && !silent {
			a.startDrain(conn)
			writers = append(writers, conn)
		}
	}
	return writers
}

// flood sends a burst of the costliest messages from each connection, as
// many as flood control lets a connection send at once, then goes on for
// the given time just under the sustained rate.
func (a *attacker) flood(ctx context.Context, conns []*websocket.Conn, sustain time.Duration) {
	a.send(ctx, conns, attackMessages, sustain)
}

// send sends burst messages at once from each connection, then one every
// attackPace until sustain has passed.
func (a *attacker) send(ctx context.Context, conns []*websocket.Conn, burst int, sustain time.Duration) {
	var wg sync.WaitGroup
	for _, conn := range conns {
		wg.Go(func() {
			end := time.Now().Add(sustain)
			for i := 0; i < burst || time.Now().Before(end); i++ {
				if i >= burst {
					time.Sleep(attackPace)
				}
				b, _ := json.Marshal(outEnvelope{Type: typeChatMessage, Payload: inboundMessage{Message: attackText(i)}})
				if conn.Write(ctx, websocket.MessageText, b) != nil {
					return
				}
			}
		})
	}
	wg.Wait()
}

// honestPair puts alice and bob, from addresses of their own, in a room of
// their own, and checks that they can talk.
func (a *attacker) honestPair(ctx context.Context) (alice, bob *honestUser) {
	alice = a.honest(ctx, "198.51.100.1", "alice")
	bob = a.honest(ctx, "198.51.100.2", "bob")
	alice.say(ctx, a.t, "before")
	if got := bob.nextText(ctx, a.t); got != "before" {
		a.t.Fatalf("bob got %q, want alice's message", got)
	}
	return alice, bob
}

// honestUser is a person who reads everything sent to them.
type honestUser struct {
	conn  *websocket.Conn
	texts chan string // chat messages from others
}

// honest joins the honest room from ip and starts reading.
func (a *attacker) honest(ctx context.Context, ip, name string) *honestUser {
	conn := a.dial(ctx, ip, "honest", name, false)
	if conn == nil {
		a.t.Fatalf("%s was refused before any attack", name)
	}
	u := &honestUser{conn: conn, texts: make(chan string, 100)}
	go func() {
		defer close(u.texts)
		for {
			_, data, err := conn.Read(context.Background())
			if err != nil {
				return
			}
			var e envelope
			var m chatMessagePayload
			if json.Unmarshal(data, &e) == nil && e.Type == typeChatMessage && json.Unmarshal(e.Payload, &m) == nil && m.Username != name {
				u.texts <- m.Message
			}
		}
	}()
	return u
}

// say sends a chat message.
func (u *honestUser) say(ctx context.Context, t *testing.T, text string) {
	t.Helper()
	b, _ := json.Marshal(outEnvelope{Type: typeChatMessage, Payload: inboundMessage{Message: text}})
	if err := u.conn.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatalf("an honest user could not send: %v", err)
	}
}

// nextText waits for the next message from someone else.
func (u *honestUser) nextText(ctx context.Context, t *testing.T) string {
	t.Helper()
	select {
	case text, ok := <-u.texts:
		if !ok {
			t.Fatal("an honest user's connection ended")
		}
		return text
	case <-ctx.Done():
		t.Fatal("an honest user waited in vain for a message")
		return ""
	}
}

// watchHealth asks /healthz over and over until the returned function is
// called, which reports how many answers were 200 and how many were not.
func (a *attacker) watchHealth(ctx context.Context) func() (ok, failed int) {
	var good, bad atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := loadgen.HealthClients(ctx, a.base); err != nil {
				bad.Add(1)
				a.t.Logf("/healthz: %v", err)
				continue
			}
			good.Add(1)
		}
	}()
	return func() (int, int) {
		close(stop)
		<-done
		return int(good.Load()), int(bad.Load())
	}
}

// log reports the attack's figures, before any check, so that a run against
// an older build shows them too.
func (a *attacker) log(stats loadgen.ProcStats, healthy, unhealthy int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.t.Logf("server peak RSS %.1f MB (bound %.1f MB), RSS now %.1f MB, CPU %v", mb(stats.PeakRSS), mb(attackRSSBound), mb(stats.RSS), stats.CPU)
	a.t.Logf("/healthz answered %d times, failed %d; %d connections let in; answers: %v", healthy, unhealthy, len(a.conns), a.refusals)
}

// checkRefusals requires the documented answers: 429 rate_limited for
// new rooms past ROOM_CREATE_RATE, 429 too_many_connections past
// MAX_CONNS_PER_IP, and the silent connections cut off rather than kept.
func (a *attacker) checkRefusals() {
	a.mu.Lock()
	got := a.refusals
	silent := a.silent
	a.mu.Unlock()
	if want := attackNewRooms - 10; got["429 rate_limited"] < want {
		a.t.Errorf("%d new rooms refused with 429 rate_limited, want at least %d", got["429 rate_limited"], want)
	}
	if got["429 too_many_connections"] != 10 {
		a.t.Errorf("%d connections refused with 429 too_many_connections, want the 10 past the cap", got["429 too_many_connections"])
	}
	for _, status := range []string{"503 server_full", "503 shutting_down"} {
		if got[status] > 0 {
			a.t.Errorf("%d joins refused with %s: the attack filled the whole server", got[status], status)
		}
	}
	a.checkSilentCut(silent)
}

// checkSilentCut requires that every connection that never read was cut
// off: with 1008 once its queue stayed over budget while a write to it was
// blocked, or without a close frame once a write outlasted WRITE_TIMEOUT.
// Which of the two depends on how the kernel sized the socket buffers, so
// the split is only logged.
//
// Each silent connection reads what is left for it. One whose reads do not
// end may still have been cut: the server closed its end while the
// connection's window was shut, and its kernel gave up on the data and
// dropped that end without a reset, which TCP never tells the other side.
// The kernel's table of sockets then tells whether the server's end is
// still there.
func (a *attacker) checkSilentCut(silent []*websocket.Conn) {
	// Looked at first: a read that times out closes the connection, and
	// the server's end then goes too.
	ends := a.serverEnds()
	before := map[*websocket.Conn]string{}
	for _, conn := range silent {
		before[conn] = ends[a.silentPorts[conn]]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var tooSlow, cut, unseen, kept atomic.Int64
	var wg sync.WaitGroup
	for _, conn := range silent {
		wg.Go(func() {
			var err error
			for err == nil {
				_, _, err = conn.Read(ctx)
			}
			switch state := before[conn]; {
			case websocket.CloseStatus(err) == websocket.StatusPolicyViolation:
				tooSlow.Add(1)
			case ctx.Err() == nil:
				cut.Add(1)
			case state == tcpEstablished || state == tcpCloseWait:
				kept.Add(1)
			default:
				unseen.Add(1)
				a.count("server's end of an unseen cut: " + cmp.Or(state, "gone"))
			}
		})
	}
	wg.Wait()
	a.t.Logf("of %d connections that never read, %d were cut off with 1008, %d cut as a write timed out, %d cut with their end gone unseen, %d kept",
		len(silent), tooSlow.Load(), cut.Load(), unseen.Load(), kept.Load())
	if len(silent) == 0 || kept.Load() != 0 {
		a.t.Errorf("%d connections that never read, %d of them kept: want some, each cut off", len(silent), kept.Load())
	}
}

// serverEnds maps the port of each loopback connection to the server to
// the state of the server's end of it, as /proc/net/tcp writes it; a port
// whose server end is gone is absent. The server still holds a connection
// while its end is established, or while its peer has closed and the
// server has not (close wait).
func (a *attacker) serverEnds() map[int]string {
	_, port, _ := strings.Cut(strings.TrimPrefix(a.base, "http://"), ":")
	serverPort, _ := strconv.Atoi(port)
	ends := map[int]string{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			a.t.Fatalf("read the kernel's sockets: %v", err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			if f := strings.Fields(line); len(f) >= 4 && hexPort(f[1]) == serverPort {
				ends[hexPort(f[2])] = f[3]
			}
		}
	}
	return ends
}

// States in /proc/net/tcp.
const (
	tcpEstablished = "01"
	tcpCloseWait   = "08"
)

// hexPort is the port of an address as /proc/net/tcp writes it, such as
// 0100007F:1F90, or -1.
func hexPort(addr string) int {
	_, h, _ := strings.Cut(addr, ":")
	n, err := strconv.ParseInt(h, 16, 32)
	if err != nil {
		return -1
	}
	return int(n)
}

// checkFloodCut sends far more than flood control allows from one more
// connection of the attacker's: past MESSAGE_BURST each message is
// rejected, and once rejections exhaust its budget, the connection is
// closed with 1008 (error frames still queued for it may be dropped).
func (a *attacker) checkFloodCut(ctx context.Context) {
	conn := a.dial(ctx, attackIP, "evil1", "flooder", false)
	if conn == nil {
		a.t.Error("the attacker could not open one connection after the others closed")
		return
	}
	go func() {
		b, _ := json.Marshal(outEnvelope{Type: typeChatMessage, Payload: inboundMessage{Message: "spam"}})
		for conn.Write(ctx, websocket.MessageText, b) == nil {
		}
	}()
	var err error
	for err == nil {
		_, _, err = conn.Read(ctx)
	}
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != reasonAbuse {
		a.t.Errorf("a flooding connection ended with %v; want 1008 %q", err, reasonAbuse)
	}
}
