//go:build linux

package loadgen

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// The relay floor is the floor with the message read first: the load tool's
// senders write each frame to the floor process over TCP, and the floor
// reads it there, waking for it as a server wakes for a member's message,
// before writing it to every connection of the group. A server must read
// every message it relays, and the plain floor does not; the ratio to the
// relay floor says how much of a server's cost is its own once that is
// counted too.

// relayIndexBytes starts each sender's connection: which stream it is, as
// a little-endian uint32.
const relayIndexBytes = 4

// acceptSenders accepts the relay floor's n sender connections on l and
// returns them in order of the stream index each names first.
func acceptSenders(l net.Listener, n int) ([]net.Conn, error) {
	defer l.Close()
	in := make([]net.Conn, n)
	for range n {
		c, err := l.Accept()
		if err != nil {
			return nil, err
		}
		var idx [relayIndexBytes]byte
		if _, err := io.ReadFull(c, idx[:]); err != nil {
			return nil, err
		}
		i := binary.LittleEndian.Uint32(idx[:])
		if int(i) >= n || in[i] != nil {
			return nil, fmt.Errorf("a sender named stream %d of %d twice or out of range", i, n)
		}
		in[i] = c
	}
	return in, nil
}

// relayStream reads frames from in until it closes, writing each to every
// connection of group, one write(2) each, and returns how many it relayed.
// Reads are unbuffered: each frame costs a read(2) when it comes and one
// more that finds nothing, as a server's reader does.
func relayStream(p floorPlan, in net.Conn, group []net.Conn) int {
	frame := make([]byte, p.Frame)
	n := 0
	for {
		if _, err := io.ReadFull(in, frame); err != nil {
			return n
		}
		for _, c := range group {
			if _, err := c.Write(frame); err != nil {
				return n
			}
		}
		n++
	}
}

// relaySenders are the load tool's side of the relay floor: one connection
// per stream, written to at the plan's pace.
type relaySenders struct {
	conns     []net.Conn
	closeOnce sync.Once
}

// dialRelay connects one sender per stream of plan to addr.
func dialRelay(ctx context.Context, tb TB, addr string, plan floorPlan) *relaySenders {
	tb.Helper()
	rs := &relaySenders{}
	var d net.Dialer
	for i := range plan.Streams * (plan.Conns / plan.Group) {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			rs.close()
			tb.Fatalf("dial the relay floor: %v", err)
		}
		rs.conns = append(rs.conns, c)
		if _, err := c.Write(binary.LittleEndian.AppendUint32(nil, uint32(i))); err != nil {
			rs.close()
			tb.Fatalf("write to the relay floor: %v", err)
		}
	}
	return rs
}

// send has every sender send its frames, paced as the plain floor's streams
// are, stamped with the send time, then closes the connections, which ends
// the floor's relaying.
func (rs *relaySenders) send(plan floorPlan) {
	var wg sync.WaitGroup
	for i, c := range rs.conns {
		wg.Go(func() {
			frame := make([]byte, plan.Frame)
			pace(plan, float64(i)/float64(len(rs.conns)), func() bool {
				binary.LittleEndian.PutUint64(frame, uint64(time.Now().UnixNano()))
				_, err := c.Write(frame)
				return err == nil
			})
		})
	}
	wg.Wait()
	rs.close()
}

// close closes every sender's connection.
func (rs *relaySenders) close() {
	rs.closeOnce.Do(func() {
		for _, c := range rs.conns {
			c.Close()
		}
	})
}
