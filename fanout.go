// Fan-out: how a room's frame reaches its members. At the pace people chat,
// the broadcast writes each idle member's frame to its socket itself, with
// one non-blocking write(2), and starts no goroutine; in a burst, or for a
// member whose socket would block or whose queue holds frames already, the
// frame is queued for the member's writer (client.go), which sends what
// piled up in one write.

package main

import (
	"math"
	"time"
)

// A room is in a burst while its recent broadcasts, each counted as one
// and fading by a factor e every burstScale, add up to burstScore or more:
// at a steady fifty frames a second or more. A burst's frames are queued,
// so that each member's writer sends many in one write(2) instead of one
// each. The count rather than the last gap decides, since on a busy core
// the writers take the CPU between two broadcasts of one burst, and one
// long gap must not turn the burst's next frames into a write each.
const (
	burstScale = 50 * time.Millisecond
	burstScore = 3.0
)

// broadcastLocked hands the same bytes to every member of the room without
// blocking. A member that enqueue finds too slow is cut off, and the room
// hears it left. It reports whether any member's queue is more than half
// full.
//
// isCount marks a userCount frame: it replaces a count still waiting in a
// member's queue, since only the newest matters, so a crowd arriving at once
// costs each member one frame rather than one per newcomer.
//
// At a paced rate the frame goes straight to idle members' sockets
// (sendNow); in a burst it is queued (see burstScore).
func (r *room) broadcastLocked(frame []byte, isCount bool) (backlog bool) {
	now := time.Now().UnixNano()
	pace := r.paceAtLocked(now)
	r.pace, r.lastBroadcast = pace, now
	var framed []byte // the whole WebSocket frame, when writing directly
	if pace < burstScore {
		framed = append(appendTextHeader(make([]byte, 0, len(frame)+10), len(frame)), frame...)
	}
	var dropped []*client
	for _, m := range r.members {
		if framed != nil && m.sendNow(framed) {
			continue
		}
		ok, behind := m.enqueue(frame, isCount)
		if !ok {
			dropped = append(dropped, m)
		}
		backlog = backlog || behind
	}
	r.dropLocked(dropped)
	return backlog
}

// paceAtLocked is the room's count of recent broadcasts, a broadcast at
// now included.
func (r *room) paceAtLocked(now int64) float64 {
	return r.pace*math.Exp(-float64(now-r.lastBroadcast)/float64(burstScale)) + 1
}

// sendNow writes framed, a room frame with its WebSocket header, straight
// to c's socket if c is idle (no writer running, nothing queued) and the
// socket takes it without blocking. It reports false when the frame must be
// queued instead. If the socket took only part, the writer sends the rest
// before anything else. c.mu is held across the write, so that nothing
// queued for c meanwhile can overtake the frame.
func (c *client) sendNow(framed []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.writing || len(c.queue) > 0 || c.goingAway {
		return false
	}
	switch n := c.sock.tryWrite(framed); {
	case n == 0:
		return false
	case n < len(framed):
		c.startWriterLocked()
	}
	c.srv.metrics.deliveries.Add(1)
	return true
}
