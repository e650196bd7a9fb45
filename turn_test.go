package main

import (
	"context"
	"hallway/internal/loadgen"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v4"
)

// These tests run the built-in relay on loopback and talk to it with pion's
// own TURN client, as a browser's ICE agent would.

// freeUDPTCPPort returns a port on 127.0.0.1 that was free for both UDP and TCP
// a moment ago.
func freeUDPTCPPort(t *testing.T) int {
	t.Helper()
	// loadgen.FreePort picks below the ephemeral range, where no outgoing
	// socket of the suite's can take the port before the relay binds it.
	for range 50 {
		p, err := loadgen.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if u, err := net.ListenPacket("udp4", "127.0.0.1:"+p); err == nil {
			u.Close()
			port, _ := strconv.Atoi(p)
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// startRelay runs a server whose relay listens on loopback, configured by
// environ on top of the relay settings, and returns it with the relay's
// address. loopbackPeers lets the relay send to 127.0.0.1, which it
// refuses in production, so that a test can see data relayed at all.
func startRelay(t *testing.T, environ map[string]string, loopbackPeers bool) (*server, string) {
	t.Helper()
	port := strconv.Itoa(freeUDPTCPPort(t))
	env := map[string]string{
		"TURN_PORT": port, "TURN_TCP_PORT": port, "TURN_BIND": "127.0.0.1", "TURN_PUBLIC_IP": "127.0.0.1",
		"TURN_RELAY_PORTS": "50000-59999", "TURN_SECRET": "relay-secret",
	}
	for k, v := range environ {
		env[k] = v
	}
	s := newServer(testConfig(t, env), slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if loopbackPeers {
		s.relay.peerAllowed = func(ip net.IP) bool { return ip.IsLoopback() }
	}
	if err := s.relay.start(ctx); err != nil {
		t.Fatalf("start the relay: %v", err)
	}
	return s, "127.0.0.1:" + port
}

// turnClient is a pion TURN client of addr over UDP from 127.0.0.1.
func turnClient(t *testing.T, addr, username, password string) *turn.Client {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return newTURNClient(t, conn, addr, username, password)
}

// newTURNClient starts a pion client on conn.
func newTURNClient(t *testing.T, conn net.PacketConn, addr, username, password string) *turn.Client {
	t.Helper()
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: addr, TURNServerAddr: addr, Username: username, Password: password, Realm: turnRealm,
		Conn: conn, RTO: 100 * time.Millisecond,
		LoggerFactory: &logging.DefaultLoggerFactory{Writer: io.Discard, DefaultLogLevel: logging.LogLevelDisabled},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); conn.Close() })
	return c
}

// memberCredentials are the credentials a member's welcome would carry.
func memberCredentials(s *server) (username, password string) {
	return s.relay.credentials("test-member", time.Now())
}

func TestTURNRelaysDataForGoodCredentials(t *testing.T) {
	t.Parallel()
	s, addr := startRelay(t, nil, true)
	user, pass := memberCredentials(s)
	c := turnClient(t, addr, user, pass)

	// STUN answers anyone: the page learns its public address with it.
	if mapped, err := c.SendBindingRequest(); err != nil || !strings.HasPrefix(mapped.String(), "127.0.0.1:") {
		t.Fatalf("binding request: %v %v", mapped, err)
	}
	relayed, err := c.Allocate()
	if err != nil {
		t.Fatalf("allocate with good credentials: %v", err)
	}
	defer relayed.Close()
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	peer.SetDeadline(time.Now().Add(testTimeout))
	relayed.SetDeadline(time.Now().Add(testTimeout))

	if _, err := relayed.WriteTo([]byte("hello through the relay"), peer.LocalAddr()); err != nil {
		t.Fatalf("send through the relay: %v", err)
	}
	buf := make([]byte, 1500)
	n, from, err := peer.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "hello through the relay" {
		t.Fatalf("peer got %q, %v", buf[:n], err)
	}
	if from.String() != relayed.LocalAddr().String() {
		t.Fatalf("peer got it from %v, want the relayed address %v", from, relayed.LocalAddr())
	}
	if _, err := peer.WriteTo([]byte("and back"), from); err != nil {
		t.Fatal(err)
	}
	if n, _, err := relayed.ReadFrom(buf); err != nil || string(buf[:n]) != "and back" {
		t.Fatalf("client got %q, %v", buf[:n], err)
	}
	var b strings.Builder
	s.relay.writeMetrics(&b)
	for _, want := range []string{"hallway_turn_allocations 1\n", "hallway_turn_allocations_total 1\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, b.String())
		}
	}
	// The relay counts a packet once its write returns, which may be after
	// the peer has it: the sender's count can trail the answer.
	waitFor(t, "both packets counted in the relayed bytes", func() bool {
		return s.relay.relayedBytes.Load() >= uint64(len("hello through the relay")+len("and back"))
	})
}

func TestTURNOverTCP(t *testing.T) {
	t.Parallel()
	s, addr := startRelay(t, nil, false)
	user, pass := memberCredentials(s)
	tcp, err := net.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := newTURNClient(t, turn.NewSTUNConn(tcp), addr, user, pass)
	relayed, err := c.Allocate()
	if err != nil {
		t.Fatalf("allocate over TCP: %v", err)
	}
	relayed.Close()
}

