package loadgen

import (
	"bytes"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// This file holds what a test needs to run a server process on any
// platform: a buffer for its output and a free port for it to bind. The
// rest of loadgen reads /proc and builds on Linux only.

// SyncBuffer collects a process's output from many goroutines.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// FreePort picks a loopback port that is free now for a server to bind.
//
// It picks at random below the kernel's range of ephemeral ports: a port
// from that range, once released, can be taken by any outgoing connection
// (the tests open thousands) before the server binds it, and the server
// then fails with "address already in use". Below it only another explicit
// bind can take it, and ports this process handed out are never handed out
// again. Where the range leaves no room below, it asks the kernel instead.
func FreePort() (string, error) {
	low := ephemeralLow()
	for range 200 {
		if low <= minPickedPort {
			break
		}
		port := minPickedPort + rand.IntN(low-minPickedPort)
		if _, taken := handedOut.LoadOrStore(port, true); taken {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		l.Close()
		return strconv.Itoa(port), nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

// minPickedPort is the lowest port FreePort picks: above the well-known
// and most registered services' ports.
const minPickedPort = 10000

// handedOut holds every port FreePort returned, so that two tests of one
// process never get the same one.
var handedOut sync.Map

// ephemeralLow is the first port of the kernel's ephemeral range, 32768
// when it cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if f := strings.Fields(string(b)); err == nil && len(f) == 2 {
		if n, err := strconv.Atoi(f[0]); err == nil {
			return n
		}
	}
	return 32768
}
