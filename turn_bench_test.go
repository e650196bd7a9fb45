//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v4"

	"hallway/internal/loadgen"
)

// This benchmark measures how many media bytes a TURN relay carries per
// CPU-second of its own process, the built-in relay and coturn side by
// side in one run. What the relay does is tested in turn_test.go.

// BenchmarkTURNRelay measures how many media bytes a TURN relay carries per
// CPU-second of the relay's own process: the built-in relay, and coturn
// beside it in the same run, measured the same way.
//
// Both relays run as processes of their own (this test binary as the
// server, as for BenchmarkIdleConnectionMemory, and Debian's turnserver),
// pinned to CPU 0 when taskset can, with the same kind of credentials: TURN
// REST ones signed with one shared secret. The relay's CPU is utime+stime of
// its process, read from /proc/PID/stat (10 ms ticks) before and after the
// transfer, so start-up and allocation are not counted and neither is the
// client, which is this process.
//
// The built-in relay refuses to relay to loopback and private addresses,
// and no setting lifts that. Keeping it in this process and lifting the
// check with the tests' hook would mix the client's CPU into its figure and
// measure a relay that differs from production. Instead, everything happens
// in a network namespace the benchmark makes for itself (root only), where
// the peer has a public-looking address, turnBenchPeer, on the namespace's
// own loopback: both relays run exactly as configured, and nothing leaves.
//
// One iteration is one round trip of one datagram of turnBenchPayload
// bytes: client, relay, peer, relay, client, over one allocation, with
// turnBenchWindow datagrams in flight, as pion's client sends them (channel
// data once the channel is bound). bytes/cpu-s counts payload bytes
// delivered both ways. Under server=coturn, hallway/coturn is the median of
// this run's server=hallway figures over coturn's.
//
//	taskset -c 1 go test -run '^$' -bench TURNRelay -benchtime=200000x -count=3 .
func BenchmarkTURNRelay(b *testing.B) {
	ns := newBenchNetns(b)
	hallway := startHallwayRelay(b, ns)
	var coturn *turnBenchServer
	if _, err := exec.LookPath("turnserver"); err == nil {
		coturn = startCoturn(b, ns)
	}
	var hallwayFigures []float64
	b.Run("server=hallway", func(b *testing.B) {
		if f, ok := hallway.measure(b, ns); ok {
			hallwayFigures = append(hallwayFigures, f)
		}
	})
	b.Run("server=coturn", func(b *testing.B) {
		if coturn == nil {
			b.Skip("turnserver is not installed (apt-get install -y coturn)")
		}
		f, ok := coturn.measure(b, ns)
		if ok && len(hallwayFigures) > 0 {
			b.ReportMetric(median(hallwayFigures)/f, "hallway/coturn")
		}
	})
}

// Settings of BenchmarkTURNRelay.
const (
	// turnBenchPeer is the peer's address inside the namespace: TEST-NET-3
	// (RFC 5737), which the relay's private-peer check lets through.
	turnBenchPeer = "203.0.113.9"
	// turnBenchPayload is a typical size of a video RTP packet.
	turnBenchPayload = 1200
	// turnBenchWindow is how many datagrams may be in flight at once. At 64,
	// coturn dropped the last 8 of the first burst of every allocation (its
	// relayed socket's buffer holds about 56 such datagrams); at 32 neither
	// relay drops any.
	turnBenchWindow = 32
	// turnBenchStall is how long the sender waits for a full window to
	// open before it takes the oldest datagram for lost.
	turnBenchStall = 200 * time.Millisecond
	// turnBenchDead is how many stalls in a row end a transfer as failed.
	turnBenchDead = 25
	// turnBenchQuiet ends a transfer when nothing more arrives for it
	// after the last datagram went.
	turnBenchQuiet = time.Second
	// turnBenchSecret is both relays' shared secret.
	turnBenchSecret = "bench-secret"
	// hallwayBenchPort and coturnBenchPort are the relays' UDP ports; the
	// namespace is new, so they are free.
	hallwayBenchPort, coturnBenchPort = "3478", "3479"
)

// benchNetns runs functions on one OS thread that has entered a network
// namespace of its own. A socket stays in the namespace it was made in, and
// a process inherits the namespace of the thread that starts it, so the
// relays, the client's and the peer's sockets all live there, whichever
// goroutine uses them later.
type benchNetns struct {
	work chan func()
}

// newBenchNetns makes the namespace, with loopback up and turnBenchPeer on
// it, or skips the benchmark where that is not permitted.
func newBenchNetns(b *testing.B) *benchNetns {
	b.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		b.Skip("no ip command to set up a network namespace")
	}
	ns := &benchNetns{work: make(chan func())}
	ready := make(chan error)
	go func() {
		// The thread is never unlocked: when this goroutine returns, the
		// runtime ends the thread rather than reuse it for other goroutines.
		runtime.LockOSThread()
		if err := syscall.Unshare(syscall.CLONE_NEWNET); err != nil {
			ready <- fmt.Errorf("unshare: %w", err)
			return
		}
		for _, args := range [][]string{{"link", "set", "lo", "up"}, {"addr", "add", turnBenchPeer + "/32", "dev", "lo"}} {
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				ready <- fmt.Errorf("ip %s: %v %s", strings.Join(args, " "), err, out)
				return
			}
		}
		ready <- nil
		for fn := range ns.work {
			fn()
		}
	}()
	if err := <-ready; err != nil {
		b.Skipf("cannot make a network namespace (it needs root): %v", err)
	}
	b.Cleanup(func() { close(ns.work) })
	return ns
}

