package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v4"
	"golang.org/x/time/rate"
)

// This file is the STUN/TURN relay built into the binary, for calls between
// networks where no direct path works. It is off unless TURN_PORT is set.
//
// Credentials follow the TURN REST scheme that coturn's use-auth-secret
// checks: the username is "<expiry unix seconds>:<id>" and the password is
// base64(HMAC-SHA1(TURN_SECRET, username)). Each member gets its own in its
// welcome; the id is random and names no one.

// turnRealm is the realm of the relay's long-term credentials.
const turnRealm = "hallway"

// turnRelay is the built-in relay: its pion server once started, and what
// it counts and limits.
type turnRelay struct {
	cfg              config
	secret           []byte
	public           net.IP // TURN_PUBLIC_IP
	minPort, maxPort uint16

	// peerAllowed decides which peer addresses may be relayed to. It is
	// publicPeer; only tests, which have nothing but loopback, replace it.
	peerAllowed func(net.IP) bool

	mu    sync.Mutex
	perIP map[netip.Addr]int // allocations held, by client IP
	srv   *turn.Server
	addr  net.Addr // where the UDP listener is, once started

	allocations  atomic.Int64  // held now
	allocTotal   atomic.Uint64 // made since start
	relayedBytes atomic.Uint64 // relayed both ways
	dropped      atomic.Uint64 // packets dropped over TURN_BANDWIDTH
	refusedAuth  atomic.Uint64 // requests with bad, expired or foreign credentials
	refusedQuota atomic.Uint64 // allocations over TURN_ALLOCATIONS_PER_IP
	refusedPeer  atomic.Uint64 // permissions to private or local peers

	// onAllocate, when set, is told the credential id of each new
	// allocation (the server counts relayed calls with it).
	onAllocate func(id string)
}

// newTURNRelay prepares the relay cfg describes, or returns nil when
// TURN_PORT is not set. A config that passed validate cannot fail here.
func newTURNRelay(cfg config) *turnRelay {
	if cfg.TURNPort == 0 && cfg.ICEServers == "" {
		return nil
	}
	t := &turnRelay{cfg: cfg, perIP: make(map[netip.Addr]int), peerAllowed: publicPeer}
	t.secret = []byte(cfg.TURNSecret)
	if len(t.secret) == 0 {
		t.secret = []byte(base64.RawURLEncoding.EncodeToString(randomBytes(32)))
	}
	t.public = net.ParseIP(cfg.TURNPublicIP)
	t.minPort, t.maxPort, _ = parsePortRange(cfg.TURNRelayPorts)
	return t
}

// validateCalls checks the call and relay settings.
func (c config) validateCalls() []error {
	var errs []error
	check := func(ok bool, name, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf("invalid %s: "+format, append([]any{name}, args...)...))
		}
	}
	check(c.CallMax >= 0 && c.CallMax <= 64, "CALL_MAX", "%d is not within 0..64", c.CallMax)
	check(c.TURNPort >= 0 && c.TURNPort <= 65535, "TURN_PORT", "%d is not a UDP port", c.TURNPort)
	check(c.TURNTCPPort >= 0 && c.TURNTCPPort <= 65535, "TURN_TCP_PORT", "%d is not a TCP port", c.TURNTCPPort)
	check(c.TURNPort != 0 || c.TURNTCPPort == 0, "TURN_TCP_PORT", "needs TURN_PORT")
	check(c.TURNPort == 0 || net.ParseIP(c.TURNPublicIP) != nil, "TURN_PUBLIC_IP", "%q is not an IP address (required with TURN_PORT)", c.TURNPublicIP)
	_, _, err := parsePortRange(c.TURNRelayPorts)
	check(err == nil, "TURN_RELAY_PORTS", "%v", err)
	check(c.TURNCredentialTTL >= time.Minute, "TURN_CREDENTIAL_TTL", "%v is under a minute", c.TURNCredentialTTL)
	check(c.TURNAllocationsPerIP >= 1, "TURN_ALLOCATIONS_PER_IP", "%d must be at least 1", c.TURNAllocationsPerIP)
	check(c.TURNBandwidth >= 16<<10, "TURN_BANDWIDTH", "%v is under 16KiB", c.TURNBandwidth)
	_, err = parseICEServers(c.ICEServers)
	check(err == nil, "ICE_SERVERS", "%v", err)
	return errs
}

