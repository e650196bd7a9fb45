package main

// Fly's proxy adds Fly-Replay-Src to a replayed request and
// fly-replay-failed to one it hands back. Fly documents neither as
// stripped from what a client sends, so a machine never acts on them
// alone: it confirms with a quick dial to the machine in question (its
// internal address, <id>.vm.<app>.internal, on PORT) before marking it
// unreachable or clearing its mark, and reuses a recent answer so that a
// flood of forged headers costs one dial per machine per reachRecheck.

import (
	"context"
	"net"
	"strconv"
	"time"
)

// reachTimeout bounds the dial that confirms a machine is up. A machine on
// Fly's private network answers in milliseconds, other regions included.
const reachTimeout = 2 * time.Second

// reachRecheck is how long the answer of such a dial is reused.
const reachRecheck = 2 * time.Second

// warnEvery is how often at most one kind of warning that a request can
// cause is logged; the next line says how many were left out.
const warnEvery = time.Minute

// reachCheck is one dial to a machine: under way until done is closed,
// then its answer.
type reachCheck struct {
	done chan struct{}
	at   time.Time // when it ended
	err  error
}

// dialMachine is the default fleet.reach: a TCP dial to the machine's
// internal address on port, closed at once.
func dialMachine(app string, port int) func(ctx context.Context, machine string) error {
	return func(ctx context.Context, machine string) error {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(machine+".vm."+app+".internal", strconv.Itoa(port)))
		if err == nil {
			conn.Close()
		}
		return err
	}
}

// isUp reports whether machine answers a dial, asking at most once per
// reachRecheck however many requests want to know at the same time.
func (f *fleet) isUp(ctx context.Context, machine string) bool {
	f.mu.Lock()
	if f.checks == nil {
		f.checks = make(map[string]*reachCheck)
	}
	c := f.checks[machine]
	start := c == nil || !c.at.IsZero() && time.Since(c.at) >= reachRecheck
	if start {
		c = &reachCheck{done: make(chan struct{})}
		f.checks[machine] = c
	}
	f.mu.Unlock()
	if start {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reachTimeout)
		err := f.reach(dctx, machine)
		cancel()
		f.mu.Lock()
		c.err, c.at = err, time.Now()
		f.mu.Unlock()
		close(c.done)
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		return true // Unknown: assume up, so nothing changes.
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return c.err == nil
}

// isMarkedLocked reports whether machine is left out as unreachable now.
func (f *fleet) isMarkedLocked(machine string) bool {
	return time.Now().Before(f.unreachable[machine])
}

// warn logs msg at most once per warnEvery, with how many times it was
// left out since. msg is a fixed string and args carry no user data.
func (f *fleet) warn(msg string, args ...any) {
	f.mu.Lock()
	if f.warned == nil {
		f.warned = make(map[string]time.Time)
		f.unwarned = make(map[string]int)
	}
	if time.Since(f.warned[msg]) < warnEvery {
		f.unwarned[msg]++
		f.mu.Unlock()
		return
	}
	f.warned[msg] = time.Now()
	left := f.unwarned[msg]
	delete(f.unwarned, msg)
	f.mu.Unlock()
	if left > 0 {
		args = append(args, "left_out_since_last", left)
	}
	f.log.Warn(msg, args...)
}
