// Limits per client IP (connections, joins, new rooms) and the errors and
// Retry-After they answer with. Flood control of one connection is the
// client's (client.go); memory budgets are memory.go's.

package main

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// This file is per-IP fairness: what one client address may take of the
// server, so that one visitor cannot crowd out everyone else.

// errTooManyConns refuses a connection over MAX_CONNS_PER_IP.
var errTooManyConns = errors.New("too many connections from this address; close some and try again")

// Retry-After for refusals that depend on other connections ending.
const (
	retryServerFull = 30 * time.Second
	retryTooMany    = 10 * time.Second
)

// rateLimitedError refuses a request over a per-IP rate; wait is how long
// until the same request would pass.
type rateLimitedError struct {
	text string
	wait time.Duration
}

// Error is the text shown to the client.
func (e *rateLimitedError) Error() string { return e.text }

// perMinute turns a per-minute setting into an ipLimiter: that many events
// a minute, all of them at once if they come together.
func perMinute(n float64) *ipLimiter {
	return newIPLimiter(rate.Limit(n/60), max(1, int(n)))
}

// ipLimiter keeps one token bucket per client IP and forgets buckets that
// have refilled, so its memory follows the number of recent clients.
type ipLimiter struct {
	limit rate.Limit
	burst int

	mu        sync.Mutex
	buckets   map[string]*rate.Limiter
	lastSweep time.Time
}

// newIPLimiter allows each IP limit events a second with burst; a zero
// limit allows everything.
func newIPLimiter(limit rate.Limit, burst int) *ipLimiter {
	return &ipLimiter{limit: limit, burst: burst, buckets: make(map[string]*rate.Limiter)}
}

// take reserves a token for ip and keeps it only when commit is set; without
// a token, it says how long until one is free.
func (l *ipLimiter) take(ip string, commit bool) (time.Duration, bool) {
	if l.limit == 0 {
		return 0, true
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > time.Minute {
		for k, b := range l.buckets {
			if b.TokensAt(now) >= float64(l.burst) {
				delete(l.buckets, k)
			}
		}
		l.lastSweep = now
	}
	b := l.buckets[ip]
	if b == nil {
		b = rate.NewLimiter(l.limit, l.burst)
		l.buckets[ip] = b
	}
	res := b.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 || !commit {
		res.CancelAt(now)
		return d, d <= 0
	}
	return 0, true
}

// limited returns a rateLimitedError saying text when l has no token for
// ip; commit takes the token when there is one.
func limited(l *ipLimiter, ip string, commit bool, text string) error {
	if wait, ok := l.take(ip, commit); !ok {
		return &rateLimitedError{text: text, wait: wait}
	}
	return nil
}

// setRetryAfter tells the client how long to wait, in whole seconds.
func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(d.Seconds())))))
}