// parsePortRange reads "first-last".
func parsePortRange(s string) (first, last uint16, err error) {
	a, b, ok := strings.Cut(s, "-")
	lo, err1 := strconv.ParseUint(a, 10, 16)
	hi, err2 := strconv.ParseUint(b, 10, 16)
	if !ok || err1 != nil || err2 != nil || lo == 0 || hi < lo {
		return 0, 0, fmt.Errorf("%q is not first-last, two ports with first <= last", s)
	}
	return uint16(lo), uint16(hi), nil
}

// parseICEServers reads ICE_SERVERS: a JSON array of RTCIceServer objects
// whose URLs are stun:, turn: or turns: URLs.
func parseICEServers(s string) ([]iceServer, error) {
	if s == "" {
		return nil, nil
	}
	var list []iceServer
	if err := json.Unmarshal([]byte(s), &list); err != nil {
		return nil, errors.New("not a JSON array of {\"urls\": [...], \"username\", \"credential\"}")
	}
	for _, e := range list {
		if len(e.URLs) == 0 {
			return nil, errors.New("an entry has no urls")
		}
		for _, u := range e.URLs {
			if !strings.HasPrefix(u, "stun:") && !strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") {
				return nil, fmt.Errorf("%q is not a stun:, turn: or turns: URL", u)
			}
		}
	}
	return list, nil
}

// iceServersFor makes c's ICE servers: the built-in relay's and those of
// ICE_SERVERS, with TURN credentials of its own.
func (s *server) iceServersFor(c *client) []iceServer {
	t := s.relay
	if t == nil || s.cfg.CallMax == 0 {
		return nil
	}
	c.turnID = base64.RawURLEncoding.EncodeToString(randomBytes(12))
	s.turnIDs.Store(c.turnID, c)
	user, pass := t.credentials(c.turnID, time.Now())
	var list []iceServer
	if s.cfg.TURNPort != 0 {
		hp := net.JoinHostPort(t.public.String(), strconv.Itoa(s.cfg.TURNPort))
		urls := []string{"stun:" + hp, "turn:" + hp + "?transport=udp"}
		if s.cfg.TURNTCPPort != 0 {
			urls = append(urls, "turn:"+net.JoinHostPort(t.public.String(), strconv.Itoa(s.cfg.TURNTCPPort))+"?transport=tcp")
		}
		list = append(list, iceServer{URLs: urls, Username: user, Credential: pass})
	}
	extra, _ := parseICEServers(s.cfg.ICEServers) // validated at start-up
	for _, e := range extra {
		if e.Username == "" && s.cfg.TURNSecret != "" && !strings.HasPrefix(e.URLs[0], "stun:") {
			e.Username, e.Credential = user, pass
		}
		list = append(list, e)
	}
	return list
}

// forgetTURNID drops c's credential id when it leaves.
func (s *server) forgetTURNID(c *client) {
	if c.turnID != "" {
		s.turnIDs.Delete(c.turnID)
	}
}

// credentials makes TURN REST credentials for id, valid for
// TURN_CREDENTIAL_TTL from now.
func (t *turnRelay) credentials(id string, now time.Time) (username, password string) {
	username = strconv.FormatInt(now.Add(t.cfg.TURNCredentialTTL).Unix(), 10) + ":" + id
	return username, turnPassword(t.secret, username)
}