// do runs fn inside the namespace and waits for it.
func (ns *benchNetns) do(fn func()) {
	done := make(chan struct{})
	ns.work <- func() {
		defer close(done)
		fn()
	}
	<-done
}

// listenUDP opens a UDP socket on addr inside the namespace.
func (ns *benchNetns) listenUDP(b *testing.B, addr string) net.PacketConn {
	b.Helper()
	var conn net.PacketConn
	var err error
	ns.do(func() { conn, err = net.ListenPacket("udp4", addr) })
	if err != nil {
		b.Fatal(err)
	}
	return conn
}

// turnBenchServer is one relay under test: its process and the address of
// its UDP listener.
type turnBenchServer struct {
	name string
	addr string
	p    *loadgen.Process
}

// startHallwayRelay runs this test binary as the server, with the relay
// configured as in production but for the bandwidth cap, raised so that it
// drops nothing: the cap is still checked on every datagram.
func startHallwayRelay(b *testing.B, ns *benchNetns) *turnBenchServer {
	b.Helper()
	cmd := pinnedCommand(testBinary())
	cmd.Env = append(os.Environ(), serveEnv+"=1", "HOST=127.0.0.1", "PORT=8080",
		"TURN_PORT="+hallwayBenchPort, "TURN_BIND=127.0.0.1", "TURN_PUBLIC_IP=127.0.0.1",
		"TURN_RELAY_PORTS=50000-50999", "TURN_SECRET="+turnBenchSecret, "TURN_BANDWIDTH=1GiB")
	return startTURNBenchServer(b, ns, "hallway", cmd, "127.0.0.1:"+hallwayBenchPort)
}

// startCoturn runs coturn with the same kind of credentials and listeners:
// UDP only, on loopback, relaying from loopback, with no bandwidth cap, no
// admin CLI and no configuration file.
func startCoturn(b *testing.B, ns *benchNetns) *turnBenchServer {
	b.Helper()
	dir := b.TempDir()
	cmd := pinnedCommand("turnserver", "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
		"--listening-port="+coturnBenchPort, "--min-port=51000", "--max-port=51999",
		"--use-auth-secret", "--static-auth-secret="+turnBenchSecret, "--realm="+turnRealm,
		"--no-cli", "--no-tls", "--no-dtls", "--no-tcp", "--log-file=stdout", "--simple-log",
		"--pidfile="+filepath.Join(dir, "turnserver.pid"), "--userdb="+filepath.Join(dir, "turndb"))
	return startTURNBenchServer(b, ns, "coturn", cmd, "127.0.0.1:"+coturnBenchPort)
}

// pinnedCommand is argv pinned to CPU 0 with taskset when it can, as the
// load tool pins its servers: run the benchmark itself with taskset -c 1.
func pinnedCommand(argv ...string) *exec.Cmd {
	if taskset, err := exec.LookPath("taskset"); err == nil && runtime.NumCPU() > 1 {
		if exec.Command(taskset, "-c", "0", "true").Run() == nil {
			argv = append([]string{taskset, "-c", "0"}, argv...)
		}
	}
	return exec.Command(argv[0], argv[1:]...)
}

