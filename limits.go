// Limits per client IP (connections, joins, new rooms) and the errors and
// Retry-After they answer with. Flood control of one connection is the
// client's (client.go); memory budgets are memory.go's.

package main

import (
	"errors"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// This file is per-client fairness: what one client network may take of the
// server, so that one visitor cannot crowd out everyone else, and how much
// memory remembering clients may cost.

// errTooManyConns refuses a connection over MAX_CONNS_PER_IP.
var errTooManyConns = errors.New("too many connections from this address; close some and try again")

// Retry-After for refusals that depend on other connections ending.
const (
	retryServerFull = 30 * time.Second
	retryTooMany    = 10 * time.Second
)

// clientTablePerConn is how many entries each per-client rate table may
// hold for every connection MAX_CLIENTS allows: room for the clients of the
// last minute to come and go, and a bound on what a flood of new addresses
// can make the server remember.
const clientTablePerConn = 4

// minClientTable is the smallest per-client rate table, for servers with a
// low MAX_CLIENTS.
const minClientTable = 4096

// unknownClient is the key of every client whose address does not parse:
// together they share one budget rather than escaping it.
const unknownClient = "unknown"

// clientNetwork is the key per-client limits count by: an IPv4 address
// (IPv4-mapped IPv6 included) as itself, an IPv6 address as its network of
// v6Bits leading bits, such as "2001:db8:1:2::/64", since one visitor holds
// a whole /64. addr may carry a port or brackets; a zone is dropped.
func clientNetwork(addr string, v6Bits int) string {
	a, err := netip.ParseAddr(strings.Trim(strings.TrimSpace(addr), "[]"))
	if err != nil {
		ap, perr := netip.ParseAddrPort(strings.TrimSpace(addr))
		if perr != nil {
			return unknownClient
		}
		a = ap.Addr()
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(v6Bits) // v6Bits is validated to 48..128.
	return p.String()
}

// clientKey is the key per-client limits count r by: its client address
// (see clientIP) reduced to the client's network (see clientNetwork).
func (s *server) clientKey(r *http.Request) string {
	return clientNetwork(s.clientIP(r), s.cfg.IPv6Prefix)
}

// clientTableSize is how many clients each rate table remembers at most.
func clientTableSize(cfg config) int {
	return max(minClientTable, clientTablePerConn*cfg.MaxClients)
}

// rateLimitedError refuses a request over a per-client rate; wait is how
// long until the same request would pass.
type rateLimitedError struct {
	text string
	wait time.Duration
}

// Error is the text shown to the client.
func (e *rateLimitedError) Error() string { return e.text }

// perMinute turns a per-minute setting into an ipLimiter of at most size
// clients: that many events a minute, all of them at once if they come
// together.
func perMinute(n float64, size int) *ipLimiter {
	return newIPLimiter(n/60, max(1, int(n)), size)
}

// bucket is one client's token bucket, and its place in the limiter's list
// from most to least recently used.
type bucket struct {
	key        string
	tokens     float64
	at         int64 // UnixNano when tokens was counted
	prev, next *bucket
}

// ipLimiter keeps one token bucket per client network, at most size of
// them. A bucket that has refilled is idle: forgetting it changes nothing.
// When the table is full, a new client takes the place of an idle bucket
// near the least recently used end, or else of the least recently used one.
type ipLimiter struct {
	perSec float64 // tokens added per second
	burst  int
	size   int

	mu        sync.Mutex
	buckets   map[string]*bucket
	lru       bucket // sentinel: lru.next is the most recent, lru.prev the least
	lastSweep time.Time
}

// idleScan is how many buckets from the least recently used end a full
// table looks through for an idle one before it evicts a busy one.
const idleScan = 8

// newIPLimiter allows each client perSec events a second with burst, for
// at most size clients at once; a zero perSec allows everything.
func newIPLimiter(perSec float64, burst, size int) *ipLimiter {
	l := &ipLimiter{perSec: perSec, burst: burst, size: max(1, size), buckets: make(map[string]*bucket)}
	l.lru.next, l.lru.prev = &l.lru, &l.lru
	return l
}

// take spends a token of key's when commit is set and one is there; without
// a token, it says how long until one is free. Looking without commit
// remembers nothing: a client with no bucket has a full one.
func (l *ipLimiter) take(key string, commit bool) (time.Duration, bool) {
	if l.perSec == 0 {
		return 0, true
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > time.Minute {
		l.sweepLocked(now.UnixNano())
		l.lastSweep = now
	}
	b := l.buckets[key]
	if b == nil && !commit {
		return 0, true
	}
	if b == nil {
		b = l.addLocked(key, now.UnixNano())
	}
	tokens := b.tokensAt(now.UnixNano(), l.perSec, l.burst)
	if tokens < 1 {
		return time.Duration((1 - tokens) / l.perSec * float64(time.Second)), false
	}
	if commit {
		b.tokens, b.at = tokens-1, now.UnixNano()
		l.unlinkLocked(b)
		l.pushLocked(b)
	}
	return 0, true
}

// tokensAt is how many tokens b holds at now: what it had, refilled at
// perSec up to burst.
func (b *bucket) tokensAt(now int64, perSec float64, burst int) float64 {
	elapsed := float64(now-b.at) / float64(time.Second)
	return min(float64(burst), b.tokens+max(0, elapsed)*perSec)
}

// addLocked makes a full bucket for key, first making room if the table is
// full.
func (l *ipLimiter) addLocked(key string, now int64) *bucket {
	if len(l.buckets) >= l.size {
		victim := l.lru.prev
		for i, b := 0, l.lru.prev; i < idleScan && b != &l.lru; i, b = i+1, b.prev {
			if b.tokensAt(now, l.perSec, l.burst) >= float64(l.burst) {
				victim = b
				break
			}
		}
		l.removeLocked(victim)
	}
	b := &bucket{key: key, tokens: float64(l.burst), at: now}
	l.buckets[key] = b
	l.pushLocked(b)
	return b
}

// sweepLocked forgets every bucket that has refilled, so that memory
// follows the number of recent clients.
func (l *ipLimiter) sweepLocked(now int64) {
	for _, b := range l.buckets {
		if b.tokensAt(now, l.perSec, l.burst) >= float64(l.burst) {
			l.removeLocked(b)
		}
	}
}

// removeLocked forgets b.
func (l *ipLimiter) removeLocked(b *bucket) {
	l.unlinkLocked(b)
	delete(l.buckets, b.key)
}

// pushLocked puts b at the most recently used end.
func (l *ipLimiter) pushLocked(b *bucket) {
	b.prev, b.next = &l.lru, l.lru.next
	l.lru.next.prev = b
	l.lru.next = b
}

// unlinkLocked takes b out of the list.
func (l *ipLimiter) unlinkLocked(b *bucket) {
	b.prev.next, b.next.prev = b.next, b.prev
	b.prev, b.next = nil, nil
}

// len is how many clients l remembers.
func (l *ipLimiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// limited returns a rateLimitedError saying text when l has no token for
// key; commit takes the token when there is one.
func limited(l *ipLimiter, key string, commit bool, text string) error {
	if wait, ok := l.take(key, commit); !ok {
		return &rateLimitedError{text: text, wait: wait}
	}
	return nil
}

// setRetryAfter tells the client how long to wait, in whole seconds.
func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(d.Seconds())))))
}