// turnPassword is base64(HMAC-SHA1(secret, username)), as coturn computes.
func turnPassword(secret []byte, username string) string {
	mac := hmac.New(sha1.New, secret)
	mac.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// authenticate is the relay's pion AuthHandler: it answers the long-term
// key of an unexpired TURN REST username. A wrong password or a foreign
// secret then fails pion's integrity check. Nothing is logged.
func (t *turnRelay) authenticate(username, realm string, _ net.Addr) ([]byte, bool) {
	expiry, id, ok := strings.Cut(username, ":")
	unix, err := strconv.ParseInt(expiry, 10, 64)
	if !ok || err != nil || id == "" || time.Now().Unix() > unix {
		t.refusedAuth.Add(1)
		return nil, false
	}
	return turn.GenerateAuthKey(username, realm, turnPassword(t.secret, username)), true
}

// publicPeer reports whether the relay may send to ip: not loopback,
// private, link-local, shared (100.64/10), multicast or unspecified, so
// that the relay cannot reach the server's own networks.
func publicPeer(ip net.IP) bool {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	a = a.Unmap()
	shared := netip.MustParsePrefix("100.64.0.0/10")
	return a.IsGlobalUnicast() && !a.IsPrivate() && !shared.Contains(a) &&
		!netip.MustParsePrefix("0.0.0.0/8").Contains(a)
}

// permit is the relay's PermissionHandler.
func (t *turnRelay) permit(_ net.Addr, peer net.IP) bool {
	if t.peerAllowed(peer) {
		return true
	}
	t.refusedPeer.Add(1)
	return false
}

// quota is the relay's QuotaHandler: one client IP holds at most
// TURN_ALLOCATIONS_PER_IP allocations.
func (t *turnRelay) quota(_, _ string, src net.Addr) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.perIP[addrIP(src)] < t.cfg.TURNAllocationsPerIP {
		return true
	}
	t.refusedQuota.Add(1)
	return false
}

// addrIP is the IP of a UDP or TCP address.
func addrIP(a net.Addr) netip.Addr {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// events counts allocations as pion makes and removes them.
func (t *turnRelay) events() turn.EventHandler {
	return turn.EventHandler{
		OnAllocationCreated: func(src, _ net.Addr, _, username, _ string, _ net.Addr, _ int) {
			t.mu.Lock()
			t.perIP[addrIP(src)]++
			t.mu.Unlock()
			t.allocations.Add(1)
			t.allocTotal.Add(1)
			if _, id, ok := strings.Cut(username, ":"); ok && t.onAllocate != nil {
				t.onAllocate(id)
			}
		},
		OnAllocationDeleted: func(src, _ net.Addr, _, _, _ string) {
			t.mu.Lock()
			if ip := addrIP(src); t.perIP[ip] <= 1 {
				delete(t.perIP, ip)
			} else {
				t.perIP[ip]--
			}
			t.mu.Unlock()
			t.allocations.Add(-1)
		},
		OnAuth: func(_, _ net.Addr, _, _, _, _ string, verdict bool) {
			if !verdict {
				t.refusedAuth.Add(1)
			}
		},
	}
}

// start listens on TURN_PORT (and TURN_TCP_PORT) and serves the relay
// until ctx ends.
func (t *turnRelay) start(ctx context.Context) error {
	if t == nil || t.cfg.TURNPort == 0 {
		return nil
	}
	bind := t.cfg.TURNBind
	udp, err := net.ListenPacket("udp4", net.JoinHostPort(bind, strconv.Itoa(t.cfg.TURNPort)))
	if err != nil {
		return fmt.Errorf("TURN_PORT: %w", err)
	}
	sc := turn.ServerConfig{
		Realm:             turnRealm,
		AuthHandler:       t.authenticate,
		QuotaHandler:      t.quota,
		EventHandler:      t.events(),
		LoggerFactory:     &logging.DefaultLoggerFactory{Writer: io.Discard, DefaultLogLevel: logging.LogLevelDisabled},
		PacketConnConfigs: []turn.PacketConnConfig{{PacketConn: udp, RelayAddressGenerator: t.relayGenerator(), PermissionHandler: t.permit}},
	}
	if t.cfg.TURNTCPPort != 0 {
		tcp, err := net.Listen("tcp4", net.JoinHostPort(bind, strconv.Itoa(t.cfg.TURNTCPPort)))
		if err != nil {
			udp.Close()
			return fmt.Errorf("TURN_TCP_PORT: %w", err)
		}
		sc.ListenerConfigs = []turn.ListenerConfig{{Listener: tcp, RelayAddressGenerator: t.relayGenerator(), PermissionHandler: t.permit}}
	}
	srv, err := turn.NewServer(sc)
	if err != nil {
		udp.Close()
		return fmt.Errorf("TURN: %w", err)
	}
	t.mu.Lock()
	t.srv, t.addr = srv, udp.LocalAddr()
	t.mu.Unlock()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	return nil
}

// relayGenerator hands out relayed addresses in TURN_RELAY_PORTS on
// TURN_PUBLIC_IP, each held to TURN_BANDWIDTH.
func (t *turnRelay) relayGenerator() turn.RelayAddressGenerator {
	return &limitedRelays{t: t, RelayAddressGeneratorPortRange: turn.RelayAddressGeneratorPortRange{
		RelayAddress: t.public, Address: t.cfg.TURNBind, MinPort: t.minPort, MaxPort: t.maxPort,
	}}
}

// limitedRelays wraps each relayed socket in a relayConn.
type limitedRelays struct {
	turn.RelayAddressGeneratorPortRange
	t *turnRelay
}

// AllocatePacketConn allocates a relayed UDP address, metered and limited.
func (g *limitedRelays) AllocatePacketConn(network string, port int) (net.PacketConn, net.Addr, error) {
	conn, addr, err := g.RelayAddressGeneratorPortRange.AllocatePacketConn(network, port)
	if err != nil {
		return nil, nil, err
	}
	bw := int(g.t.cfg.TURNBandwidth)
	return &relayConn{PacketConn: conn, t: g.t, limit: rate.NewLimiter(rate.Limit(bw), max(bw, 64<<10))}, addr, nil
}

// relayConn is one allocation's relayed socket. It counts the bytes relayed
// both ways and drops packets over TURN_BANDWIDTH, as a congested link
// would, so that a sender's congestion control backs off.
type relayConn struct {
	net.PacketConn
	t     *turnRelay
	limit *rate.Limiter
}

// ReadFrom returns the next packet from a peer that fits the budget.
func (c *relayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil || c.limit.AllowN(time.Now(), n) {
			c.t.relayedBytes.Add(uint64(n))
			return n, addr, err
		}
		c.t.dropped.Add(1)
	}
}

