package main

// Tests of per-client limits keyed on the client's network, and of the
// bound on what the server remembers about clients.

import (
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestClientNetworkKeys(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr string
		bits int
		want string
	}{
		{"203.0.113.7", 64, "203.0.113.7"},
		{"::ffff:203.0.113.7", 64, "203.0.113.7"}, // IPv4-mapped counts as IPv4
		{"203.0.113.7:5000", 64, "203.0.113.7"},
		{" 203.0.113.7 ", 64, "203.0.113.7"},
		{"2001:db8:1:2:aaaa:bbbb:cccc:dddd", 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:2::1", 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:2:aaaa::1", 48, "2001:db8:1::/48"},
		{"2001:db8:1:2:aaaa::1", 56, "2001:db8:1::/56"},
		{"2001:db8::1", 128, "2001:db8::1/128"},
		{"[2001:db8:1:2::7]:443", 64, "2001:db8:1:2::/64"},
		{"[2001:db8:1:2::7]", 64, "2001:db8:1:2::/64"},
		{"fe80::1%eth0", 64, "fe80::/64"},
		{"not an address", 64, unknownClient},
		{"", 64, unknownClient},
	} {
		if got := clientNetwork(tc.addr, tc.bits); got != tc.want {
			t.Errorf("clientNetwork(%q, %d) = %q, want %q", tc.addr, tc.bits, got, tc.want)
		}
	}
}

func TestIPv6PrefixOutOfRangeNamesTheVariable(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"47", "129", "0", "sixty-four"} {
		if _, err := loadConfig(map[string]string{"IPV6_PREFIX": v}); err == nil || !strings.Contains(err.Error(), "IPV6_PREFIX") {
			t.Errorf("IPV6_PREFIX=%s: error %v, want one naming IPV6_PREFIX", v, err)
		}
	}
	for _, v := range []string{"48", "56", "128"} {
		if _, err := loadConfig(map[string]string{"IPV6_PREFIX": v}); err != nil {
			t.Errorf("IPV6_PREFIX=%s: %v", v, err)
		}
	}
}

func TestOneSlash64SharesOneConnectionBudget(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"MAX_CONNS_PER_IP": "3", "CLIENT_IP_HEADER": "X-Test-IP"})
	for i := range 3 {
		ts.dialFrom(t, "hall", "a"+strconv.Itoa(i), "2001:db8:1:2::"+strconv.FormatInt(int64(i+1)*0x1111, 16)).welcome()
	}
	// Any other address of the same /64 is the same visitor.
	for _, ip := range []string{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2:8000::42"} {
		status, e := ts.refusal(t, "hall", "username=a4", fromIP(ip))
		if status != http.StatusTooManyRequests || e.Code != codeTooManyConns {
			t.Fatalf("4th connection from the /64, as %s: %d %+v, want 429 too_many_connections", ip, status, e)
		}
	}
	// The next /64 is someone else, with a budget of its own.
	for i := range 3 {
		ts.dialFrom(t, "hall", "b"+strconv.Itoa(i), "2001:db8:1:3::"+strconv.Itoa(i+1)).welcome()
	}
	if status, e := ts.refusal(t, "hall", "username=b4", fromIP("2001:db8:1:3::99")); status != http.StatusTooManyRequests || e.Code != codeTooManyConns {
		t.Fatalf("4th connection from the second /64: %d %+v, want 429 too_many_connections", status, e)
	}
}

func TestIPv4MappedAddressesCountAsIPv4(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"MAX_CONNS_PER_IP": "2", "CLIENT_IP_HEADER": "X-Test-IP"})
	ts.dialFrom(t, "hall", "a", "198.51.100.9").welcome()
	ts.dialFrom(t, "hall", "b", "::ffff:198.51.100.9").welcome()
	if status, e := ts.refusal(t, "hall", "username=c", fromIP("198.51.100.9")); status != http.StatusTooManyRequests || e.Code != codeTooManyConns {
		t.Fatalf("3rd connection, the 2nd IPv4-mapped: %d %+v, want 429 too_many_connections", status, e)
	}
	ts.dialFrom(t, "hall", "d", "198.51.100.10").welcome() // The neighbouring IPv4 address is someone else.
}

func TestIPv6PrefixWidensTheClient(t *testing.T) {
	t.Parallel()
	ts := setupTest(t, map[string]string{"ROOM_CREATE_RATE": "1", "IPV6_PREFIX": "48", "CLIENT_IP_HEADER": "X-Test-IP"})
	ts.dialFrom(t, "first", "a", "2001:db8:5:1::1").welcome()
	// Another /64 of the same /48 has spent its one new room.
	if status, e := ts.refusal(t, "second", "username=a", fromIP("2001:db8:5:2::1")); status != http.StatusTooManyRequests || e.Code != codeRateLimited {
		t.Fatalf("new room from the same /48: %d %+v, want 429 rate_limited", status, e)
	}
	ts.dialFrom(t, "second", "a", "2001:db8:6:2::1").welcome()
}