// startTURNBenchServer starts cmd in the namespace and waits until it
// answers a STUN binding request on addr.
func startTURNBenchServer(b *testing.B, ns *benchNetns, name string, cmd *exec.Cmd, addr string) *turnBenchServer {
	b.Helper()
	var p *loadgen.Process
	var err error
	ns.do(func() { p, err = loadgen.StartProcess(cmd) })
	if err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	b.Cleanup(p.Stop)
	s := &turnBenchServer{name: name, addr: addr, p: p}
	c := s.client(b, ns)
	defer c.Close()
	for deadline := time.Now().Add(benchTimeout); ; {
		if _, err := c.SendBindingRequest(); err == nil {
			return s
		}
		select {
		case <-p.Exited:
			b.Fatalf("%s exited; it printed:\n%s", name, p.Out.String())
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s does not answer STUN; it printed:\n%s", name, p.Out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// client is a pion TURN client of s from a socket in the namespace, with
// TURN REST credentials signed with the shared secret.
func (s *turnBenchServer) client(b *testing.B, ns *benchNetns) *turn.Client {
	b.Helper()
	conn := ns.listenUDP(b, "127.0.0.1:0")
	user := fmt.Sprintf("%d:bench", time.Now().Add(time.Hour).Unix())
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: s.addr, TURNServerAddr: s.addr, Conn: conn, RTO: 100 * time.Millisecond,
		Username: user, Password: turnPassword([]byte(turnBenchSecret), user), Realm: turnRealm,
		LoggerFactory: &logging.DefaultLoggerFactory{Writer: io.Discard, DefaultLogLevel: logging.LogLevelDisabled},
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return c
}

// measure relays b.N round trips through a new allocation on s and reports
// bytes/cpu-s, which it returns too. The framework's first run, of one
// round trip, measures nothing; give a fixed count such as -benchtime=200000x.
func (s *turnBenchServer) measure(b *testing.B, ns *benchNetns) (float64, bool) {
	if b.N == 1 {
		return 0, false
	}
	c := s.client(b, ns)
	defer c.Close()
	relayed, err := c.Allocate()
	if err != nil {
		b.Fatalf("%s: allocate: %v", s.name, err)
	}
	defer relayed.Close()
	peer := newEchoPeer(ns.listenUDP(b, turnBenchPeer+":0"))
	defer peer.conn.Close()
	// Warm up: the permission, then the channel binding, which pion's client
	// makes after the first datagrams.
	for range 2 {
		if _, _, err := roundTrips(relayed, peer.conn.LocalAddr(), 100); err != nil {
			b.Fatalf("%s: warming up: %v; it printed:\n%s", s.name, err, s.p.Out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	before := s.cpu(b)
	peerBytes := peer.bytes.Load()
	b.ResetTimer()
	back, got, err := roundTrips(relayed, peer.conn.LocalAddr(), b.N)
	b.StopTimer()
	if err != nil {
		b.Fatalf("%s: %v; it printed:\n%s", s.name, err, s.p.Out.String())
	}
	cpu := s.cpu(b) - before
	delivered := float64(peer.bytes.Load() - peerBytes + back)
	if cpu <= 0 {
		return 0, false // Too short a run for a 10 ms tick, as the framework's probes are.
	}
	perCPU := delivered / cpu.Seconds()
	b.ReportMetric(perCPU, "bytes/cpu-s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(b.N-got), "lost")
	return perCPU, true
}

// cpu is the CPU time s's process has used so far.
func (s *turnBenchServer) cpu(b *testing.B) time.Duration {
	st, err := loadgen.ReadProcStats(s.p.Cmd.Process.Pid)
	if err != nil {
		b.Fatalf("%s: %v", s.name, err)
	}
	return st.CPU
}

// echoPeer sends every datagram back to where it came from and counts the
// bytes it received.
type echoPeer struct {
	conn  net.PacketConn
	bytes atomic.Int64
}

// newEchoPeer starts echoing on conn until it is closed.
func newEchoPeer(conn net.PacketConn) *echoPeer {
	p := &echoPeer{conn: conn}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			p.bytes.Add(int64(n))
			conn.WriteTo(buf[:n], from)
		}
	}()
	return p
}

// roundTrips sends n datagrams through relayed to peer, at most
// turnBenchWindow unanswered at once, and returns the bytes and datagrams
// that came back. A datagram not back within turnBenchStall of a full window
// is taken for lost, so that losses cannot stop the transfer; nothing back
// for turnBenchDead stalls in a row is an error.
func roundTrips(relayed net.PacketConn, peer net.Addr, n int) (back int64, got int, err error) {
	credit := make(chan struct{}, turnBenchWindow)
	for range turnBenchWindow {
		credit <- struct{}{}
	}
	sent := make(chan struct{})
	type result struct {
		bytes int64
		n     int
	}
	done := make(chan result)
	go func() {
		var r result
		buf := make([]byte, 2048)
		for r.n < n {
			relayed.SetReadDeadline(time.Now().Add(turnBenchQuiet))
			m, _, err := relayed.ReadFrom(buf)
			if err != nil {
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() || isClosed(sent) {
					break // Closed, or quiet since the last datagram went.
				}
				continue
			}
			r.bytes += int64(m)
			r.n++
			select {
			case credit <- struct{}{}:
			default:
			}
		}
		done <- r
	}()
	err = sendCredited(relayed, peer, n, credit)
	close(sent)
	r := <-done
	return r.bytes, r.n, err
}

// sendCredited sends n datagrams to peer, each once credit has one to give.
func sendCredited(relayed net.PacketConn, peer net.Addr, n int, credit chan struct{}) error {
	payload := make([]byte, turnBenchPayload)
	stalls := 0
	for i := range n {
		select {
		case <-credit:
			stalls = 0
		default:
			select {
			case <-credit:
				stalls = 0
			case <-time.After(turnBenchStall):
				if stalls++; stalls == turnBenchDead {
					return fmt.Errorf("nothing came back for %v, after %d of %d datagrams", turnBenchStall*turnBenchDead, i, n)
				}
			}
		}
		if _, err := relayed.WriteTo(payload, peer); err != nil {
			return fmt.Errorf("send datagram %d: %w", i, err)
		}
	}
	return nil
}

// isClosed reports whether ch is closed.
func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// median is the middle of figures, or the mean of the middle two.
func median(figures []float64) float64 {
	s := slices.Sorted(slices.Values(figures))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