func TestTURNRefusesBadExpiredAndForeignCredentials(t *testing.T) {
	t.Parallel()
	s, addr := startRelay(t, nil, false)
	user, pass := memberCredentials(s)
	past := strconv.FormatInt(time.Now().Add(-time.Minute).Unix(), 10) + ":test-member"
	future := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10) + ":test-member"
	for _, tc := range []struct{ name, user, pass string }{
		{"wrong password", user, pass[:len(pass)-4] + "AAA="},
		{"expired", past, turnPassword([]byte("relay-secret"), past)},
		{"signed with another secret", future, turnPassword([]byte("another-secret"), future)},
		{"not a TURN REST username", "alice", turnPassword([]byte("relay-secret"), "alice")},
	} {
		c := turnClient(t, addr, tc.user, tc.pass)
		if relayed, err := c.Allocate(); err == nil {
			relayed.Close()
			t.Errorf("%s: allocation granted", tc.name)
		}
	}
	if got := s.relay.refusedAuth.Load(); got < 4 {
		t.Errorf("refused credentials counted %d times, want 4", got)
	}
	// The good credentials still work afterwards.
	if relayed, err := turnClient(t, addr, user, pass).Allocate(); err != nil {
		t.Fatalf("good credentials after bad ones: %v", err)
	} else {
		relayed.Close()
	}
}

func TestTURNCapsAllocationsPerIP(t *testing.T) {
	t.Parallel()
	s, addr := startRelay(t, map[string]string{"TURN_ALLOCATIONS_PER_IP": "2"}, false)
	user, pass := memberCredentials(s)
	var held []net.PacketConn
	for i := range 2 {
		relayed, err := turnClient(t, addr, user, pass).Allocate()
		if err != nil {
			t.Fatalf("allocation %d of 2: %v", i+1, err)
		}
		held = append(held, relayed)
	}
	if relayed, err := turnClient(t, addr, user, pass).Allocate(); err == nil {
		relayed.Close()
		t.Fatal("a third allocation from one IP was granted")
	}
	if s.relay.refusedQuota.Load() != 1 {
		t.Errorf("quota refusals = %d, want 1", s.relay.refusedQuota.Load())
	}
	// Giving one back makes room for another.
	held[0].Close()
	deadline := time.Now().Add(testTimeout)
	for s.relay.allocations.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if relayed, err := turnClient(t, addr, user, pass).Allocate(); err != nil {
		t.Fatalf("allocation after one was released: %v", err)
	} else {
		relayed.Close()
	}
	held[1].Close()
}

func TestTURNRefusesPrivatePeers(t *testing.T) {
	t.Parallel()
	s, addr := startRelay(t, nil, false)
	user, pass := memberCredentials(s)
	c := turnClient(t, addr, user, pass)
	relayed, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relayed.Close()
	for _, peer := range []string{"127.0.0.1", "127.0.0.53", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1"} {
		if err := c.CreatePermission(&net.UDPAddr{IP: net.ParseIP(peer), Port: 9}); err == nil {
			t.Errorf("permission to relay to %s granted", peer)
		}
	}
	// A public address is allowed. Only the permission is asked for: no
	// packet leaves this machine.
	if err := c.CreatePermission(&net.UDPAddr{IP: net.ParseIP("203.0.113.9"), Port: 9}); err != nil {
		t.Errorf("permission to a public address refused: %v", err)
	}
	if got := s.relay.refusedPeer.Load(); got != 9 {
		t.Errorf("peer refusals = %d, want 9", got)
	}
}

func TestPublicPeer(t *testing.T) {
	t.Parallel()
	for ip, want := range map[string]bool{
		"8.8.8.8": true, "203.0.113.9": true, "2001:db8::1": true, "::ffff:1.1.1.1": true,
		"127.0.0.1": false, "10.1.2.3": false, "172.31.255.255": false, "192.168.0.1": false, "169.254.1.1": false,
		"100.100.100.100": false, "0.1.2.3": false, "255.255.255.255": false, "::1": false, "fe80::1": false,
		"fdaa::3": false, "ff02::1": false, "::": false, "::ffff:10.0.0.1": false,
	} {
		if got := publicPeer(net.ParseIP(ip)); got != want {
			t.Errorf("publicPeer(%s) = %v, want %v", ip, got, want)
		}
	}
}

func TestTURNAllocationCountsTheCallAsRelayed(t *testing.T) {
	t.Parallel()
	s, addr := startRelay(t, nil, false)
	hs := httptestServer(t, s)
	alice := hs.dial(t, "relayed", "alice")
	w, _ := alice.welcome()
	alice.callFrame("join")
	alice.waitCall("alice")
	ice := w.ICEServers[0]
	for range 2 { // Two allocations of one call count once.
		relayed, err := turnClient(t, addr, ice.Username, ice.Credential).Allocate()
		if err != nil {
			t.Fatalf("allocate with the welcome's credentials: %v", err)
		}
		relayed.Close()
	}
	if got := s.metrics.callsRelayed.Load(); got != 1 {
		t.Fatalf("calls relayed = %d, want 1", got)
	}
}

// httptestServer serves s's handler on loopback for WebSocket clients.
func httptestServer(t *testing.T, s *server) *testServer {
	t.Helper()
	hs := httptest.NewServer(s.handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		s.shutdown(ctx)
		hs.Close()
	})
	return &testServer{Server: hs, srv: s, logs: &syncBuffer{}}
}