func TestLimiterEvictsIdleClientsFirst(t *testing.T) {
	t.Parallel()
	l := newIPLimiter(1, 2, 3)
	l.take("busy", true)
	l.take("busy", true) // now out of tokens
	l.take("idle1", true)
	l.take("idle2", true)
	// idle1 and idle2 have a token left: neither is idle yet, and busy is
	// the least recently used, so a newcomer replaces busy only if nothing
	// idle is found. Let idle1 refill by rewinding its clock.
	l.mu.Lock()
	l.buckets["idle1"].at -= 10e9
	l.mu.Unlock()
	l.take("new", true)
	if l.len() != 3 {
		t.Fatalf("table holds %d, want its bound 3", l.len())
	}
	if _, ok := l.take("busy", false); ok {
		t.Fatal("busy client's empty bucket was evicted while an idle one was there")
	}
	l.mu.Lock()
	_, kept := l.buckets["idle1"]
	l.mu.Unlock()
	if kept {
		t.Fatal("the idle client is still remembered")
	}
}

func TestLimiterLooksWithoutRemembering(t *testing.T) {
	t.Parallel()
	l := newIPLimiter(1, 2, 10)
	if _, ok := l.take("someone", false); !ok || l.len() != 0 {
		t.Fatalf("a look at an unknown client: ok %v, %d remembered; want ok and none", ok, l.len())
	}
}

// floodAddress is the i-th address of a flood: IPv4 addresses and IPv6
// addresses of distinct /64s, alternately.
func floodAddress(i int) string {
	if i%2 == 0 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], 0x0a000000+uint32(i))
		return netip.AddrFrom4(b).String()
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], 0x2001_0db8_0000_0000|uint64(i)) // the /64
	b[15] = 1
	return netip.AddrFrom16(b).String()
}

// discardWriter is a ResponseWriter that keeps only the header map.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

// maxBytesPerClient bounds what one remembered client may cost a rate
// table: the bucket, its key and its share of the map.
const maxBytesPerClient = 256

func TestMillionAddressesLeaveTablesAtTheirBound(t *testing.T) {
	if testing.Short() {
		t.Skip("a million addresses")
	}
	// Not parallel: the heap measured is the whole process's, and parallel
	// tests would add what they hold to it.
	// One room: the flood's room creations are refused after their tokens
	// are taken, so that rooms do not count in the heap's growth.
	ts := setupTest(t, map[string]string{"CLIENT_IP_HEADER": "X-Test-IP", "MAX_ROOMS": "1"})
	s := ts.srv
	bound := clientTableSize(s.cfg)
	// On a slow machine the minute's sweep would forget the buckets that
	// have refilled meanwhile; this test is about the bound, so it holds the
	// sweep off.
	for _, l := range []*ipLimiter{s.joins, s.creates} {
		l.mu.Lock()
		l.lastSweep = time.Now().Add(time.Hour)
		l.mu.Unlock()
	}
	// The first addresses come through the handler, as a join whose upgrade
	// fails on this writer and a room creation; the rest, to keep the test
	// short, go from the header's key straight to the two tables.
	h := s.handler()
	join := httptest.NewRequest(http.MethodGet, "/ws/flood?username=x", nil)
	join.Header.Set("Connection", "Upgrade")
	join.Header.Set("Upgrade", "websocket")
	join.Header.Set("Sec-WebSocket-Version", "13")
	join.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	create := httptest.NewRequest(http.MethodPost, "/api/rooms", nil)
	w := &discardWriter{h: http.Header{}}
	before := heapInUse()
	const n, throughHandler = 1_000_000, 5_000
	for i := range n {
		ip := floodAddress(i)
		if i < throughHandler {
			for _, r := range []*http.Request{join, create} {
				r.Header.Set("X-Test-IP", ip)
				clear(w.h)
				h.ServeHTTP(w, r)
			}
			continue
		}
		join.Header.Set("X-Test-IP", ip)
		key := s.clientKey(join)
		s.joins.take(key, true)
		s.creates.take(key, true)
		if i%100_000 == 0 && (s.joins.len() > bound || s.creates.len() > bound) {
			t.Fatalf("after %d addresses the tables hold %d and %d, over %d", i+1, s.joins.len(), s.creates.len(), bound)
		}
	}
	joins, creates := s.joins.len(), s.creates.len()
	grown := int64(heapInUse()) - int64(before)
	t.Logf("%d addresses: tables hold %d and %d of %d; heap grew %d bytes, %d per remembered client",
		n, joins, creates, bound, grown, grown/int64(2*bound))
	if joins != bound || creates != bound {
		t.Fatalf("tables hold %d and %d clients, want their bound %d", joins, creates, bound)
	}
	if limit := int64(2 * bound * maxBytesPerClient); grown > limit {
		t.Fatalf("heap grew %d bytes for two tables of %d, over %d", grown, bound, limit)
	}
	s.mu.Lock()
	perIP := len(s.perIP)
	s.mu.Unlock()
	if perIP != 0 {
		t.Fatalf("%d connection counts remain after every reservation ended", perIP)
	}
}

// BenchmarkLimiterFlood is a full rate table taking one new client after
// another, each pushing out the least recently seen.
func BenchmarkLimiterFlood(b *testing.B) {
	cfg, err := loadConfig(map[string]string{})
	if err != nil {
		b.Fatal(err)
	}
	l := newIPLimiter(2, 120, clientTableSize(cfg))
	keys := make([]string, 1<<20)
	for i := range keys {
		keys[i] = clientNetwork(floodAddress(i), 64)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.take(keys[i%len(keys)], true)
		i++
	}
}