// WriteTo sends a client's packet to its peer if it fits the budget, and
// otherwise drops it.
func (c *relayConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if !c.limit.AllowN(time.Now(), len(p)) {
		c.t.dropped.Add(1)
		return len(p), nil
	}
	n, err := c.PacketConn.WriteTo(p, addr)
	c.t.relayedBytes.Add(uint64(n))
	return n, err
}

// writeMetrics writes the relay's series.
func (t *turnRelay) writeMetrics(b io.Writer) {
	var allocs int64
	var total, bytes, dropped, auth, quota, peer uint64
	if t != nil {
		allocs, total, bytes, dropped = t.allocations.Load(), t.allocTotal.Load(), t.relayedBytes.Load(), t.dropped.Load()
		auth, quota, peer = t.refusedAuth.Load(), t.refusedQuota.Load(), t.refusedPeer.Load()
	}
	family := func(name, typ, help string) { fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ) }
	family("hallway_turn_allocations", "gauge", "TURN allocations held now.")
	fmt.Fprintf(b, "hallway_turn_allocations %d\n", allocs)
	family("hallway_turn_allocations_total", "counter", "TURN allocations made.")
	fmt.Fprintf(b, "hallway_turn_allocations_total %d\n", total)
	family("hallway_turn_relayed_bytes_total", "counter", "Bytes relayed by TURN, both ways.")
	fmt.Fprintf(b, "hallway_turn_relayed_bytes_total %d\n", bytes)
	family("hallway_turn_dropped_packets_total", "counter", "Relayed packets dropped over TURN_BANDWIDTH.")
	fmt.Fprintf(b, "hallway_turn_dropped_packets_total %d\n", dropped)
	family("hallway_turn_refusals_total", "counter", "TURN requests refused, by reason.")
	fmt.Fprintf(b, "hallway_turn_refusals_total{reason=\"credentials\"} %d\n", auth)
	fmt.Fprintf(b, "hallway_turn_refusals_total{reason=\"quota\"} %d\n", quota)
	fmt.Fprintf(b, "hallway_turn_refusals_total{reason=\"peer\"} %d\n", peer)
}
