//go:build linux

package main

// A test with real IPv6 source addresses: a network namespace of the test's
// own makes two /64s local, and clients bind sources in them. Nothing is
// added to the machine's own namespace.

import (
	"context"
	"hallway/internal/netnstest"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/coder/websocket"
)

// netnsSetup makes loopback and two /64s local in the new namespace and lets
// sockets bind any address in them, then runs the test binary ("$0").
const netnsSetup = `set -e
ip link set lo up
ip -6 route add local fd00:bad:0:1::/64 dev lo
ip -6 route add local fd00:bad:0:2::/64 dev lo
sysctl -qw net.ipv6.ip_nonlocal_bind=1
exec "$0" -test.run='^TestRealSlash64SharesOneBudget$' -test.count=1 -test.v`

func TestRealSlash64SharesOneBudget(t *testing.T) {
	if !netnstest.Inside() {
		// Where namespaces are not permitted this skips;
		// TestOneSlash64SharesOneConnectionBudget covers the same through
		// CLIENT_IP_HEADER.
		netnstest.Run(t, netnsSetup, testBinary())
		return
	}
	cfg := testConfig(t, map[string]string{"MAX_CONNS_PER_IP": "3"})
	srv := newServer(cfg, slog.New(slog.DiscardHandler))
	l, err := net.Listen("tcp", "[fd00:bad:0:1::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv.handler())
	hs.Listener = l
	hs.Start()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		srv.shutdown(ctx)
		hs.Close()
	}()
	url := "ws://" + l.Addr().String() + "/ws/hall?username="
	dial := func(src string, i int) (int, error) {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
		conn, resp, err := websocket.Dial(context.Background(), url+"u"+strconv.Itoa(i), &websocket.DialOptions{HTTPClient: client})
		if err == nil {
			t.Cleanup(func() { conn.CloseNow() })
			return http.StatusSwitchingProtocols, nil
		}
		if resp != nil {
			return resp.StatusCode, nil
		}
		return 0, err
	}
	for i, src := range []string{"fd00:bad:0:1::a", "fd00:bad:0:1:1234::b", "fd00:bad:0:1:ffff:ffff:ffff:fffe", "fd00:bad:0:1:8000::1"} {
		want := http.StatusSwitchingProtocols
		if i == 3 {
			want = http.StatusTooManyRequests
		}
		if got, err := dial(src, i); got != want {
			t.Fatalf("connection %d from %s: %d %v, want %d", i+1, src, got, err, want)
		}
	}
	for i, src := range []string{"fd00:bad:0:2::a", "fd00:bad:0:2::b", "fd00:bad:0:2::c"} {
		if got, err := dial(src, 10+i); got != http.StatusSwitchingProtocols {
			t.Fatalf("connection %d from the second /64, %s: %d %v, want 101", i+1, src, got, err)
		}
	}
}
